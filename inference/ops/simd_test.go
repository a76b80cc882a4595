package ops

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestRows checks DotRows and AxpyRows against float64 sums, on head sizes
// the vector kernels take (multiples of 16, with and without a 64-wide
// part) and ones they leave to the fallback.
func TestRows(t *testing.T) {
	r := rand.New(rand.NewPCG(31, 32))
	for _, d := range []int{16, 48, 64, 80, 128, 7} {
		for _, n := range []int{1, 3, 16} {
			q, k, p, o0 := randVec(r, d, 1), randVec(r, n*d, 1), randVec(r, n, 1), randVec(r, d, 1)
			const scale = 0.125
			s := make([]float32, n+1)
			s[n] = 42 // past the end: must stay
			DotRows(s, f32(q), f32(k), n, scale)
			want := make([]float64, n)
			for j := range want {
				for i := range d {
					want[j] += q[i] * k[j*d+i]
				}
				want[j] *= scale
			}
			near(t, "dot rows", s[:n], want, 1e-6)
			if s[n] != 42 {
				t.Fatalf("d=%d n=%d: DotRows wrote past n", d, n)
			}

			out := f32(o0)
			AxpyRows(out, f32(p), f32(k), n)
			wantO := append([]float64(nil), o0...)
			for j := range n {
				for i := range d {
					wantO[i] += p[j] * k[j*d+i]
				}
			}
			near(t, "axpy rows", out, wantO, 1e-6)
		}
	}
}

// TestExpSlice checks the whole-slice exp, which runs 16 values at a time
// where the CPU allows, against math.Exp over the float32 range, and its
// ends: overflow, underflow, NaN and the last finite values.
func TestExpSlice(t *testing.T) {
	var xs []float32
	for x := -90.0; x <= 90; x += 0.00731 {
		xs = append(xs, float32(x))
	}
	xs = append(xs, 0, 88.72283, 88.7229, 88.5, -87.33654, -87.34, -1e30, 1e30,
		float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1)))
	got := append([]float32(nil), xs...)
	expSlice(got)
	for i, x := range xs {
		want := math.Exp(float64(x))
		switch {
		case math.IsNaN(float64(x)):
			if !math.IsNaN(float64(got[i])) {
				t.Fatalf("exp(NaN) = %g", got[i])
			}
		case x > 88.72283:
			if !math.IsInf(float64(got[i]), 1) {
				t.Fatalf("exp(%g) = %g, want +Inf", x, got[i])
			}
		case x < -87.33654:
			if got[i] != 0 {
				t.Fatalf("exp(%g) = %g, want 0", x, got[i])
			}
		default:
			if d := math.Abs(float64(got[i])-want) / want; d > 3e-7 {
				t.Fatalf("exp(%g) = %g, want %g (relative error %g)", x, got[i], want, d)
			}
		}
	}
}

func TestToBF16(t *testing.T) {
	for _, tc := range []struct {
		in   uint32
		want uint16
	}{
		{0x3f800000, 0x3f80}, // 1
		{0x3f808000, 0x3f80}, // a tie rounds to the even 1
		{0x3f818000, 0x3f82}, // a tie rounds to even, upwards
		{0x3f808001, 0x3f81}, // just above a tie
		{0xbf80ffff, 0xbf81}, // negative values round on magnitude
		{0x7f7fffff, 0x7f80}, // the largest float32 overflows to +Inf
		{0x7f800000, 0x7f80}, // +Inf
	} {
		var got [1]uint16
		ToBF16(got[:], []float32{math.Float32frombits(tc.in)})
		if got[0] != tc.want {
			t.Errorf("ToBF16(%#08x) = %#04x, want %#04x", tc.in, got[0], tc.want)
		}
	}
	var got [1]uint16
	ToBF16(got[:], []float32{float32(math.NaN())})
	if v := bf16ToF32(got[0]); v == v {
		t.Errorf("ToBF16(NaN) = %#04x, not a NaN", got[0])
	}
}

// TestLoRAT16 checks the bfloat16 LoRA against a float64 reference computed
// from the same rounded weights, on sizes with and without a vector tail.
func TestLoRAT16(t *testing.T) {
	r := rand.New(rand.NewPCG(33, 34))
	for _, sh := range [][3]int{{2, 64, 48}, {3, 37, 21}, {1, 576, 1536}} {
		n, in, out := sh[0], sh[1], sh[2]
		const rank, scale = 4, 1.5
		x, a, b, y0 := randVec(r, n*in, 0.05), randVec(r, rank*in, 1), randVec(r, out*rank, 1), randVec(r, n*out, 1)
		bt := make([]float32, rank*out)
		Transpose(bt, f32(b), out, rank)
		a16, bt16 := make([]uint16, rank*in), make([]uint16, rank*out)
		ToBF16(a16, f32(a))
		ToBF16(bt16, bt)
		want := append([]float64(nil), y0...)
		for i := range n {
			for j := range rank {
				var tj float64
				for c := range in {
					tj += x[i*in+c] * float64(bf16ToF32(a16[j*in+c]))
				}
				for o := range out {
					want[i*out+o] += scale * tj * float64(bf16ToF32(bt16[j*out+o]))
				}
			}
		}
		y, tt := f32(y0), make([]float32, n*rank)
		LoRAT16(y, tt, f32(x), a16, bt16, n, in, out, rank, scale)
		near(t, "lora bf16", y, want, 1e-5)
	}
}
