package par

import (
	"math"
	"sync/atomic"
	"testing"
	"time"
)

// fakeClock drives a gate's time by hand: it moves only when the gate
// sleeps or the test advances it.
type fakeClock struct{ ns atomic.Int64 }

func (c *fakeClock) now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *fakeClock) advance(d time.Duration) { c.ns.Add(int64(d)) }

func fakeGate(t *testing.T, share float64) (*Gate, *fakeClock) {
	t.Helper()
	g, err := NewGate(share)
	if err != nil {
		t.Fatal(err)
	}
	c := new(fakeClock)
	c.ns.Store(int64(time.Hour))
	g.now, g.sleep = c.now, c.advance
	g.refilled, g.lastLow, g.seenAt = c.now(), c.now(), c.now().Add(-quiet)
	return g, c
}

func TestNewGateRejectsBadShares(t *testing.T) {
	for _, share := range []float64{0, -0.1, 1.5, math.NaN()} {
		if _, err := NewGate(share); err == nil {
			t.Errorf("NewGate(%v) accepted", share)
		}
	}
}

// TestGateShare runs the Low side in pieces of fixed length against a High
// side that never stops, on a fake clock, and checks the fraction of the
// time the Low side ran.
func TestGateShare(t *testing.T) {
	for _, tc := range []struct {
		share float64
		piece time.Duration
	}{{0.05, 300 * time.Microsecond}, {0.1, 500 * time.Microsecond}, {0.25, 100 * time.Microsecond}, {0.5, time.Millisecond}, {0.9, 200 * time.Microsecond}} {
		g, c := fakeGate(t, tc.share)
		g.enter()
		start := c.now()
		var ran time.Duration
		for c.now().Sub(start) < 10*time.Second {
			g.checkpoint()
			c.advance(tc.piece)
			ran += tc.piece
		}
		got := float64(ran) / float64(c.now().Sub(start))
		if math.Abs(got-tc.share) > 0.01+0.02*tc.share {
			t.Errorf("share %v, pieces of %v: Low side ran %.4f of the time", tc.share, tc.piece, got)
		}
		if st := g.Stats(); math.Abs(float64(st.Charged-ran)) > float64(tc.piece) {
			t.Errorf("share %v: charged %v for %v of running", tc.share, st.Charged, ran)
		}
	}
}

// TestGateIdleHighCostsNothing checks that a Low side never waits or pays
// while the High side is idle, and that it pays again for quiet after the
// High side's last region.
func TestGateIdleHighCostsNothing(t *testing.T) {
	g, c := fakeGate(t, 0.1)
	for range 1000 {
		g.checkpoint()
		c.advance(time.Millisecond)
	}
	if st := g.Stats(); st != (GateStats{}) {
		t.Fatalf("idle High side: %+v, want nothing", st)
	}
	g.enter()
	g.exit()
	g.checkpoint()
	c.advance(time.Millisecond)
	g.checkpoint()
	if st := g.Stats(); st.Charged == 0 || st.Waits == 0 {
		t.Fatalf("High side ran just now: %+v, want a charge and a wait", st)
	}
	c.advance(quiet)
	before := g.Stats()
	g.checkpoint()
	if st := g.Stats(); st.Waits != before.Waits {
		t.Fatalf("High side quiet for %v: waited again", quiet)
	}
}

// TestLowWaitsWhileHighBusy runs a High For that holds its workers and a
// Low For beside it: the Low loop must be waiting, not running, until the
// High side lets it.
func TestLowWaitsWhileHighBusy(t *testing.T) {
	g, c := fakeGate(t, 0.001)
	waiting, resume := make(chan bool), make(chan bool)
	var sleeps atomic.Int32
	g.sleep = func(d time.Duration) {
		if sleeps.Add(1) == 1 {
			waiting <- true
			<-resume
		}
		c.advance(d)
	}
	high, low := g.Pool(2, High), g.Pool(1, Low)
	inHigh, release, highDone := make(chan bool, 2), make(chan bool), make(chan bool)
	go func() {
		high.For(2, 1, func(lo, hi int) {
			inHigh <- true
			<-release
		})
		highDone <- true
	}()
	<-inHigh
	<-inHigh
	var lowRan atomic.Bool
	lowDone := make(chan bool)
	go func() {
		low.For(10, 1, func(lo, hi int) { lowRan.Store(true) })
		lowDone <- true
	}()
	<-waiting
	if lowRan.Load() {
		t.Fatal("the Low For ran while the High For held its workers")
	}
	close(release)
	<-highDone
	close(resume)
	<-lowDone
	if !lowRan.Load() || g.Stats().Waits == 0 {
		t.Fatalf("Low For: ran %v, stats %+v", lowRan.Load(), g.Stats())
	}
}

// TestCloseReleasesWaiters checks that closing the gate lets a Low For
// that waits on a High side that never stops finish.
func TestCloseReleasesWaiters(t *testing.T) {
	g, err := NewGate(1e-9)
	if err != nil {
		t.Fatal(err)
	}
	first := make(chan bool, 1)
	g.sleep = func(d time.Duration) {
		select {
		case first <- true:
		default:
		}
		time.Sleep(d)
	}
	g.enter()
	low := g.Pool(2, Low)
	done := make(chan int64)
	go func() {
		var sum atomic.Int64
		low.For(100, 1, func(lo, hi int) { sum.Add(int64(hi - lo)) })
		done <- sum.Load()
	}()
	<-first
	g.Close()
	if got := <-done; got != 100 {
		t.Fatalf("covered %d of 100", got)
	}
	low.Yield()
}

// TestGatedPoolsCoverRangeOnce runs High and Low loops at the same time and
// checks that each covers its range exactly once.
func TestGatedPoolsCoverRangeOnce(t *testing.T) {
	g, err := NewGate(0.5)
	if err != nil {
		t.Fatal(err)
	}
	high, low := g.Pool(2, High), g.Pool(3, Low)
	done := make(chan bool)
	for _, p := range []*Pool{high, low} {
		go func() {
			for _, tc := range []struct{ n, grain int }{{1, 1}, {7, 1}, {100, 3}, {1000, 64}, {5, 100}, {4096, 1}} {
				hits := make([]int32, tc.n)
				p.For(tc.n, tc.grain, func(lo, hi int) {
					if hi-lo < min(tc.grain, tc.n-lo) {
						t.Errorf("n=%d grain=%d: range [%d, %d) shorter than the grain", tc.n, tc.grain, lo, hi)
					}
					for i := lo; i < hi; i++ {
						atomic.AddInt32(&hits[i], 1)
					}
					p.Yield()
				})
				for i, h := range hits {
					if h != 1 {
						t.Errorf("low=%v n=%d grain=%d: index %d visited %d times", p.low, tc.n, tc.grain, i, h)
					}
				}
			}
			done <- true
		}()
	}
	<-done
	<-done
}

func TestGatedForAllocatesNothing(t *testing.T) {
	g, err := NewGate(0.1)
	if err != nil {
		t.Fatal(err)
	}
	var sink [64]float32
	fn := func(lo, hi int) {
		for i := lo; i < hi; i++ {
			sink[i]++
		}
	}
	for _, pri := range []Priority{High, Low} {
		p := g.Pool(2, pri)
		if allocs := testing.AllocsPerRun(100, func() { p.For(64, 1, fn) }); allocs != 0 {
			t.Errorf("priority %d: For allocated %.1f times per call, want 0", pri, allocs)
		}
	}
}

// TestSerialHighForMarksBusy checks that a one-thread High pool, whose
// loops never leave the calling goroutine, still makes the Low side wait.
func TestSerialHighForMarksBusy(t *testing.T) {
	g, _ := fakeGate(t, 0.5)
	high := g.Pool(1, High)
	high.For(100, 1, func(lo, hi int) { g.checkpoint() })
	if st := g.Stats(); st.Waits != 1 {
		t.Fatalf("checkpoint inside a serial High For: %+v, want one wait", st)
	}
}

// TestLowPiecesAligned checks the Low For's piece boundaries: the grain
// rounded up to a multiple of 16 on long ranges, single elements on ranges
// no longer than the pool (claim loops), one piece on short ranges.
func TestLowPiecesAligned(t *testing.T) {
	g, err := NewGate(0.5)
	if err != nil {
		t.Fatal(err)
	}
	low := g.Pool(2, Low)
	for _, tc := range []struct{ n, grain, quantum int }{{5000, 1, 16}, {5000, 3, 16}, {5000, 20, 32}, {2, 1, 1}, {20, 1, 20}, {40, 3, 16}} {
		var ranges atomic.Int32
		low.For(tc.n, tc.grain, func(lo, hi int) {
			ranges.Add(1)
			if lo%tc.quantum != 0 || (hi != tc.n && hi%tc.quantum != 0) {
				t.Errorf("n=%d grain=%d: piece [%d, %d) not on multiples of %d", tc.n, tc.grain, lo, hi, tc.quantum)
			}
		})
		if tc.n <= 2 && ranges.Load() != int32(tc.n) {
			t.Errorf("n=%d: %d pieces, want one per element", tc.n, ranges.Load())
		}
	}
}
