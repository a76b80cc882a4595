package registry

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/golang-lru/v2/simplelru"

	"github.com/loraplex/loraplex/adapters"
	"github.com/loraplex/loraplex/inference/model"
)

// Loader turns the adapter directory dir into an adapter whose ID is id.
// Production code wraps adapters.Load with the base model's config; tests
// inject fakes.
type Loader func(ctx context.Context, dir, id string) (*model.Adapter, error)

// Config bounds the memory the registry keeps adapters in.
type Config struct {
	// MaxBytes caps the weight bytes of the adapters held in memory.
	MaxBytes int64
	// MaxAdapters caps how many adapters are held in memory.
	MaxAdapters int
	// LoadTimeout bounds one load from disk.
	LoadTimeout time.Duration
}

// DefaultConfig holds room for a few hundred small adapters in 2 GiB.
func DefaultConfig() Config {
	return Config{MaxBytes: 2 << 30, MaxAdapters: 256, LoadTimeout: 2 * time.Minute}
}

// Validate reports settings that make no sense.
func (c Config) Validate() error {
	switch {
	case c.MaxBytes <= 0:
		return fmt.Errorf("registry: MaxBytes is %d; it must be positive", c.MaxBytes)
	case c.MaxAdapters <= 0:
		return fmt.Errorf("registry: MaxAdapters is %d; it must be positive", c.MaxAdapters)
	case c.LoadTimeout <= 0:
		return fmt.Errorf("registry: LoadTimeout is %v; it must be positive", c.LoadTimeout)
	}
	return nil
}

// withDefaults fills unset (or nonsensical) fields from DefaultConfig.
func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.MaxBytes <= 0 {
		c.MaxBytes = d.MaxBytes
	}
	if c.MaxAdapters <= 0 {
		c.MaxAdapters = d.MaxAdapters
	}
	if c.LoadTimeout <= 0 {
		c.LoadTimeout = d.LoadTimeout
	}
	return c
}

// value is one loaded version of an adapter. refs counts leases; the
// registry's own reference is cached. All fields but the immutable ones are
// guarded by Registry.mu.
type value struct {
	name    string
	id      string
	adapter *model.Adapter
	bytes   int64
	refs    int
	cached  bool
	uses    *usage // the name's counters, shared by its versions
}

// usage counts one adapter name's traffic across its versions; guarded by
// Registry.mu.
type usage struct {
	requests, loads uint64
}

// call is one in-flight load that any number of Acquires wait for.
type call struct {
	done     chan struct{}
	finished bool // set with done closed, under Registry.mu
	waiters  int  // leases to hand out when the load succeeds
	v        *value
	err      error
}

// Registry serves adapters from a Store, loading each on first use and
// keeping the most recently used in memory within the Config's bounds.
type Registry struct {
	store *Store
	load  Loader
	cfg   Config

	ctx    context.Context // parent of every load; Close cancels it
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu      sync.Mutex
	closed  bool
	lru     *simplelru.LRU[string, *value] // name -> current version, oldest first
	loading map[string]*call
	pinned  map[string]bool
	bytes   int64 // weights of the cached values
	retired int64 // weights of uncached values that leases keep alive
	leases  int
	stats   Stats
	usage   map[string]*usage // per name, dropped when the name is removed
}

// New returns a registry over store. Zero Config fields take their
// defaults.
func New(store *Store, load Loader, cfg Config) *Registry {
	// The LRU only keeps recency order: its own size bound would evict
	// leased adapters, so it is unbounded and evictLocked enforces both
	// the byte and the count budget.
	lru, _ := simplelru.NewLRU[string, *value](math.MaxInt, nil)
	ctx, cancel := context.WithCancel(context.Background())
	r := &Registry{
		store: store, load: load, cfg: cfg.withDefaults(),
		ctx: ctx, cancel: cancel,
		lru: lru, loading: map[string]*call{}, pinned: map[string]bool{}, usage: map[string]*usage{},
	}
	store.onChange(r.changed)
	return r
}

// Store is the registry's store.
func (r *Registry) Store() *Store { return r.store }

// Handle is a lease on one loaded adapter version. The adapter stays in
// memory and unchanged until Release, whatever happens to its name
// meanwhile.
type Handle struct {
	r        *Registry
	v        *value
	released atomic.Bool
}

// Adapter is the leased adapter.
func (h *Handle) Adapter() *model.Adapter { return h.v.adapter }

// ID is the leased version's identity, name@hash.
func (h *Handle) ID() string { return h.v.id }

// Name is the adapter name the lease was acquired for.
func (h *Handle) Name() string { return h.v.name }

// Release ends the lease. Calls after the first do nothing.
func (h *Handle) Release() {
	if !h.released.CompareAndSwap(false, true) {
		return
	}
	h.r.mu.Lock()
	h.r.releaseLocked(h.v)
	h.r.mu.Unlock()
}

// Acquire leases the named adapter, loading it if it is not in memory.
// Concurrent Acquires of a cold adapter share one load; each waits only as
// long as its own ctx allows, and giving up does not stop the load for the
// others. A failed load is reported to every waiter and retried by the next
// Acquire.
func (r *Registry) Acquire(ctx context.Context, name string) (*Handle, error) {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil, ErrClosed
	}
	if v, ok := r.lru.Get(name); ok {
		v.refs++
		r.leases++
		r.stats.Hits++
		v.uses.requests++
		r.mu.Unlock()
		return &Handle{r: r, v: v}, nil
	}
	if err := ValidateName(name); err != nil {
		r.mu.Unlock()
		return nil, err
	}
	r.stats.Misses++
	c := r.loading[name]
	if c == nil {
		c = &call{done: make(chan struct{})}
		r.loading[name] = c
		r.wg.Add(1)
		go r.runLoad(name, c)
	}
	c.waiters++
	r.mu.Unlock()

	select {
	case <-c.done:
		if c.err != nil {
			return nil, c.err
		}
		return &Handle{r: r, v: c.v}, nil
	case <-ctx.Done():
		r.mu.Lock()
		if !c.finished {
			c.waiters--
		} else if c.err == nil {
			// The load won the race and counted this waiter's lease.
			r.releaseLocked(c.v)
		}
		r.mu.Unlock()
		return nil, fmt.Errorf("registry: waiting for %q: %w", name, context.Cause(ctx))
	}
}

// runLoad loads name for call c, detached from the waiters' contexts.
func (r *Registry) runLoad(name string, c *call) {
	defer r.wg.Done()
	ctx, cancel := context.WithTimeout(r.ctx, r.cfg.LoadTimeout)
	defer cancel()
	start := time.Now()
	var v *value
	err := r.store.Read(name, func(dir, hash string) error {
		var err error
		v, err = r.loadValue(ctx, name, dir, hash)
		return err
	})
	elapsed := time.Since(start)

	r.mu.Lock()
	defer r.mu.Unlock()
	c.finished = true
	defer close(c.done)
	current := r.loading[name] == c
	if current {
		delete(r.loading, name)
	}
	if err != nil {
		if !errors.Is(err, ErrNotFound) {
			r.stats.LoadErrors++
		}
		c.err = fmt.Errorf("registry: load %q: %w", name, err)
		return
	}
	r.stats.Loads++
	r.stats.LoadTime += elapsed
	if current {
		v.uses = r.usageLocked(name)
	} else {
		v.uses = &usage{} // the name changed meanwhile: count nothing for it
	}
	v.uses.loads++
	v.uses.requests += uint64(c.waiters)
	if cur, ok := r.lru.Peek(name); ok && cur.id == v.id {
		v = cur // the same version got cached meanwhile (an Add of equal content)
	} else if current {
		v = r.installLocked(v)
	}
	// An uncached value (its name changed while it loaded) still serves
	// the requests that were waiting for it.
	r.leaseLocked(v, c.waiters)
	c.v = v
	r.evictLocked()
}

func (r *Registry) loadValue(ctx context.Context, name, dir, hash string) (*value, error) {
	id := adapters.ID(name, hash)
	a, err := r.load(ctx, dir, id)
	if err != nil {
		return nil, err
	}
	switch {
	case a == nil:
		return nil, fmt.Errorf("loader returned no adapter")
	case a.ID == "":
		a.ID = id
	case a.ID != id:
		return nil, fmt.Errorf("loader returned adapter %q, want ID %q", a.ID, id)
	}
	return &value{name: name, id: id, adapter: a, bytes: a.Bytes()}, nil
}

// installLocked makes v the cached version of its name and returns the
// value now cached: an equal version already there is kept instead.
// usageLocked returns name's counters, creating them on its first load.
func (r *Registry) usageLocked(name string) *usage {
	u := r.usage[name]
	if u == nil {
		u = &usage{}
		r.usage[name] = u
	}
	return u
}

func (r *Registry) installLocked(v *value) *value {
	if cur, ok := r.lru.Peek(v.name); ok {
		if cur.id == v.id {
			return cur
		}
		r.uncacheLocked(cur)
	}
	v.cached = true
	r.lru.Add(v.name, v)
	r.bytes += v.bytes
	return v
}

func (r *Registry) leaseLocked(v *value, n int) {
	if n == 0 {
		return
	}
	if v.refs == 0 && !v.cached {
		r.retired += v.bytes
	}
	v.refs += n
	r.leases += n
}

func (r *Registry) releaseLocked(v *value) {
	v.refs--
	r.leases--
	if v.refs > 0 {
		return
	}
	if !v.cached {
		r.retired -= v.bytes
		return
	}
	r.evictLocked()
}

// uncacheLocked drops the registry's reference to v; leases keep it alive.
func (r *Registry) uncacheLocked(v *value) {
	r.lru.Remove(v.name)
	v.cached = false
	r.bytes -= v.bytes
	if v.refs > 0 {
		r.retired += v.bytes
	}
}

func (r *Registry) overLocked() bool {
	return r.bytes > r.cfg.MaxBytes || r.lru.Len() > r.cfg.MaxAdapters
}

// evictLocked drops least recently used adapters that are neither leased
// nor pinned until the budget holds. When everything left is in use the
// registry stays over budget until leases are released.
func (r *Registry) evictLocked() {
	if !r.overLocked() {
		return
	}
	for _, v := range r.lru.Values() {
		if !r.overLocked() {
			return
		}
		if v.refs > 0 || r.pinned[v.name] {
			continue
		}
		r.uncacheLocked(v)
		r.stats.Evictions++
	}
}

// changed runs after the store adds, replaces or removes name (with the
// name's store lock held): the old version stops serving new requests, and
// a load of it still in flight will not be cached.
func (r *Registry) changed(name, hash string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if v, ok := r.lru.Peek(name); ok && v.id != adapters.ID(name, hash) {
		r.uncacheLocked(v)
	}
	delete(r.loading, name)
	if hash == "" {
		delete(r.pinned, name)
		delete(r.usage, name)
	}
}

// Add copies the adapter directory src into the store as name, after
// loading it to prove it valid; the loaded adapter is kept in memory, so the
// first request does not wait for it.
func (r *Registry) Add(ctx context.Context, name, src string) error {
	return r.put(ctx, name, false, copyFrom(src))
}

// Replace is Add for a name that may already exist. Requests holding the
// old version keep it until they finish; new ones get the new version.
func (r *Registry) Replace(ctx context.Context, name, src string) error {
	return r.put(ctx, name, true, copyFrom(src))
}

// Put is Add for an adapter that write creates in the (not yet existing)
// directory it is given, e.g. with adapters.SaveLoRA.
func (r *Registry) Put(ctx context.Context, name string, replace bool, write func(dir string) error) error {
	return r.put(ctx, name, replace, write)
}

func (r *Registry) put(ctx context.Context, name string, replace bool, write func(dir string) error) error {
	r.mu.Lock()
	closed := r.closed
	r.mu.Unlock()
	if closed {
		return ErrClosed
	}
	st, err := r.store.stage(name, write)
	if err != nil {
		return err
	}
	defer st.discard()
	start := time.Now()
	v, err := r.loadValue(ctx, name, st.dir, st.hash)
	elapsed := time.Since(start)
	r.mu.Lock()
	if err != nil {
		r.stats.LoadErrors++
	} else {
		r.stats.Loads++
		r.stats.LoadTime += elapsed
	}
	r.mu.Unlock()
	if err != nil {
		return fmt.Errorf("registry: adapter %q rejected: %w", name, err)
	}
	return r.store.commit(st, replace, func() {
		r.mu.Lock()
		defer r.mu.Unlock()
		// A replaced name keeps its counters; a new one starts at this load.
		v.uses = r.usageLocked(name)
		v.uses.loads++
		r.installLocked(v)
		r.evictLocked()
	})
}

// Remove deletes the named adapter. Requests holding it keep it until they
// finish.
func (r *Registry) Remove(name string) error {
	return r.store.Remove(name)
}

// Evict drops the registry's reference to name, as the LRU would, unless
// the adapter is in use. It reports whether an adapter was unloaded.
func (r *Registry) Evict(name string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	v, ok := r.lru.Peek(name)
	if !ok || v.refs > 0 {
		return false
	}
	r.uncacheLocked(v)
	r.stats.Evictions++
	return true
}

// Pin loads name and keeps it in memory until Unpin or its removal.
func (r *Registry) Pin(ctx context.Context, name string) error {
	r.mu.Lock()
	was := r.pinned[name]
	r.pinned[name] = true
	r.mu.Unlock()
	h, err := r.Acquire(ctx, name)
	if err != nil {
		if !was {
			r.Unpin(name)
		}
		return err
	}
	h.Release()
	return nil
}

// Unpin lets name be evicted again.
func (r *Registry) Unpin(name string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.pinned, name)
	r.evictLocked()
}

// Close stops in-flight loads and waits for them; Acquire then fails.
// Outstanding handles stay valid.
func (r *Registry) Close() {
	r.mu.Lock()
	r.closed = true
	r.mu.Unlock()
	r.cancel()
	r.wg.Wait()
}

// Stats are the registry's counters and its memory use.
type Stats struct {
	Hits       uint64        // Acquires served from memory
	Misses     uint64        // Acquires that waited for a load
	Loads      uint64        // successful loads, including those that validate an Add
	LoadErrors uint64        // failed loads
	Evictions  uint64        // adapters dropped from memory to fit the budget or by Evict
	LoadTime   time.Duration // total time spent in successful loads

	Loaded       int   // adapters held in memory
	Bytes        int64 // their weight bytes
	Leases       int   // outstanding handles
	RetiredBytes int64 // replaced, removed or evicted versions kept alive by handles
}

// Stats returns a snapshot of the counters.
func (r *Registry) Stats() Stats {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.stats
	s.Loaded = r.lru.Len()
	s.Bytes = r.bytes
	s.Leases = r.leases
	s.RetiredBytes = r.retired
	return s
}

// State is where an adapter is in its life cycle.
type State string

// The states List reports.
const (
	Cold    State = "cold"    // on disk only
	Loading State = "loading" // a load is in flight
	Loaded  State = "loaded"  // in memory, not in use
	InUse   State = "in use"  // in memory and leased
)

// Info describes one stored adapter.
type Info struct {
	Name   string
	ID     string // set once loaded
	State  State
	Bytes  int64 // in memory; 0 when cold
	Leases int   // leases on the current version
	Pinned bool
	// Requests counts the leases handed out for the name and Loads its
	// loads from disk (adding or replacing it included), since it was
	// added; both survive eviction and replacement.
	Requests, Loads uint64
}

// List describes every stored adapter, sorted by name.
func (r *Registry) List() ([]Info, error) {
	names, err := r.store.List()
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]Info, len(names))
	for i, name := range names {
		in := Info{Name: name, State: Cold, Pinned: r.pinned[name]}
		if u := r.usage[name]; u != nil {
			in.Requests, in.Loads = u.requests, u.loads
		}
		if v, ok := r.lru.Peek(name); ok {
			in.ID, in.Bytes, in.Leases, in.State = v.id, v.bytes, v.refs, Loaded
			if v.refs > 0 {
				in.State = InUse
			}
		} else if r.loading[name] != nil {
			in.State = Loading
		}
		out[i] = in
	}
	return out, nil
}
