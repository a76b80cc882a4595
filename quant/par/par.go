package par

import (
	"runtime"
	"sync"
)

// Pool is a fork-join pool of persistent workers. The zero value is not
// usable; build one with New. A Pool is safe for concurrent use: concurrent
// For calls share the workers.
type Pool struct {
	workers int
	jobs    chan job
}

type job struct {
	fn     func(lo, hi int)
	lo, hi int
	wg     *sync.WaitGroup
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
	for j := range p.jobs {
		j.fn(j.lo, j.hi)
		j.wg.Done()
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
	chunks := min(p.workers, (n+grain-1)/grain)
	if chunks <= 1 {
		fn(0, n)
		return
	}
	wg := waitGroups.Get().(*sync.WaitGroup)
	step := (n + chunks - 1) / chunks
	for lo := step; lo < n; lo += step {
		wg.Add(1)
		p.jobs <- job{fn: fn, lo: lo, hi: min(lo+step, n), wg: wg}
	}
	fn(0, min(step, n))
	wg.Wait()
	waitGroups.Put(wg)
}

// waitGroups recycles For's WaitGroups so a parallel loop allocates nothing.
var waitGroups = sync.Pool{New: func() any { return new(sync.WaitGroup) }}
