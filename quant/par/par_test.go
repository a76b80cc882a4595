package par

import (
	"sync/atomic"
	"testing"
)

func TestForCoversRangeOnce(t *testing.T) {
	for _, workers := range []int{1, 2, 3, 8} {
		p := New(workers)
		for _, tc := range []struct{ n, grain int }{{0, 1}, {1, 1}, {7, 1}, {100, 3}, {1000, 64}, {5, 100}} {
			hits := make([]int32, tc.n)
			p.For(tc.n, tc.grain, func(lo, hi int) {
				for i := lo; i < hi; i++ {
					atomic.AddInt32(&hits[i], 1)
				}
			})
			for i, h := range hits {
				if h != 1 {
					t.Fatalf("workers=%d n=%d grain=%d: index %d visited %d times", workers, tc.n, tc.grain, i, h)
				}
			}
		}
	}
}

func TestForConcurrentCallers(t *testing.T) {
	p := New(2)
	var total atomic.Int64
	done := make(chan bool)
	for g := 0; g < 4; g++ {
		go func() {
			for k := 0; k < 50; k++ {
				p.For(64, 4, func(lo, hi int) { total.Add(int64(hi - lo)) })
			}
			done <- true
		}()
	}
	for g := 0; g < 4; g++ {
		<-done
	}
	if got := total.Load(); got != 4*50*64 {
		t.Fatalf("covered %d elements, want %d", got, 4*50*64)
	}
}

func TestForAllocatesNothing(t *testing.T) {
	p := New(2)
	var sink [64]float32
	fn := func(lo, hi int) {
		for i := lo; i < hi; i++ {
			sink[i]++
		}
	}
	if allocs := testing.AllocsPerRun(100, func() { p.For(64, 1, fn) }); allocs != 0 {
		t.Fatalf("For allocated %.1f times per call, want 0", allocs)
	}
}

// BenchmarkFor measures the cost of one small parallel region, as a
// decoding step runs hundreds of them back to back, on a plain pool and on
// a gate's High pool (the gate's cost to inference).
func BenchmarkFor(b *testing.B) {
	g, err := NewGate(0.1)
	if err != nil {
		b.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		p    *Pool
	}{{"plain", New(2)}, {"high", g.Pool(2, High)}} {
		b.Run(tc.name, func(b *testing.B) {
			var sink [64]float32
			fn := func(lo, hi int) {
				for i := lo; i < hi; i++ {
					sink[i]++
				}
			}
			b.ReportAllocs()
			for b.Loop() {
				tc.p.For(64, 1, fn)
			}
		})
	}
}
