package ops

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// TestLoRAGroup checks the group kernels against a float64 reference over
// the bfloat16-rounded weights, on shapes the vector kernels take whole
// (multiples of 32 and of 16 only), ones with a scalar tail, and group
// sizes around the four-row block (float32 sums of up to 576 terms, hence
// the tolerance); and the vector kernels against their Go
// twins on the same operands.
func TestLoRAGroup(t *testing.T) {
	r := rand.New(rand.NewPCG(41, 42))
	for _, sh := range []struct{ in, out int }{{64, 96}, {48, 16}, {40, 23}, {7, 5}, {576, 1536}} {
		for _, n := range []int{1, 2, 3, 4, 5, 9} {
			for _, rank := range []int{1, 8, 16} {
				name := fmt.Sprintf("in=%d/out=%d/n=%d/r=%d", sh.in, sh.out, n, rank)
				in, out := sh.in, sh.out
				const scale = 1.5
				x, a, bt, y0 := randVec(r, n*in, 1), randVec(r, rank*in, 1), randVec(r, rank*out, 1), randVec(r, n*out, 1)
				a16, bt16 := make([]uint16, len(a)), make([]uint16, len(bt))
				ToBF16(a16, f32(a))
				ToBF16(bt16, f32(bt))
				for i := range a {
					a[i] = float64(bf16ToF32(a16[i]))
				}
				for i := range bt {
					bt[i] = float64(bf16ToF32(bt16[i]))
				}
				want := append([]float64(nil), y0...)
				for i := range n {
					for j := range rank {
						var s float64
						for k := range in {
							s += x[i*in+k] * a[j*in+k]
						}
						for o := range out {
							want[i*out+o] += scale * s * bt[j*out+o]
						}
					}
				}
				y, tt := f32(y0), make([]float32, n*rank)
				LoRAGroup16(y, tt, f32(x), a16, bt16, n, in, out, rank, scale)
				near(t, name+" bf16", y, want, 1e-4)
				y = f32(y0)
				LoRAGroup(y, tt, f32(x), f32(a), f32(bt), n, in, out, rank, scale)
				near(t, name+" f32", y, want, 1e-4)

				nb := min(n, loraBlock)
				if v := in &^ 15; rowKernels && v > 0 {
					got, ref := make([]float32, nb*rank), make([]float32, nb*rank)
					loraDown16AVX512(got, f32(x), a16, nb, in, v, rank)
					loraDown16Go(ref, f32(x[:nb*in]), a16, nb, in, 0, rank)
					loraDown16Go(got, f32(x[:nb*in]), a16, nb, in, v, rank)
					near(t, name+" down asm", got, f64(ref), 1e-5)
				}
				if v := out &^ 15; rowKernels && v > 0 {
					tb := f32(randVec(r, nb*rank, 1))
					got, ref := f32(y0[:nb*out]), f32(y0[:nb*out])
					loraUp16AVX512(got, tb, bt16, nb, out, v, rank)
					loraUp16Go(got, tb, bt16, nb, out, v, rank)
					loraUp16Go(ref, tb, bt16, nb, out, 0, rank)
					near(t, name+" up asm", got, f64(ref), 1e-5)
				}
			}
		}
	}
}

func f64(v []float32) []float64 {
	w := make([]float64, len(v))
	for i, x := range v {
		w[i] = float64(x)
	}
	return w
}
