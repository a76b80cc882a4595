package registry

import (
	"context"
	"errors"
	"maps"
	"math/rand/v2"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/loraplex/loraplex/adapters"
)

func TestAcquireHitMiss(t *testing.T) {
	f := &fakeLoader{}
	r := newTestRegistry(t, f, Config{}, map[string]int{"org/a": 10})
	h1 := mustAcquire(t, r, "org/a")
	h2 := mustAcquire(t, r, "org/a")
	if h1.Adapter() != h2.Adapter() {
		t.Error("a hit returned a different adapter")
	}
	hash, _ := r.Store().Hash("org/a")
	if h1.ID() != "org/a@"+hash[:12] || h1.Adapter().ID != h1.ID() {
		t.Errorf("ID %q / %q, want org/a@%s", h1.ID(), h1.Adapter().ID, hash[:12])
	}
	if got := states(t, r)["org/a"]; got != InUse {
		t.Errorf("state %q, want in use", got)
	}
	h1.Release()
	h1.Release() // a second Release is ignored
	h2.Release()
	st := r.Stats()
	if st.Hits != 1 || st.Misses != 1 || st.Loads != 1 || st.Bytes != 40 || st.Loaded != 1 || f.calls.Load() != 1 {
		t.Errorf("stats %+v, loader calls %d", st, f.calls.Load())
	}
	if got := states(t, r)["org/a"]; got != Loaded {
		t.Errorf("state %q, want loaded", got)
	}
	if _, err := r.Acquire(context.Background(), "nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown name: %v", err)
	}
	if _, err := r.Acquire(context.Background(), "../etc"); !errors.Is(err, ErrName) {
		t.Errorf("bad name: %v", err)
	}
	if r.Stats().LoadErrors != 0 {
		t.Error("a missing adapter counted as a load error")
	}
	checkAccounting(t, r)
}

func TestSingleFlight(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeLoader{gate: make(chan struct{})}
		r := newTestRegistry(t, f, Config{}, map[string]int{"a": 10})
		const n = 10
		handles := make([]*Handle, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				h, err := r.Acquire(context.Background(), "a")
				if err != nil {
					t.Error(err)
				}
				handles[i] = h
			})
		}
		synctest.Wait()
		if c := f.calls.Load(); c != 1 {
			t.Fatalf("%d loads started for %d waiters, want 1", c, n)
		}
		if s := states(t, r)["a"]; s != Loading {
			t.Errorf("state %q, want loading", s)
		}
		close(f.gate)
		wg.Wait()
		for _, h := range handles[1:] {
			if h.Adapter() != handles[0].Adapter() {
				t.Fatal("waiters got different adapters")
			}
		}
		if st := r.Stats(); st.Misses != n || st.Loads != 1 || st.Leases != n {
			t.Errorf("stats %+v", st)
		}
		for _, h := range handles {
			h.Release()
		}
		checkAccounting(t, r)
	})
}

func TestWaiterCancel(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeLoader{gate: make(chan struct{})}
		r := newTestRegistry(t, f, Config{}, map[string]int{"a": 10})
		ctx, cancel := context.WithCancel(context.Background())
		errs := make([]error, 3)
		handles := make([]*Handle, 3)
		var wg sync.WaitGroup
		for i := range 3 {
			wg.Go(func() {
				c := context.Background()
				if i == 0 {
					c = ctx
				}
				handles[i], errs[i] = r.Acquire(c, "a")
			})
		}
		synctest.Wait()
		cancel()
		synctest.Wait()
		if !errors.Is(errs[0], context.Canceled) {
			t.Fatalf("cancelled waiter: %v", errs[0])
		}
		f.mu.Lock()
		loadCtx := f.ctxs[0]
		f.mu.Unlock()
		if err := loadCtx.Err(); err != nil {
			t.Fatalf("the load was cancelled with its first waiter: %v", err)
		}
		close(f.gate)
		wg.Wait()
		if errs[1] != nil || errs[2] != nil {
			t.Fatal(errs)
		}
		if st := r.Stats(); st.Leases != 2 || f.calls.Load() != 1 {
			t.Errorf("leases %d (want 2), loads %d", st.Leases, f.calls.Load())
		}
		handles[1].Release()
		handles[2].Release()
		checkAccounting(t, r)
	})
}

func TestAllWaitersGiveUp(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeLoader{gate: make(chan struct{})}
		r := newTestRegistry(t, f, Config{}, map[string]int{"a": 10})
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if _, err := r.Acquire(ctx, "a"); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err %v", err)
		}
		close(f.gate)
		synctest.Wait()
		// The load finished for nobody; its result is cached for the next
		// request, with no lease left behind.
		if s := states(t, r)["a"]; s != Loaded {
			t.Errorf("state %q, want loaded", s)
		}
		checkAccounting(t, r)
		mustAcquire(t, r, "a").Release()
		if r.Stats().Hits != 1 {
			t.Error("the finished load was not reused")
		}
	})
}

func TestLoadErrorRetry(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeLoader{gate: make(chan struct{}), fail: func(i int64) bool { return i == 1 }}
		r := newTestRegistry(t, f, Config{}, map[string]int{"a": 10})
		errs := make([]error, 2)
		var wg sync.WaitGroup
		for i := range 2 {
			wg.Go(func() { _, errs[i] = r.Acquire(context.Background(), "a") })
		}
		synctest.Wait()
		close(f.gate)
		wg.Wait()
		for _, err := range errs {
			if !errors.Is(err, errFake) {
				t.Fatalf("waiter got %v, want the load's error", err)
			}
		}
		mustAcquire(t, r, "a").Release()
		if st := r.Stats(); f.calls.Load() != 2 || st.LoadErrors != 1 || st.Loads != 1 {
			t.Errorf("calls %d, stats %+v", f.calls.Load(), st)
		}
		checkAccounting(t, r)
	})
}

func TestLoadTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeLoader{gate: make(chan struct{})} // never opened
		r := newTestRegistry(t, f, Config{LoadTimeout: time.Minute}, map[string]int{"a": 10})
		start := time.Now()
		_, err := r.Acquire(context.Background(), "a")
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err %v", err)
		}
		if d := time.Since(start); d != time.Minute {
			t.Errorf("gave up after %v, want 1m", d)
		}
		if r.Stats().LoadErrors != 1 {
			t.Error("timeout not counted")
		}
	})
}

func TestReplaceWhileLeased(t *testing.T) {
	f := &fakeLoader{}
	r := newTestRegistry(t, f, Config{}, map[string]int{"a": 10})
	old := mustAcquire(t, r, "a")
	src, hash := writeSrc(t, 20, 1)
	if err := r.Replace(context.Background(), "a", src); err != nil {
		t.Fatal(err)
	}
	// The old lease still sees the old version, intact.
	if old.Adapter().Prompt[0] != 0 || len(old.Adapter().Prompt) != 10 {
		t.Error("the leased adapter changed under its request")
	}
	nu := mustAcquire(t, r, "a")
	if nu.ID() != adapters.ID("a", hash) || nu.Adapter().Prompt[0] != 1 || nu.ID() == old.ID() {
		t.Errorf("new lease %q, want version 1 as %s", nu.ID(), adapters.ID("a", hash))
	}
	if st := r.Stats(); st.RetiredBytes != 40 || st.Bytes != 80 || st.Hits != 1 {
		t.Errorf("stats %+v: want the old 40 bytes retired, the new 80 cached, and the new version already warm", st)
	}
	old.Release()
	nu.Release()
	checkAccounting(t, r)
	if err := r.Add(context.Background(), "a", src); !errors.Is(err, ErrExists) {
		t.Errorf("Add over an existing adapter: %v", err)
	}
}

func TestRemoveWhileLeased(t *testing.T) {
	f := &fakeLoader{}
	r := newTestRegistry(t, f, Config{}, map[string]int{"a": 10, "b": 5})
	if err := r.Pin(context.Background(), "a"); err != nil {
		t.Fatal(err)
	}
	h := mustAcquire(t, r, "a")
	if err := r.Remove("a"); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Acquire(context.Background(), "a"); !errors.Is(err, ErrNotFound) {
		t.Errorf("acquire after remove: %v", err)
	}
	if h.Adapter().Prompt == nil || r.Stats().RetiredBytes != 40 {
		t.Error("the removed adapter was dropped while leased")
	}
	h.Release()
	checkAccounting(t, r)
	// Re-adding the name starts unpinned.
	src, _ := writeSrc(t, 10, 3)
	if err := r.Add(context.Background(), "a", src); err != nil {
		t.Fatal(err)
	}
	if infos, _ := r.List(); infos[0].Pinned {
		t.Error("pin survived removal")
	}
}

func TestEvictionOrder(t *testing.T) {
	f := &fakeLoader{}
	// Four adapters of 100 bytes (25 floats) in a 300-byte budget.
	r := newTestRegistry(t, f, Config{MaxBytes: 300}, map[string]int{"a": 25, "b": 25, "c": 25, "d": 25})
	for _, n := range []string{"a", "b", "c"} {
		mustAcquire(t, r, n).Release()
	}
	mustAcquire(t, r, "a").Release() // a is now the most recent; b the oldest
	mustAcquire(t, r, "d").Release()
	want := map[string]State{"a": Loaded, "b": Cold, "c": Loaded, "d": Loaded}
	if got := states(t, r); !equalStates(got, want) {
		t.Errorf("states %v, want %v", got, want)
	}
	if st := r.Stats(); st.Evictions != 1 || st.Bytes != 300 {
		t.Errorf("stats %+v", st)
	}
	checkAccounting(t, r)
}

func TestCountBudgetAndPinning(t *testing.T) {
	f := &fakeLoader{}
	r := newTestRegistry(t, f, Config{MaxAdapters: 2}, map[string]int{"a": 1, "b": 1, "c": 1})
	if err := r.Pin(context.Background(), "a"); err != nil {
		t.Fatal(err)
	}
	mustAcquire(t, r, "b").Release()
	mustAcquire(t, r, "c").Release() // a is pinned, so b goes
	want := map[string]State{"a": Loaded, "b": Cold, "c": Loaded}
	if got := states(t, r); !equalStates(got, want) {
		t.Errorf("states %v, want %v", got, want)
	}
	r.Unpin("a")
	mustAcquire(t, r, "b").Release() // now a, the oldest, goes
	want = map[string]State{"a": Cold, "b": Loaded, "c": Loaded}
	if got := states(t, r); !equalStates(got, want) {
		t.Errorf("after unpin: states %v, want %v", got, want)
	}
	checkAccounting(t, r)
}

func TestOverBudgetWhileLeased(t *testing.T) {
	f := &fakeLoader{}
	r := newTestRegistry(t, f, Config{MaxBytes: 100}, map[string]int{"a": 25, "b": 25, "c": 25})
	var hs []*Handle
	for _, n := range []string{"a", "b", "c"} {
		hs = append(hs, mustAcquire(t, r, n))
	}
	if st := r.Stats(); st.Bytes != 300 || st.Evictions != 0 {
		t.Fatalf("leased adapters were evicted: %+v", st)
	}
	for _, h := range hs {
		h.Release()
	}
	// Releasing resolves the overshoot, keeping the most recent.
	want := map[string]State{"a": Cold, "b": Cold, "c": Loaded}
	if got := states(t, r); !equalStates(got, want) {
		t.Errorf("states %v, want %v", got, want)
	}
	checkAccounting(t, r)
}

func TestPutValidates(t *testing.T) {
	f := &fakeLoader{fail: func(i int64) bool { return i == 1 }}
	r := newTestRegistry(t, f, Config{}, nil)
	src, _ := writeSrc(t, 4, 7)
	if err := r.Add(context.Background(), "x", src); !errors.Is(err, errFake) {
		t.Fatalf("a failing load was accepted: %v", err)
	}
	if r.Store().Has("x") {
		t.Fatal("a rejected adapter reached the store")
	}
	if err := r.Add(context.Background(), "x", src); err != nil {
		t.Fatal(err)
	}
	h := mustAcquire(t, r, "x")
	defer h.Release()
	if st := r.Stats(); st.Hits != 1 || st.Misses != 0 || h.Adapter().Prompt[0] != 7 {
		t.Errorf("added adapter not served warm: %+v", st)
	}
}

func TestEvictAndClose(t *testing.T) {
	f := &fakeLoader{}
	r := newTestRegistry(t, f, Config{}, map[string]int{"a": 3})
	h := mustAcquire(t, r, "a")
	if r.Evict("a") {
		t.Error("evicted a leased adapter")
	}
	h.Release()
	if !r.Evict("a") || states(t, r)["a"] != Cold {
		t.Error("Evict did not unload")
	}
	r.Close()
	if _, err := r.Acquire(context.Background(), "a"); !errors.Is(err, ErrClosed) {
		t.Errorf("after Close: %v", err)
	}
}

func equalStates(a, b map[string]State) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// TestStorm runs acquire/release, replace, remove/re-add, evict and pin
// from several goroutines at once. Every lease must see one consistent
// version whose content matches its ID, and afterwards no lease or byte may
// be unaccounted for.
func TestStorm(t *testing.T) {
	f := &fakeLoader{fail: func(i int64) bool { return i%17 == 0 }}
	names := []string{"a", "org/b", "ft:base:x:1", "d"}
	r := newTestRegistry(t, f, Config{MaxBytes: 400, MaxAdapters: 3}, nil)
	// Three versions of every name, of different sizes; version v of name
	// i holds v as its first value.
	srcs := map[string][]string{}
	version := map[string]float32{} // ID -> version
	for i, name := range names {
		for v := range 3 {
			src, h := writeSrc(t, 10*(i+1)+v, v)
			srcs[name] = append(srcs[name], src)
			version[adapters.ID(name, h)] = float32(v)
		}
		if _, err := r.Store().Add(name, srcs[name][0]); err != nil {
			t.Fatal(err)
		}
	}
	tolerated := func(err error) bool {
		return err == nil || errors.Is(err, ErrNotFound) || errors.Is(err, ErrExists) ||
			errors.Is(err, errFake) || errors.Is(err, context.Canceled)
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(g), 99))
			var held []*Handle
			for range 150 {
				name := names[rng.IntN(len(names))]
				var err error
				switch op := rng.IntN(100); {
				case op < 60:
					ctx, cancel := context.WithCancel(context.Background())
					if op < 5 {
						cancel()
					}
					var h *Handle
					if h, err = r.Acquire(ctx, name); err == nil {
						if v, ok := version[h.ID()]; !ok || h.Adapter().Prompt[0] != v {
							t.Errorf("lease %s holds version %v", h.ID(), h.Adapter().Prompt[0])
						}
						held = append(held, h)
					}
					cancel()
				case op < 75 && len(held) > 0:
					i := rng.IntN(len(held))
					h := held[i]
					if v := version[h.ID()]; h.Adapter().Prompt[0] != v {
						t.Errorf("leased adapter %s changed", h.ID())
					}
					h.Release()
					held = append(held[:i], held[i+1:]...)
				case op < 85:
					err = r.Replace(context.Background(), name, srcs[name][rng.IntN(3)])
				case op < 90:
					if err = r.Remove(name); err == nil || errors.Is(err, ErrNotFound) {
						err = r.Add(context.Background(), name, srcs[name][rng.IntN(3)])
					}
				case op < 95:
					r.Evict(name)
				default:
					if err = r.Pin(context.Background(), name); err == nil {
						r.Unpin(name)
					}
				}
				if !tolerated(err) {
					t.Errorf("%s: %v", name, err)
				}
			}
			for _, h := range held {
				h.Release()
			}
		})
	}
	wg.Wait()
	checkAccounting(t, r)
	st := r.Stats()
	if st.Bytes > 400 || st.Loaded > 3 {
		t.Errorf("over budget with no leases: %+v", st)
	}
	if st.Hits == 0 || st.Loads == 0 || st.Evictions == 0 || st.LoadErrors == 0 {
		t.Errorf("the storm missed a path: %+v", st)
	}
	t.Logf("storm: %+v, loader calls %d", st, f.calls.Load())
}

// TestNamesInStore checks that every accepted name form round-trips
// through the store's directory names.
func TestNamesInStore(t *testing.T) {
	f := &fakeLoader{}
	names := []string{"plain", "org/name", "ft:TinyLlama-1.1B:acme:support:abc123", "org/ft:x:y:z", "v1.2_a-b"}
	sizes := map[string]int{}
	for _, n := range names {
		sizes[n] = 2
	}
	r := newTestRegistry(t, f, Config{}, sizes)
	infos, err := r.List()
	if err != nil {
		t.Fatal(err)
	}
	if len(infos) != len(names) {
		t.Fatalf("listed %d adapters, want %d", len(infos), len(names))
	}
	for _, n := range names {
		h := mustAcquire(t, r, n)
		if h.Name() != n || h.ID()[:len(n)+1] != n+"@" {
			t.Errorf("name %q gave handle %q / %q", n, h.Name(), h.ID())
		}
		h.Release()
	}
}

// TestPerAdapterCounters checks List's per-name counters against a known
// sequence of hits, cold loads after eviction, a replacement and a removal.
func TestPerAdapterCounters(t *testing.T) {
	f := &fakeLoader{}
	r := newTestRegistry(t, f, Config{MaxAdapters: 1}, map[string]int{"a": 1, "b": 1})
	counts := func() map[string][2]uint64 {
		infos, err := r.List()
		if err != nil {
			t.Fatal(err)
		}
		m := map[string][2]uint64{}
		for _, in := range infos {
			m[in.Name] = [2]uint64{in.Requests, in.Loads}
		}
		return m
	}
	steps := []struct {
		name string
		do   func()
		want map[string][2]uint64 // name -> {requests, loads}
	}{
		{"nothing yet", func() {}, map[string][2]uint64{"a": {0, 0}, "b": {0, 0}}},
		{"a cold, then two hits", func() {
			for range 3 {
				mustAcquire(t, r, "a").Release()
			}
		}, map[string][2]uint64{"a": {3, 1}, "b": {0, 0}}},
		{"b evicts a", func() { mustAcquire(t, r, "b").Release() }, map[string][2]uint64{"a": {3, 1}, "b": {1, 1}}},
		{"a loads again", func() { mustAcquire(t, r, "a").Release() }, map[string][2]uint64{"a": {4, 2}, "b": {1, 1}}},
		{"replacing a loads it and keeps its counts", func() {
			src, _ := writeSrc(t, 1, 1)
			if err := r.Replace(context.Background(), "a", src); err != nil {
				t.Fatal(err)
			}
			mustAcquire(t, r, "a").Release()
		}, map[string][2]uint64{"a": {5, 3}, "b": {1, 1}}},
		{"removing b and adding it back starts afresh", func() {
			if err := r.Remove("b"); err != nil {
				t.Fatal(err)
			}
			src, _ := writeSrc(t, 1, 2)
			if err := r.Add(context.Background(), "b", src); err != nil {
				t.Fatal(err)
			}
		}, map[string][2]uint64{"a": {5, 3}, "b": {0, 1}}},
		{"an unknown name counts nowhere", func() {
			if _, err := r.Acquire(context.Background(), "nope"); !errors.Is(err, ErrNotFound) {
				t.Fatalf("unknown name: %v", err)
			}
		}, map[string][2]uint64{"a": {5, 3}, "b": {0, 1}}},
	}
	for _, s := range steps {
		s.do()
		if got := counts(); !maps.Equal(got, s.want) {
			t.Errorf("%s: {requests, loads} %v, want %v", s.name, got, s.want)
		}
	}
	checkAccounting(t, r)
}
