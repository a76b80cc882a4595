package backend

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/loraplex/loraplex/inference/model"
	"github.com/loraplex/loraplex/registry"
	"github.com/loraplex/loraplex/server"
)

// Adapters implements server.Adapters over the registry.
type Adapters struct {
	r      *registry.Registry
	budget int64
}

// NewAdapters wraps r; budgetBytes is its registry.Config.MaxBytes, reported
// in metrics.
func NewAdapters(r *registry.Registry, budgetBytes int64) *Adapters {
	return &Adapters{r: r, budget: budgetBytes}
}

type lease struct{ h *registry.Handle }

func (l lease) Virtual() int                 { return l.h.Adapter().NumVirtual }
func (l lease) Release()                     { l.h.Release() }
func (l lease) ModelAdapter() *model.Adapter { return l.h.Adapter() }

// Acquire leases the named adapter.
func (a *Adapters) Acquire(ctx context.Context, name string) (server.Lease, error) {
	h, err := a.r.Acquire(ctx, name)
	if err != nil {
		err = registryError(err)
		if ctx.Err() == nil && !errors.Is(err, server.ErrModelNotFound) && !errors.Is(err, server.ErrInvalidName) &&
			!errors.Is(err, server.ErrUnavailable) {
			// A stored adapter that fails to load is unusable as named;
			// say so rather than answer 500.
			err = fmt.Errorf("%w: adapter %q cannot be loaded: %w", server.ErrInvalidAdapter, name, err)
		}
		return nil, err
	}
	return lease{h}, nil
}

// List reports every stored adapter.
func (a *Adapters) List() []server.AdapterInfo {
	infos, err := a.r.List()
	if err != nil {
		return nil
	}
	out := make([]server.AdapterInfo, len(infos))
	for i, in := range infos {
		out[i] = server.AdapterInfo{Name: in.Name, State: string(in.State), Bytes: in.Bytes,
			Requests: int64(in.Requests), Loads: int64(in.Loads)}
		if p, err := a.r.Store().Path(in.Name); err == nil {
			out[i].Path = p
			if st, err := os.Stat(p); err == nil {
				out[i].Created = st.ModTime()
			}
		}
	}
	return out
}

// Import copies dir into the store under name, validating it first.
func (a *Adapters) Import(ctx context.Context, name, dir string, replace bool) error {
	var err error
	if replace {
		err = a.r.Replace(ctx, name, dir)
	} else {
		err = a.r.Add(ctx, name, dir)
	}
	if err == nil {
		return nil
	}
	switch err := registryError(err); {
	case errors.Is(err, server.ErrAdapterExists), errors.Is(err, server.ErrInvalidName), errors.Is(err, server.ErrUnavailable):
		return err
	default:
		// The registry loads an adapter before storing it: what fails here
		// is the adapter's content (format, shapes, base mismatch).
		return fmt.Errorf("%w: %w", server.ErrInvalidAdapter, err)
	}
}

// Remove deletes name from the store.
func (a *Adapters) Remove(name string) error { return registryError(a.r.Remove(name)) }

// Stats reports the registry's counters.
func (a *Adapters) Stats() server.AdapterStats {
	st := a.r.Stats()
	total := 0
	if names, err := a.r.Store().List(); err == nil {
		total = len(names)
	}
	return server.AdapterStats{Hits: int64(st.Hits), Misses: int64(st.Misses), Loads: int64(st.Loads),
		Evictions: int64(st.Evictions), LoadErrors: int64(st.LoadErrors), Resident: st.Loaded, Total: total,
		ResidentBytes: st.Bytes, BudgetBytes: a.budget}
}

// registryError maps the registry's sentinels onto the server's.
func registryError(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, registry.ErrNotFound):
		return fmt.Errorf("%w: %w", server.ErrModelNotFound, err)
	case errors.Is(err, registry.ErrName):
		return fmt.Errorf("%w: %w", server.ErrInvalidName, err)
	case errors.Is(err, registry.ErrExists):
		return fmt.Errorf("%w: %w", server.ErrAdapterExists, err)
	case errors.Is(err, registry.ErrClosed):
		return fmt.Errorf("%w: %w", server.ErrUnavailable, err)
	}
	return err
}
