package par

import (
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

const (
	// quiet is how long after its last parallel region a high-priority
	// pool still counts as busy: a decoding step runs its regions
	// microseconds apart with serial work between them, and waking the
	// low-priority side for such a gap would cost the next region a core.
	quiet = 2 * time.Millisecond
	// poll is the longest a waiting low-priority goroutine sleeps before it
	// looks again, so it resumes within about this long once the high side
	// goes quiet or the gate closes.
	poll = time.Millisecond
	// burst bounds the time the low side can save up while it is not
	// running, so a long pause does not turn into a long stall of the high
	// side later.
	burst = time.Millisecond
	// maxCharge bounds the time charged for one interval between
	// checkpoints: longer intervals are the low side idling between jobs,
	// not running.
	maxCharge = 5 * time.Millisecond
	// pieceTarget is how long a low-priority pool's For runs between
	// checkpoints; the high side waits at most about this long for a core.
	pieceTarget = 500 * time.Microsecond
)

// Priority says which side of a Gate a pool is on.
type Priority uint8

const (
	// High pools run whenever they have work and mark the gate busy while
	// they do.
	High Priority = iota
	// Low pools run their loops in short pieces and, between pieces, give
	// way to busy High pools beyond their share.
	Low
)

// Gate gives the High pools built on it priority over its Low pools. A Low
// pool checks the gate between short pieces of its loops (and wherever its
// code calls Yield); while a High pool has run a parallel region within the
// last couple of milliseconds, the Low side may run only for the gate's
// share of the wall-clock time, accounted with a token bucket, and
// otherwise sleeps, freeing its cores. When the High side is idle the Low
// side runs unhindered. High pools pay two atomic adds per For.
type Gate struct {
	// state counts the High regions in progress in its low 32 bits and
	// the regions ever started in its high 32 bits, so one atomic add
	// marks a region's start and another its end.
	state  atomic.Uint64
	closed atomic.Bool
	share  float64

	mu       sync.Mutex
	credit   time.Duration // Low run time still allowed while the High side is busy
	refilled time.Time     // when credit was last topped up
	lastLow  time.Time     // the Low side's last checkpoint
	seen     uint32        // High regions started, as of seenAt
	seenAt   time.Time     // when a new High region was last noticed
	stats    GateStats

	// Clock and sleep, replaced by tests.
	now   func() time.Time
	sleep func(time.Duration)
}

// GateStats counts what the Low side of a Gate did.
type GateStats struct {
	Waits   int64         // checkpoints that had to wait for the High side
	Waited  time.Duration // time spent waiting
	Charged time.Duration // Low run time charged while the High side was busy
}

// NewGate returns a gate whose Low side may run for share of the time while
// its High side is busy. share must be in (0, 1]: 1 means no priority at
// all, and a share above zero keeps every wait bounded.
func NewGate(share float64) (*Gate, error) {
	if !(share > 0 && share <= 1) {
		return nil, fmt.Errorf("par: training share %v must be above 0 and at most 1", share)
	}
	g := &Gate{share: share, now: time.Now, sleep: time.Sleep}
	t := g.now()
	g.refilled, g.lastLow, g.seenAt = t, t, t.Add(-quiet)
	return g, nil
}

// Share is the fraction of the time the Low side may run while the High
// side is busy.
func (g *Gate) Share() float64 { return g.share }

// Pool starts a pool of workers on the given side of g (workers < 1 means
// runtime.GOMAXPROCS(0)).
func (g *Gate) Pool(workers int, pri Priority) *Pool {
	p := New(workers)
	p.gate, p.low = g, pri == Low
	return p
}

// Close lets every Low goroutine waiting on g go on, and makes later
// checkpoints return at once.
func (g *Gate) Close() { g.closed.Store(true) }

// Stats returns the Low side's counters.
func (g *Gate) Stats() GateStats {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.stats
}

func (g *Gate) enter() { g.state.Add(1<<32 + 1) }
func (g *Gate) exit()  { g.state.Add(^uint64(0)) }

// busy reports whether the High side is running or ran within quiet of
// now. g.mu must be held.
func (g *Gate) busy(now time.Time) bool {
	s := g.state.Load()
	if started := uint32(s >> 32); started != g.seen {
		g.seen, g.seenAt = started, now
	}
	return uint32(s) > 0 || now.Sub(g.seenAt) < quiet
}

// checkpoint charges the Low side for its run time since its last
// checkpoint if the High side is busy, and waits while the High side is
// busy and the Low side has used up its share.
func (g *Gate) checkpoint() {
	if g.share >= 1 || g.closed.Load() {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	now := g.now()
	g.refill(now)
	if g.busy(now) {
		d := min(now.Sub(g.lastLow), maxCharge)
		g.credit -= d
		g.stats.Charged += d
	}
	g.lastLow = now
	began, waited := now, false
	for !g.closed.Load() && g.credit <= 0 && g.busy(now) {
		waited = true
		// Sleep until the share has paid back the debt, or for poll to
		// look again at whether the High side went quiet.
		d := min(time.Duration(float64(-g.credit)/g.share)+time.Microsecond, poll)
		g.mu.Unlock()
		g.sleep(d)
		g.mu.Lock()
		now = g.now()
		g.refill(now)
	}
	if waited {
		g.stats.Waits++
		g.stats.Waited += now.Sub(began)
		g.lastLow = now
	}
}

// refill adds the share of the time since the last refill to the credit.
func (g *Gate) refill(now time.Time) {
	g.credit = min(burst, g.credit+time.Duration(g.share*float64(now.Sub(g.refilled))))
	g.refilled = now
}
