package par

import (
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// spinFor is how long an idle worker, or a caller waiting for its
// workers, keeps polling before it blocks. A decoding step runs hundreds
// of short parallel regions a few microseconds apart; blocking between
// them would make every region pay a goroutine wake-up (tens of
// microseconds when the sleeping thread must be woken), while polling for
// longer than this would burn a core that nothing is using.
const spinFor = 50 * time.Microsecond

// Pool is a fork-join pool of persistent workers. The zero value is not
// usable; build one with New. A Pool is safe for concurrent use: concurrent
// For calls share the workers. Workers poll for spinFor after each range
// and then block, so an idle Pool costs no CPU.
type Pool struct {
	workers int
	jobs    chan job
	gate    *Gate // nil: no priority
	low     bool  // on gate's Low side
}

type job struct {
	fn     func(lo, hi int)
	lo, hi int
	r      *region
}

// region tracks the ranges of one For that run on the workers.
type region struct {
	pending atomic.Int32
	// done receives one value when the last pending range finishes; its
	// buffer of one means the finishing worker never blocks or wakes
	// anyone unless the caller has stopped polling and gone to sleep.
	done chan struct{}
}

// New starts a pool of the given number of workers; workers < 1 means
// runtime.GOMAXPROCS(0).
func New(workers int) *Pool {
	if workers < 1 {
		workers = runtime.GOMAXPROCS(0)
	}
	p := &Pool{workers: workers, jobs: make(chan job, workers*4)}
	for i := 0; i < workers-1; i++ {
		go p.work()
	}
	return p
}

// Serial is a pool of one that runs everything on the calling goroutine.
var Serial = New(1)

func (p *Pool) work() {
	for {
		j := p.next()
		j.fn(j.lo, j.hi)
		if j.r.pending.Add(-1) == 0 {
			j.r.done <- struct{}{}
		}
	}
}

// next returns the next job, polling for up to spinFor before blocking.
func (p *Pool) next() job {
	var start time.Time
	for i := 0; ; i++ {
		select {
		case j := <-p.jobs:
			return j
		default:
		}
		if i == 0 {
			start = time.Now()
		} else if time.Since(start) > spinFor {
			return <-p.jobs
		}
		runtime.Gosched()
	}
}

// wait returns once r's last range is done, polling for up to spinFor
// before blocking.
func (r *region) wait() {
	var start time.Time
	for i := 0; ; i++ {
		select {
		case <-r.done:
			return
		default:
		}
		if i == 0 {
			start = time.Now()
		} else if time.Since(start) > spinFor {
			<-r.done
			return
		}
		runtime.Gosched()
	}
}

// Workers reports how many goroutines (the caller included) run a For.
func (p *Pool) Workers() int { return p.workers }

// For calls fn on disjoint ranges that cover [0, n) and returns when all of
// them are done. Ranges are at least grain long (except the last), so tiny
// loops stay on the calling goroutine. The caller runs the first range itself.
func (p *Pool) For(n, grain int, fn func(lo, hi int)) {
	if n <= 0 {
		return
	}
	if grain < 1 {
		grain = 1
	}
	if p.low {
		p.forLow(n, grain, fn)
		return
	}
	g := p.gate
	if g != nil {
		// Serial loops count too: a one-thread inference pool is still
		// inference.
		g.enter()
	}
	chunks := min(p.workers, (n+grain-1)/grain)
	if chunks <= 1 {
		fn(0, n)
		if g != nil {
			g.exit()
		}
		return
	}
	r := regions.Get().(*region)
	step := (n + chunks - 1) / chunks
	// Count every range before handing any out, so a fast worker cannot
	// see the count reach zero while ranges are still being queued.
	r.pending.Store(int32((n - 1) / step))
	for lo := step; lo < n; lo += step {
		p.jobs <- job{fn: fn, lo: lo, hi: min(lo+step, n), r: r}
	}
	fn(0, min(step, n))
	r.wait()
	regions.Put(r)
	if g != nil {
		g.exit()
	}
}

// Yield is a checkpoint for long stretches of work on a Low pool (a loop
// inside one range of a For, or serial work between For calls): there the
// pool gives way to its gate's High side if it must. Code that may run for
// more than about a millisecond without starting a For calls it every few
// hundred microseconds. On other pools it does nothing.
func (p *Pool) Yield() {
	if p != nil && p.low {
		p.gate.checkpoint()
	}
}

// forLow is For on a Low pool: the caller and the workers claim pieces of
// [0, n) in turn, each sized to run for about pieceTarget, and pass a
// checkpoint of the gate before each. Pieces are multiples of a quantum
// fixed by n, grain and the pool size alone, so the results do not depend
// on timing: kernels that work in tiles of up to 16 elements (quant's
// panels) see the same tiles as in one unsplit range.
func (p *Pool) forLow(n, grain int, fn func(lo, hi int)) {
	q := (grain + align - 1) / align * align
	switch {
	case n <= p.workers:
		// One element per goroutine: claim loops that share their work
		// out themselves.
		q = grain
	case n < 2*q:
		q = n
	}
	r := lowRegions.Get().(*lowRegion)
	r.fn, r.n, r.q, r.g = fn, n, q, p.gate
	r.next.Store(0)
	others := min(p.workers-1, (n-1)/q)
	r.pending.Store(int32(others))
	for range others {
		p.jobs <- job{fn: r.claim, r: &r.region}
	}
	r.run(0, 0)
	if others > 0 {
		r.wait()
	}
	r.fn, r.g = nil, nil
	lowRegions.Put(r)
}

// align is the multiple of the grain that a Low For's pieces come in.
const align = 16

// lowRegion is one For on a Low pool.
type lowRegion struct {
	region
	fn    func(lo, hi int)
	n, q  int // range and piece quantum
	g     *Gate
	next  atomic.Int64
	claim func(lo, hi int) // run, bound once
}

// run is one goroutine's share of a Low For; its range is ignored. Pieces
// start at one quantum and grow (at most fourfold) or shrink towards
// pieceTarget by their measured time, as nothing else says how long an
// element takes.
func (r *lowRegion) run(_, _ int) {
	size := r.q
	for {
		lo := int(r.next.Add(int64(size))) - size
		if lo >= r.n {
			return
		}
		hi := min(r.n, lo+size)
		r.g.checkpoint()
		start := time.Now()
		r.fn(lo, hi)
		el := time.Since(start)
		next := 4 * size
		if el > 0 {
			next = min(next, int(float64(hi-lo)*float64(pieceTarget)/float64(el)))
		}
		size = max(r.q, next/r.q*r.q)
	}
}

var lowRegions = sync.Pool{New: func() any {
	r := &lowRegion{region: region{done: make(chan struct{}, 1)}}
	r.claim = r.run
	return r
}}

// regions recycles For's completion records so a parallel loop allocates
// nothing.
var regions = sync.Pool{New: func() any { return &region{done: make(chan struct{}, 1)} }}
