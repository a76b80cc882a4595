package quant

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/loraplex/loraplex/quant/par"
)

func TestQ8TileConformance(t *testing.T) {
	r := rand.New(rand.NewPCG(21, 22))
	for _, ks := range kernelVariants() {
		if ks.q8Tile4x4 == nil {
			continue
		}
		for groups := 1; groups <= 3; groups++ {
			ld, ls := groups*q8Group, groups*16
			xq, wu := make([]byte, 4*ld), make([]byte, 4*ld)
			for i := range xq {
				xq[i], wu[i] = byte(r.Uint32()), byte(r.Uint32())
			}
			sx, sw, corr := make([]float32, 4*ls), make([]float32, 4*ls), make([]int32, 4*ls)
			for i := range sx {
				sx[i], sw[i], corr[i] = r.Float32(), r.Float32(), int32(r.IntN(1<<20))-1<<19
			}
			var got, want [16]float32
			var f [256]float32
			for i := range f {
				f[i] = float32(i) // stale scratch must not leak into the result
			}
			ks.q8Tile4x4(&got, &f, xq, wu, sx, corr, sw, groups)
			q8Tile4x4Generic(&want, &f, xq, wu, sx, corr, sw, groups)
			for i := range got {
				if math.Abs(float64(got[i]-want[i])) > 1e-5*math.Abs(float64(want[i]))+1e-3 {
					t.Fatalf("%s groups=%d f[%d] = %v, generic %v", ks.name, groups, i, got[i], want[i])
				}
			}
		}
	}
}

// TestInt8Bound checks the int8 prefill path of every kernel variant (the Go
// kernel standing in where the CPU has no VNNI) against the exact product
// with the dequantized weights, within the documented error bound.
func TestInt8Bound(t *testing.T) {
	r := rand.New(rand.NewPCG(23, 24))
	for _, ks := range kernelVariants() {
		if ks.q8Tile4x4 == nil {
			ks.q8Tile4x4 = q8Tile4x4Generic
		}
		useKernels(t, ks)
		for _, sh := range [][3]int{{17, 64, 16}, {33, 192, 17}, {20, 1088, 33}, {5, 2048, 19}} {
			R, C, n := sh[0], sh[1], sh[2]
			name := fmt.Sprintf("%s %dx%d n=%d", ks.name, R, C, n)
			q := QuantizeNF4(R, C, randWeights(r, R*C))
			q.SetInt8Prefill(true)
			if !q.useQ8(n) {
				t.Fatalf("%s: int8 path not taken", name)
			}
			w := make([]float32, R*C)
			q.Dequantize(w)
			x := randVec(r, n*C)
			for i := 0; i < n*C; i += 7 {
				x[i] *= 10 // outliers widen the activation scales
			}
			y := withGuard(n*R, 5)
			q.MulT(par.New(2), y, x, n)
			checkGuard(t, name, y, n*R)
			for i := range n {
				for o := range R {
					var exact, bound, mag float64
					for b := 0; b < C/64; b++ {
						scale := float64(q.scale((o*C + b*64) / 64))
						var amax float64
						for k := b * 64; k < b*64+64; k++ {
							amax = math.Max(amax, math.Abs(float64(x[i*C+k])))
						}
						for k := b * 64; k < b*64+64; k++ {
							xv, wv := float64(x[i*C+k]), float64(w[o*C+k])
							exact += xv * wv
							mag += math.Abs(xv * wv)
							bound += (math.Abs(xv)*scale + amax*(math.Abs(wv)+scale/254)) / 254
						}
					}
					bound += 1e-5*mag + 1e-6
					if d := math.Abs(float64(y[i*R+o]) - exact); d > bound {
						t.Fatalf("%s y[%d,%d] = %v, exact %v: error %g over bound %g", name, i, o, y[i*R+o], exact, d, bound)
					}
				}
			}
		}
	}
}
