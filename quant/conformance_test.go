package quant

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/loraplex/loraplex/quant/par"
	"github.com/x448/float16"
)

const guard = float32(-12345.5) // written after every output to catch overruns

func withGuard(n, extra int) []float32 {
	b := make([]float32, n+extra)
	for i := n; i < len(b); i++ {
		b[i] = guard
	}
	return b
}

func checkGuard(t *testing.T, what string, b []float32, n int) {
	t.Helper()
	for i := n; i < len(b); i++ {
		if b[i] != guard {
			t.Fatalf("%s wrote past its end at %d (len %d)", what, i, n)
		}
	}
}

func close32(got, want float64, scale float64) bool {
	return math.Abs(got-want) <= 1e-5*scale+1e-6
}

func randVec(r *rand.Rand, n int) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(r.NormFloat64())
	}
	return v
}

func randBits(r *rand.Rand, n int, f16 bool) []uint16 {
	v := make([]uint16, n)
	for i := range v {
		x := float32(r.NormFloat64())
		if f16 {
			v[i] = float16.Fromfloat32(x).Bits()
		} else {
			v[i] = uint16(math.Float32bits(x) >> 16)
		}
	}
	return v
}

// TestKernelConformance runs every kernel variant of this build against the
// Go specification on ragged sizes.
func TestKernelConformance(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	for _, ks := range kernelVariants() {
		t.Run(ks.name, func(t *testing.T) {
			for nb := 0; nb <= 9; nb++ {
				w := randWeights(r, nb*64)
				q := QuantizeNF4(1, nb*64, w)
				x := randVec(r, nb*64)
				a2, off := float32(0), float32(0)
				if nb > 0 {
					a2, off = q.absmax2[0], q.offset
				}
				want := nf4DotGeneric(q.packed, q.qabs, x, q.code, q.dyn, a2, off)
				got := ks.nf4Dot(q.packed, q.qabs, x, q.code, q.dyn, a2, off)
				if !close32(float64(got), float64(want), math.Sqrt(float64(nb*64))*0.05) {
					t.Fatalf("nf4Dot nb=%d: %v, generic %v", nb, got, want)
				}
				if ks.nf4Rows != nil {
					checkRowsKernels(t, ks, r, nb)
				}
				d, g := withGuard(nb*64, 17), make([]float32, nb*64)
				ks.nf4Decode(d, q.packed, q.qabs, q.code, q.dyn, a2, off)
				nf4DecodeGeneric(g, q.packed, q.qabs, q.code, q.dyn, a2, off)
				checkGuard(t, "nf4Decode", d, nb*64)
				for i := range g {
					if d[i] != g[i] {
						t.Fatalf("nf4Decode nb=%d [%d]: %v, generic %v", nb, i, d[i], g[i])
					}
				}
			}
			if ks.encodeActsQ8 != nil {
				checkEncodeQ8(t, ks, r)
			}
			for _, n := range []int{0, 1, 2, 7, 8, 15, 16, 17, 31, 33, 63, 64, 65, 100, 129, 1000} {
				x := randVec(r, n)
				for _, f16 := range []bool{false, true} {
					w := randBits(r, n, f16)
					dot, dotG, dec, decG := ks.bf16Dot, bf16DotGeneric, ks.bf16Decode, bf16DecodeGeneric
					if f16 {
						dot, dotG, dec, decG = ks.f16Dot, f16DotGeneric, ks.f16Decode, f16DecodeGeneric
					}
					if got, want := dot(w, x), dotG(w, x); !close32(float64(got), float64(want), math.Sqrt(float64(n))*4) {
						t.Fatalf("f16=%v dot n=%d: %v, generic %v", f16, n, got, want)
					}
					if !f16 && ks.bf16Dot2 != nil {
						ld := n + 3
						x2 := randVec(r, ld+n)
						var out [2]float32
						ks.bf16Dot2(w, x2, ld, &out)
						for a := range 2 {
							if want := dotG(w, x2[a*ld:a*ld+n]); !close32(float64(out[a]), float64(want), math.Sqrt(float64(n))*4) {
								t.Fatalf("bf16Dot2 n=%d row %d: %v, generic %v", n, a, out[a], want)
							}
						}
					}
					d, g := withGuard(n, 17), make([]float32, n)
					dec(d[:n], w)
					decG(g, w)
					checkGuard(t, "decode", d, n)
					for i := range g {
						if d[i] != g[i] {
							t.Fatalf("f16=%v decode n=%d [%d]: %v, generic %v", f16, n, i, d[i], g[i])
						}
					}
				}
			}
			for _, rr := range []int{0, 1, 5, 64} {
				ld := 64 + r.IntN(9)
				dx, dy, w := randVec(r, 3*ld+64+3), randVec(r, 3*ld+rr+1), randVec(r, rr*ld+64)
				want := append([]float32(nil), dx...)
				acc4x64Generic(want, ld, dy, ld, w, ld, rr)
				ks.acc4x64(dx, ld, dy, ld, w, ld, rr)
				for i := range dx {
					if !close32(float64(dx[i]), float64(want[i]), math.Sqrt(float64(rr+1))*4) {
						t.Fatalf("acc4x64 R=%d ld=%d [%d]: %v, generic %v", rr, ld, i, dx[i], want[i])
					}
				}
			}
			for _, k := range []int{1, 3, 8, 15, 16, 17, 32, 33, 64, 70, 257} {
				ld := k + r.IntN(5)
				x, w := randVec(r, 3*ld+k), randVec(r, 3*ld+k)
				var got, want [16]float32
				for i := range got {
					got[i] = guard
				}
				ks.dot4x4(&got, x, ld, w, ld, k)
				dot4x4Generic(&want, x, ld, w, ld, k)
				for i := range got {
					if !close32(float64(got[i]), float64(want[i]), math.Sqrt(float64(k))*4) {
						t.Fatalf("dot4x4 K=%d ld=%d [%d]: %v, generic %v", k, ld, i, got[i], want[i])
					}
				}
			}
		})
	}
}

type format struct {
	name string
	make func(rows, cols int, w []float32) Matrix
}

var formats = []format{
	{"f32", func(rows, cols int, w []float32) Matrix { return NewF32(rows, cols, w) }},
	{"bf16", func(rows, cols int, w []float32) Matrix {
		b := make([]uint16, len(w))
		for i, v := range w {
			b[i] = uint16(math.Float32bits(v) >> 16)
		}
		return NewBF16(rows, cols, b)
	}},
	{"f16", func(rows, cols int, w []float32) Matrix {
		b := make([]uint16, len(w))
		for i, v := range w {
			b[i] = float16.Fromfloat32(v).Bits()
		}
		return NewF16(rows, cols, b)
	}},
	{"nf4", func(rows, cols int, w []float32) Matrix { return QuantizeNF4(rows, cols, w) }},
}

// TestMatrixConformance checks MulT, MulGrad and Row of every format and
// kernel variant against float64 products with the widened weights.
func TestMatrixConformance(t *testing.T) {
	r := rand.New(rand.NewPCG(13, 14))
	shapes := [][2]int{{1, 1}, {3, 5}, {17, 63}, {5, 64}, {33, 100}, {70, 129}, {20, 256}, {9, 300}, {300, 128}, {3, 16384 + 64}}
	ns := []int{1, 2, 3, 4, 5, 7, 8, 16, 33, 64, 65, 70}
	if testing.Short() {
		ns = []int{1, 2, 5, 65}
	}
	pools := []*par.Pool{par.Serial, par.New(3)}
	for _, ks := range kernelVariants() {
		useKernels(t, ks)
		for _, f := range formats {
			for _, sh := range shapes {
				R, C := sh[0], sh[1]
				m := f.make(R, C, randVec(r, R*C))
				wide := make([]float32, R*C)
				for i := range R {
					row := withGuard(C, 5)
					m.Row(row, i)
					checkGuard(t, "Row", row, C)
					copy(wide[i*C:], row[:C])
				}
				if q, ok := m.(*NF4); ok {
					d := make([]float32, R*C)
					q.Dequantize(d)
					for i := range d {
						if d[i] != wide[i] {
							t.Fatalf("%s %s: Row and Dequantize differ at %d", ks.name, f.name, i)
						}
					}
				}
				for _, n := range ns {
					p := pools[n%2]
					name := fmt.Sprintf("%s %s %dx%d n=%d", ks.name, f.name, R, C, n)
					x := randVec(r, n*C)
					y := withGuard(n*R, 7)
					m.MulT(p, y, x, n)
					checkGuard(t, name+" MulT", y, n*R)
					for i := range n {
						for o := range R {
							var s, a float64
							for k := range C {
								s += float64(x[i*C+k]) * float64(wide[o*C+k])
								a += math.Abs(float64(x[i*C+k]) * float64(wide[o*C+k]))
							}
							if !close32(float64(y[i*R+o]), s, a+1) {
								t.Fatalf("%s MulT y[%d,%d] = %v, want %v", name, i, o, y[i*R+o], s)
							}
						}
					}
					checkMulGrad(t, name+" MulGrad", r, m, p, wide, n)
				}
			}
		}
	}
}

// checkMulGrad runs m.MulGrad on random dy over a random dx and checks
// every value against the float64 sum over wide (m's rows widened), guard
// values past dx included.
func checkMulGrad(t *testing.T, name string, r *rand.Rand, m Matrix, p *par.Pool, wide []float32, n int) {
	t.Helper()
	R, C := m.Rows(), m.Cols()
	dy := randVec(r, n*R)
	dx := withGuard(n*C, 7)
	base := randVec(r, n*C)
	copy(dx, base)
	m.MulGrad(p, dx, dy, n)
	checkGuard(t, name, dx, n*C)
	for i := range n {
		for k := range C {
			s, a := float64(base[i*C+k]), math.Abs(float64(base[i*C+k]))
			for o := range R {
				s += float64(dy[i*R+o]) * float64(wide[o*C+k])
				a += math.Abs(float64(dy[i*R+o]) * float64(wide[o*C+k]))
			}
			if !close32(float64(dx[i*C+k]), s, a+1) {
				t.Fatalf("%s: dx[%d,%d] = %v, want %v", name, i, k, dx[i*C+k], s)
			}
		}
	}
}

func TestHalfWidening(t *testing.T) {
	for h := range 1 << 16 {
		want := float16.Frombits(uint16(h)).Float32()
		got := f16ToF32(uint16(h))
		if math.Float32bits(got) != math.Float32bits(want) && !(got != got && want != want) {
			t.Fatalf("f16 %#04x: %v, want %v", h, got, want)
		}
	}
	for _, v := range []float32{0, -0, 1, -2.5, 3.0e38, 1e-40} {
		h := uint16(math.Float32bits(v) >> 16)
		if got := bf16ToF32(h); math.Float32bits(got) != math.Float32bits(v)&0xffff0000 {
			t.Fatalf("bf16 %v: %v", v, got)
		}
	}
}

// TestNoAllocs: the kernels run once per layer per token; in steady state
// they must not allocate (par.Serial, so the pool's own bookkeeping is out).
func TestNoAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("sync.Pool drops objects under the race detector")
	}
	r := rand.New(rand.NewPCG(15, 16))
	const R, C = 70, 192
	for _, f := range formats {
		m := f.make(R, C, randVec(r, R*C))
		x, y := randVec(r, 8*C), make([]float32, 8*R)
		for _, n := range []int{1, 8} {
			if a := testing.AllocsPerRun(20, func() { m.MulT(par.Serial, y, x, n) }); a != 0 {
				t.Errorf("%s MulT n=%d: %v allocations per call", f.name, n, a)
			}
			if a := testing.AllocsPerRun(20, func() { m.MulGrad(par.Serial, x, y, n) }); a != 0 {
				t.Errorf("%s MulGrad n=%d: %v allocations per call", f.name, n, a)
			}
		}
	}
	q := QuantizeNF4(R, C, randVec(r, R*C))
	q.SetInt8Decode(true)
	x, y := randVec(r, 3*C), make([]float32, 3*R)
	for _, n := range []int{1, 2, 3} {
		if a := testing.AllocsPerRun(20, func() { q.MulT(par.Serial, y, x, n) }); a != 0 {
			t.Errorf("nf4 int8 decoding MulT n=%d: %v allocations per call", n, a)
		}
	}
}

// checkRowsKernels runs nf4Rows and nf4Rows2 on rows [lo, hi) of a
// 37×(64·nb) matrix, whose 37·nb blocks cross a second-level group
// boundary for nb ≥ 7, against float64 dot products of the dequantized
// rows.
func checkRowsKernels(t *testing.T, ks kernelSet, r *rand.Rand, nb int) {
	t.Helper()
	const R = 37
	C := nb * 64
	q := QuantizeNF4(R, C, randWeights(r, R*C))
	wide := make([]float32, R*C)
	q.Dequantize(wide)
	x0, x1 := randVec(r, C), randVec(r, C)
	xq0, xq1 := make([]float32, C), make([]float32, C)
	quadX(xq0, x0)
	quadX(xq1, x1)
	for _, rg := range [][2]int{{0, R}, {0, 1}, {5, 36}, {36, 37}, {9, 9}} {
		lo, hi := rg[0], rg[1]
		p, qa := q.packed[lo*nb*32:hi*nb*32], q.qabs[lo*nb:hi*nb]
		y0, y1, y2 := withGuard(hi-lo, 3), withGuard(hi-lo, 3), withGuard(hi-lo, 3)
		for i := range hi - lo {
			y0[i], y1[i], y2[i] = 7, 7, 7 // overwritten, not added to
		}
		ks.nf4Rows(y0[:hi-lo], p, qa, q.absmax2, lo*nb, nb, xq0, q.code, q.dyn, q.offset)
		checkGuard(t, "nf4Rows", y0, hi-lo)
		if ks.nf4Rows2 != nil {
			ks.nf4Rows2(y1[:hi-lo], y2[:hi-lo], p, qa, q.absmax2, lo*nb, nb, xq0, xq1, q.code, q.dyn, q.offset)
			checkGuard(t, "nf4Rows2 y0", y1, hi-lo)
			checkGuard(t, "nf4Rows2 y1", y2, hi-lo)
		}
		for i := range hi - lo {
			w := wide[(lo+i)*C : (lo+i+1)*C]
			for k, c := range []struct {
				got float32
				x   []float32
			}{{y0[i], x0}, {y1[i], x0}, {y2[i], x1}} {
				if k > 0 && ks.nf4Rows2 == nil {
					break
				}
				var s, a float64
				for j, v := range w {
					s += float64(v) * float64(c.x[j])
					a += math.Abs(float64(v) * float64(c.x[j]))
				}
				if !close32(float64(c.got), s, a+1) {
					t.Fatalf("nf4Rows (case %d) nb=%d rows [%d,%d) row %d: %v, want %v", k, nb, lo, hi, lo+i, c.got, s)
				}
			}
		}
	}
}

// checkEncodeQ8 compares encodeActsQ8 with the Go version word for word on
// rows of 0 to 9 blocks, with all-zero, tiny and large blocks; the output
// starts dirty to catch words left unwritten.
func checkEncodeQ8(t *testing.T, ks kernelSet, r *rand.Rand) {
	t.Helper()
	for nb := 0; nb <= 9; nb++ {
		x := randVec(r, nb*64)
		for i := range x {
			switch i / 64 % 4 {
			case 1:
				x[i] = 0
			case 2:
				x[i] *= 1e-30
			case 3:
				x[i] *= 1e30
			}
		}
		W := q8DecWords(nb * 64)
		got, want := make([]uint32, W+3), make([]uint32, W)
		for i := range got {
			got[i] = 0xdeadbeef
		}
		ks.encodeActsQ8(got[:W], x)
		encodeActsQ8Generic(want, x)
		for i, w := range want {
			if got[i] != w {
				t.Fatalf("encodeActsQ8 nb=%d word %d: %#x, generic %#x", nb, i, got[i], w)
			}
		}
		for _, g := range got[W:] {
			if g != 0xdeadbeef {
				t.Fatalf("encodeActsQ8 nb=%d wrote past its end", nb)
			}
		}
	}
}
