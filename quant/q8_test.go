package quant

import (
	"bytes"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/loraplex/loraplex/quant/par"
)

func TestQ8TileConformance(t *testing.T) {
	r := rand.New(rand.NewPCG(21, 22))
	for _, ks := range kernelVariants() {
		if ks.q8Tile == nil {
			continue
		}
		for _, tc := range []struct{ nb, np, i, m int }{{1, 8, 0, 8}, {9, 8, 0, 8}, {3, 12, 8, 4}, {24, 16, 4, 8}, {2, 4, 0, 4}} {
			var acts q8Acts
			acts.grow(tc.np, tc.nb*nf4Block)
			for k := range acts.xq {
				acts.xq[k] = byte(r.Uint32())
			}
			for k := range acts.sx {
				acts.sx[k], acts.corr[k] = r.Float32(), int32(r.IntN(1<<20))-1<<19
			}
			wu, sw := make([]byte, tc.nb*1024), make([]float32, tc.nb*16)
			for k := range wu {
				wu[k] = byte(r.Uint32())
			}
			for k := range sw {
				sw[k] = r.Float32()
			}
			var got, want [q8TileRows * 16]float32
			for k := range got {
				got[k], want[k] = float32(k), float32(k) // rows past m stay as they were
			}
			ks.q8Tile(&got, &acts, tc.i, tc.m, wu, sw, tc.nb)
			q8TileGeneric(&want, &acts, tc.i, tc.m, wu, sw, tc.nb)
			for k := range tc.m * 16 {
				if math.Abs(float64(got[k]-want[k])) > 1e-5*math.Abs(float64(want[k]))+1e-3 {
					t.Fatalf("%s %+v t[%d] = %v, generic %v", ks.name, tc, k, got[k], want[k])
				}
			}
		}
	}
}

// TestQ8WidenQuantConformance compares the weight widening and activation
// quantization kernels with the Go versions byte for byte.
func TestQ8WidenQuantConformance(t *testing.T) {
	r := rand.New(rand.NewPCG(27, 28))
	for _, ks := range kernelVariants() {
		for _, nb := range []int{1, 2, 9, 24} {
			for _, rows := range []int{16, 5} {
				p := make([]byte, rows*nb*32)
				for k := range p {
					p[k] = byte(r.Uint32())
				}
				got, want := make([]byte, nb*1024), make([]byte, nb*1024)
				ks.q8Widen(got, p, rows, nb)
				q8WidenGeneric(want, p, rows, nb)
				if !bytes.Equal(got, want) {
					t.Fatalf("%s q8Widen nb=%d rows=%d differs from the generic version", ks.name, nb, rows)
				}
			}
			var got, want q8Acts
			got.grow(8, nb*nf4Block)
			want.grow(8, nb*nf4Block)
			for k := range got.xq {
				got.xq[k] = 0xaa // stale bytes must be overwritten
			}
			for a := range 8 {
				x := randVec(r, nb*nf4Block)
				if a == 1 {
					clear(x[:nf4Block]) // an all-zero block
				}
				ks.q8Quant(&got, a, x)
				want.quantize(a, x)
			}
			if !bytes.Equal(got.xq, want.xq) || !slices.Equal(got.sx, want.sx) || !slices.Equal(got.corr, want.corr) {
				t.Fatalf("%s q8Quant nb=%d differs from the generic version", ks.name, nb)
			}
		}
	}
}

// TestInt8Bound checks the int8 batched (4 rows and more) and decoding
// paths of every kernel variant (for batches, the Go kernel standing in
// where the CPU has no VNNI) against the exact product with the dequantized weights, within the
// documented error bound.
func TestInt8Bound(t *testing.T) {
	r := rand.New(rand.NewPCG(23, 24))
	for _, ks := range kernelVariants() {
		if ks.q8Tile == nil {
			ks.q8Tile = q8TileGeneric
		}
		useKernels(t, ks)
		// n ≤ 3 is the decoding path (SetInt8Decode), taken only where the
		// CPU has VNNI; elsewhere it stays exact, which the bound admits.
		// 257·3 blocks cross second-level groups; odd block counts end rows
		// with a lone block.
		for _, sh := range [][3]int{{17, 64, 16}, {33, 192, 17}, {20, 1088, 33}, {5, 2048, 19},
			{17, 64, 1}, {33, 192, 2}, {3, 16448, 3}, {70, 576, 1}, {9, 2048, 2}, {40, 128, 3},
			{35, 576, 4}, {16, 128, 5}, {48, 1536, 8}, {7, 640, 11}, {20, 192, 15}} {
			R, C, n := sh[0], sh[1], sh[2]
			name := fmt.Sprintf("%s %dx%d n=%d", ks.name, R, C, n)
			q := QuantizeNF4(R, C, randWeights(r, R*C))
			q.SetInt8Prefill(true)
			q.SetInt8Decode(true)
			if (n >= q8MinBatch && !q.useQ8(n)) || (n <= 3 && ks.nf4RowsQ8 != nil && !q.useQ8Decode()) {
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

// TestInt8DecodeRounding checks the int8 decoding path against a float64
// product of the rounded operands it stands for: activations rounded to
// int8 per 64-block (amax/127 steps) and weights round(127·code)/127 times
// the block scale. Only summation order may differ.
func TestInt8DecodeRounding(t *testing.T) {
	if kern.nf4RowsQ8 == nil {
		t.Skip("no int8 decoding kernel on this CPU or build")
	}
	r := rand.New(rand.NewPCG(25, 26))
	for _, sh := range [][3]int{{17, 64, 1}, {33, 192, 2}, {3, 16448, 3}, {70, 576, 1}, {40, 128, 3}} {
		R, C, n := sh[0], sh[1], sh[2]
		q := QuantizeNF4(R, C, randWeights(r, R*C))
		q.SetInt8Decode(true)
		x := randVec(r, n*C)
		for i := 0; i < n*C; i += 7 {
			x[i] *= 10
		}
		for i := 0; i < 64 && i < C; i++ {
			x[i] = 0 // an all-zero activation block
		}
		y := withGuard(n*R, 5)
		q.MulT(par.New(2), y, x, n)
		checkGuard(t, "int8 decode", y, n*R)
		for i := range n {
			xr := make([]float64, C)
			for b := 0; b < C; b += 64 {
				var amax float32
				for _, v := range x[i*C+b : i*C+b+64] {
					amax = max(amax, abs32(v))
				}
				// The rounding decision is made on the float32 product
				// x·(127/amax), as documented.
				for k := b; k < b+64 && amax > 0; k++ {
					xr[k] = math.RoundToEven(float64(x[i*C+k]*(127/amax))) * float64(amax) / 127
				}
			}
			for o := range R {
				var s, a float64
				for k := range C {
					e := o*C + k
					c := q.packed[e/2]
					if e%2 == 0 {
						c >>= 4
					}
					w := math.RoundToEven(127*float64(nf4Code[c&15])) / 127 * float64(q.scale(e/64))
					s += xr[k] * w
					a += math.Abs(xr[k] * w)
				}
				if !close32(float64(y[i*R+o]), s, a+1) {
					t.Fatalf("%dx%d n=%d y[%d,%d] = %v, rounded operands give %v", R, C, n, i, o, y[i*R+o], s)
				}
			}
		}
	}
}
