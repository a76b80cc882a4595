package registry

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/loraplex/loraplex/adapters"
	"github.com/loraplex/loraplex/inference/model"
)

// fakeSpec is what a test adapter's adapter_config.json holds: the fake
// loader makes an adapter of n floats whose first value is the version v.
type fakeSpec struct {
	N int `json:"n"`
	V int `json:"v"`
}

// writeSrc writes a test adapter directory outside any store and returns
// it with its content hash.
func writeSrc(t testing.TB, n, v int) (string, string) {
	t.Helper()
	dir := t.TempDir()
	b, _ := json.Marshal(fakeSpec{n, v})
	if err := os.WriteFile(filepath.Join(dir, adapters.ConfigFile), b, 0o644); err != nil {
		t.Fatal(err)
	}
	h, err := adapters.Hash(dir)
	if err != nil {
		t.Fatal(err)
	}
	return dir, h
}

// fakeLoader builds adapters from fakeSpec files. With gate set, each load
// waits for the gate to close (or its context to end) first; fail decides
// whether the i-th call (from 1) fails.
type fakeLoader struct {
	calls atomic.Int64
	gate  chan struct{}
	fail  func(i int64) bool

	mu   sync.Mutex
	ctxs []context.Context
}

var errFake = fmt.Errorf("fake load failure")

func (f *fakeLoader) load(ctx context.Context, dir, id string) (*model.Adapter, error) {
	i := f.calls.Add(1)
	f.mu.Lock()
	f.ctxs = append(f.ctxs, ctx)
	f.mu.Unlock()
	if f.gate != nil {
		select {
		case <-f.gate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if f.fail != nil && f.fail(i) {
		return nil, errFake
	}
	b, err := os.ReadFile(filepath.Join(dir, adapters.ConfigFile))
	if err != nil {
		return nil, err
	}
	var s fakeSpec
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, err
	}
	p := make([]float32, max(s.N, 1))
	p[0] = float32(s.V)
	return &model.Adapter{ID: id, Prompt: p, NumVirtual: 1}, nil
}

// newTestRegistry makes a store holding the given adapters (name -> n
// floats, version 0) and a registry over it.
func newTestRegistry(t testing.TB, f *fakeLoader, cfg Config, sizes map[string]int) *Registry {
	t.Helper()
	s, err := OpenStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for name, n := range sizes {
		src, _ := writeSrc(t, n, 0)
		if _, err := s.Add(name, src); err != nil {
			t.Fatal(err)
		}
	}
	r := New(s, f.load, cfg)
	t.Cleanup(r.Close)
	return r
}

func mustAcquire(t testing.TB, r *Registry, name string) *Handle {
	t.Helper()
	h, err := r.Acquire(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func states(t testing.TB, r *Registry) map[string]State {
	t.Helper()
	infos, err := r.List()
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]State{}
	for _, in := range infos {
		m[in.Name] = in.State
	}
	return m
}

// checkAccounting verifies that the byte and lease counters agree with
// the adapters actually held, once no handle is outstanding.
func checkAccounting(t testing.TB, r *Registry) {
	t.Helper()
	st := r.Stats()
	infos, err := r.List()
	if err != nil {
		t.Fatal(err)
	}
	var bytes int64
	loaded := 0
	for _, in := range infos {
		if in.State != Cold && in.State != Loading {
			bytes += in.Bytes
			loaded++
		}
		if in.Leases != 0 {
			t.Errorf("%s still has %d leases", in.Name, in.Leases)
		}
	}
	if st.Leases != 0 || st.RetiredBytes != 0 {
		t.Errorf("leaked: %d leases, %d retired bytes", st.Leases, st.RetiredBytes)
	}
	if st.Bytes != bytes || st.Loaded != loaded {
		t.Errorf("stats say %d adapters / %d bytes, List says %d / %d", st.Loaded, st.Bytes, loaded, bytes)
	}
}
