package ops

import (
	"math"
	"math/rand/v2"
	"testing"
)

func TestDoRAScale(t *testing.T) {
	// By hand: the row [3 4] plus 0.5·[2]·[1 -2] = [4 2] has norm √20.
	dst := make([]float32, 1)
	w := []float32{3, 4}
	DoRAScale(dst, []float32{2}, []float32{1, -2}, []float32{2}, make([]float32, 2),
		func(d []float32, o int) { copy(d, w) }, 0, 1, 2, 1, 0.5)
	if want := 2 / math.Sqrt(20); math.Abs(float64(dst[0])-want) > 1e-7 {
		t.Fatalf("hand case: %v, want %v", dst[0], want)
	}

	r := rand.New(rand.NewPCG(21, 22))
	const in, out, rank, scale = 37, 9, 3, 1.5
	base, a, b, mag := randVec(r, out*in, 1), randVec(r, rank*in, 1), randVec(r, out*rank, 1), randVec(r, out, 2)
	want := make([]float64, out)
	for o := range out {
		var ss float64
		for c := range in {
			v := base[o*in+c]
			for j := range rank {
				v += scale * b[o*rank+j] * a[j*in+c]
			}
			ss += v * v
		}
		want[o] = mag[o] / math.Sqrt(ss)
	}
	wb := f32(base)
	got := make([]float32, out)
	row := func(d []float32, o int) { copy(d, wb[o*in:(o+1)*in]) }
	// Two ranges, as a parallel caller splits the rows.
	DoRAScale(got, f32(mag), f32(a), f32(b), make([]float32, in), row, 0, 4, in, rank, scale)
	DoRAScale(got, f32(mag), f32(a), f32(b), make([]float32, in), row, 4, out, in, rank, scale)
	near(t, "dora scale", got, want, 1e-5)
}
