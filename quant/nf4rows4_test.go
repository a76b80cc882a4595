package quant

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/loraplex/loraplex/quant/par"
)

// dot64 returns the float64 dot product of w and x and the sum of the
// absolute products (the error scale).
func dot64(w, x []float32) (s, a float64) {
	for j, v := range w {
		s += float64(v) * float64(x[j])
		a += math.Abs(float64(v) * float64(x[j]))
	}
	return s, a
}

// TestNF4Rows4 runs nf4Rows4 on runs of rows of 37×(64·nb) matrices (37·nb
// blocks cross a second-level group boundary for nb ≥ 7) with four output
// rows ldy apart, against float64 dot products of the dequantized rows;
// the gaps between output rows are guarded.
func TestNF4Rows4(t *testing.T) {
	r := rand.New(rand.NewPCG(21, 22))
	for _, ks := range kernelVariants() {
		if ks.nf4Rows4 == nil {
			continue
		}
		for _, nb := range []int{0, 1, 2, 3, 7, 9, 32} {
			const R = 37
			C := nb * 64
			q := QuantizeNF4(R, C, randWeights(r, R*C))
			wide := make([]float32, R*C)
			q.Dequantize(wide)
			x := randVec(r, 4*C)
			xq := make([]float32, 4*C)
			quadX(xq, x)
			for _, rg := range [][2]int{{0, R}, {0, 1}, {5, 36}, {36, 37}, {9, 9}} {
				lo, hi := rg[0], rg[1]
				rows, ldy := hi-lo, hi-lo+3
				y := withGuard(3*ldy+rows, 3)
				for a := range 4 {
					for i := range ldy {
						if a < 3 && i >= rows {
							y[a*ldy+i] = guard
						} else if i < rows {
							y[a*ldy+i] = 7 // overwritten, not added to
						}
					}
				}
				ks.nf4Rows4(y[:3*ldy+rows], ldy, q.packed[lo*nb*32:hi*nb*32], q.qabs[lo*nb:hi*nb], q.absmax2, lo*nb, nb, xq, q.code, q.dyn, q.offset)
				checkGuard(t, "nf4Rows4", y, 3*ldy+rows)
				for a := range 4 {
					for i := range ldy {
						got := y[a*ldy+i]
						if i >= rows {
							if a < 3 && got != guard {
								t.Fatalf("%s nf4Rows4 nb=%d rows [%d,%d): wrote y[%d·ldy+%d]", ks.name, nb, lo, hi, a, i)
							}
							continue
						}
						s, abs := dot64(wide[(lo+i)*C:(lo+i+1)*C], x[a*C:(a+1)*C])
						if !close32(float64(got), s, abs+1) {
							t.Fatalf("%s nf4Rows4 nb=%d rows [%d,%d) x row %d, row %d: %v, want %v", ks.name, nb, lo, hi, a, lo+i, got, s)
						}
					}
				}
			}
		}
	}
}

// TestNF4MulTDecodeBatches checks MulT of decode batches (n = 1..17,
// through nf4Rows4 for 4..16 where the CPU has it) on shapes whose row
// counts are not multiples of a worker's share, against float64 products.
func TestNF4MulTDecodeBatches(t *testing.T) {
	r := rand.New(rand.NewPCG(23, 24))
	pools := []*par.Pool{par.Serial, par.New(3)}
	for _, ks := range kernelVariants() {
		useKernels(t, ks)
		for _, sh := range [][2]int{{1, 64}, {37, 576}, {301, 128}, {67, 1536}} {
			R, C := sh[0], sh[1]
			q := QuantizeNF4(R, C, randWeights(r, R*C))
			wide := make([]float32, R*C)
			q.Dequantize(wide)
			for n := 1; n <= 17; n++ {
				name := fmt.Sprintf("%s %dx%d n=%d", ks.name, R, C, n)
				x := randVec(r, n*C)
				y := withGuard(n*R, 5)
				q.MulT(pools[n%2], y, x, n)
				checkGuard(t, name, y, n*R)
				for i := range n {
					for o := range R {
						s, a := dot64(wide[o*C:(o+1)*C], x[i*C:(i+1)*C])
						if !close32(float64(y[i*R+o]), s, a+1) {
							t.Fatalf("%s: y[%d,%d] = %v, want %v", name, i, o, y[i*R+o], s)
						}
					}
				}
			}
		}
	}
}

// BenchmarkNF4MulTRows compares MulT's decode path with the widened-panel
// path (mulT) on the same matrix for decode batch sizes.
func BenchmarkNF4MulTRows(b *testing.B) {
	for _, sh := range [][2]int{{1536, 576}, {576, 1536}, {2048, 2048}, {2048, 5632}} {
		q := randomNF4(sh[0], sh[1])
		for _, n := range []int{1, 2, 4, 6, 8, 16} {
			for _, path := range []string{"panel", "mult"} {
				b.Run(fmt.Sprintf("%dx%d/n=%d/%s", sh[0], sh[1], n, path), func(b *testing.B) {
					p := par.New(0)
					x := randVec(rand.New(rand.NewPCG(2, 2)), n*q.cols)
					y := make([]float32, n*q.rows)
					b.SetBytes(q.Bytes())
					for b.Loop() {
						if path == "panel" {
							mulT(q, p, y, x, n)
						} else {
							q.MulT(p, y, x, n)
						}
					}
				})
			}
		}
	}
}
