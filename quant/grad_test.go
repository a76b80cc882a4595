package quant

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/loraplex/loraplex/quant/par"
)

// TestGradSplit checks that MulGrad's work items cover dx in equal shares
// for the shapes the trainer multiplies: on two workers every such split
// gives each worker the same number of items.
func TestGradSplit(t *testing.T) {
	for _, tc := range []struct{ C, n, workers, strips, blocks int }{
		{576, 1024, 2, 3, 4},  // S, batch 4 × 256
		{576, 16, 2, 3, 2},    // a LoRA gradient: rank 16 rows
		{576, 4, 2, 9, 1},     // too few rows to cut: single units
		{1536, 1024, 2, 6, 4}, // S down projection
		{2048, 256, 2, 8, 1},  // M
		{5632, 256, 2, 22, 1}, // M down projection
		{100, 3, 1, 1, 1},
		{300, 70, 3, 2, 3},
	} {
		s, b := gradSplit(tc.C, tc.n, tc.workers)
		if s != tc.strips || b != tc.blocks {
			t.Errorf("gradSplit(%d, %d, %d) = %d strips × %d blocks, want %d × %d", tc.C, tc.n, tc.workers, s, b, tc.strips, tc.blocks)
		}
	}
}

// TestMulGradSplits checks MulGrad against float64 products on the shapes
// where gradSplit cuts rows into blocks or narrows strips, on pools of two
// and three workers, for every kernel variant.
func TestMulGradSplits(t *testing.T) {
	r := rand.New(rand.NewPCG(21, 22))
	shapes := [][3]int{{20, 576, 16}, {7, 576, 4}, {33, 576, 300}, {16, 200, 1030}, {65, 130, 9}}
	pools := []*par.Pool{par.New(2), par.New(3)}
	for _, ks := range kernelVariants() {
		useKernels(t, ks)
		for _, f := range formats {
			for _, sh := range shapes {
				R, C, n := sh[0], sh[1], sh[2]
				m := f.make(R, C, randVec(r, R*C))
				wide := make([]float32, R*C)
				for i := range R {
					m.Row(wide[i*C:(i+1)*C], i)
				}
				for _, p := range pools {
					name := fmt.Sprintf("%s %s %dx%d n=%d workers=%d", ks.name, f.name, R, C, n, p.Workers())
					checkMulGrad(t, name, r, m, p, wide, n)
				}
			}
		}
	}
}

// BenchmarkNF4Train measures the products of a training step on the M
// shape's NF4 projections at 256 activation rows: MulT (forward) and
// MulGrad (backward).
func BenchmarkNF4Train(b *testing.B) {
	const n = 256
	p := par.New(0)
	for _, sh := range [][2]int{{2048, 2048}, {5632, 2048}, {2048, 5632}} {
		R, C := sh[0], sh[1]
		m := randomNF4(R, C)
		r := rand.New(rand.NewPCG(6, 6))
		x, y := randVec(r, n*C), make([]float32, n*R)
		for _, op := range []string{"MulT", "MulGrad"} {
			b.Run(fmt.Sprintf("%s/%dx%d", op, R, C), func(b *testing.B) {
				for b.Loop() {
					if op == "MulT" {
						m.MulT(p, y, x, n)
					} else {
						m.MulGrad(p, x, y, n)
					}
				}
				b.ReportMetric(2*float64(R*C*n)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
			})
		}
	}
}
