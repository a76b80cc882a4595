package quant

import (
	"bufio"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/loraplex/loraplex/quant/par"
)

// useBF16Kernels makes ks the bfloat16 kernel set for the rest of the test.
func useBF16Kernels(t testing.TB, ks bf16KernelSet) {
	old := bf16k
	bf16k = ks
	t.Cleanup(func() { bf16k = old })
}

func TestRoundBF16(t *testing.T) {
	for _, tc := range []struct {
		in   float32
		want uint16
	}{
		{1, 0x3f80},
		{-2, 0xc000},
		{math.Float32frombits(0x3f808000), 0x3f80}, // tie, even below
		{math.Float32frombits(0x3f818000), 0x3f82}, // tie, even above
		{math.Float32frombits(0x3f808001), 0x3f81},
		{math.Float32frombits(0x7f7fffff), 0x7f80}, // rounds up to +Inf
		{float32(math.Inf(-1)), 0xff80},
		{math.Float32frombits(0x00400000), 0},      // denormal: zero
		{math.Float32frombits(0x80000001), 0x8000}, // keeps its sign
		{math.Float32frombits(0x7f800001), 0x7fc0}, // signalling NaN: quiet
	} {
		if got := roundBF16(tc.in); got != tc.want {
			t.Errorf("roundBF16(%#x) = %#x, want %#x", math.Float32bits(tc.in), got, tc.want)
		}
	}
}

// TestBF16KernelConformance runs every bfloat16 kernel variant against the
// Go specification: conversions exactly, the products within float32
// summation-order error (VDPBF16PS may round its sums differently).
func TestBF16KernelConformance(t *testing.T) {
	r := rand.New(rand.NewPCG(41, 42))
	for _, ks := range bf16Variants() {
		for _, n := range []int{0, 16, 48, 160} {
			src := randVec(r, 2*n)
			if n > 0 {
				src[0] = 0
				src[1] = math.Float32frombits(0x00012345) // denormal
				src[2] = math.Float32frombits(0x3f808000) // tie
			}
			got, want := make([]uint32, n), make([]uint32, n)
			ks.cvt(got, src)
			bf16CvtGeneric(want, src)
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("%s cvt n=%d differs", ks.name, n)
			}
			ks.cvtPairs(got, src[:n], src[n:])
			bf16CvtPairsGeneric(want, src[:n], src[n:])
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("%s cvtPairs n=%d differs", ks.name, n)
			}
		}
		for _, P := range []int{0, 1, 7, 64} {
			ldd, lda, ldb := 70, P+3, 80
			a, b := randPairs(r, 3*lda+P+1), randPairs(r, max(0, P-1)*ldb+64)
			d := randVec(r, 3*ldd+64)
			want := append([]float32(nil), d...)
			ks.acc4x64(d, ldd, a, lda, b, ldb, P)
			bf16Acc4x64Generic(want, ldd, a, lda, b, ldb, P)
			for q := range 4 {
				for c := range 64 {
					scale := 1.0
					for p := range P {
						scale += math.Abs(float64(pairF32(a[q*lda+p], 0)*pairF32(b[p*ldb+c], 0))) +
							math.Abs(float64(pairF32(a[q*lda+p], 1)*pairF32(b[p*ldb+c], 1)))
					}
					if g, w := float64(d[q*ldd+c]), float64(want[q*ldd+c]); math.Abs(g-w) > 2*float64(P+1)*0x1p-24*scale {
						t.Fatalf("%s acc4x64 P=%d [%d,%d] = %g, want %g", ks.name, P, q, c, g, w)
					}
				}
			}
		}
	}
}

func randPairs(r *rand.Rand, n int) []uint32 {
	v := randVec(r, 2*n)
	p := make([]uint32, n)
	bf16CvtGeneric(p, v)
	return p
}

func pairF32(w uint32, h int) float32 { return bf16In(uint16(w >> (16 * h))) }

// bf16Ref returns Σ_k x[k]·w[k] over both operands rounded to bfloat16
// and the bound on MulTBF16's error against it: float32 sums of up to len
// terms. It also returns Σ|x||w| of the unrounded values.
func bf16Ref(x, w []float32, stride int) (rounded, exact, abs float64) {
	for k, v := range x {
		wk := w[k*stride]
		rounded += float64(bf16In(roundBF16(v))) * float64(bf16In(roundBF16(wk)))
		exact += float64(v) * float64(wk)
		abs += math.Abs(float64(v) * float64(wk))
	}
	return
}

// bf16Matrices returns W as NF4, F32 and BF16 matrices with its float32
// values (the dequantized ones for NF4).
func bf16Matrices(r *rand.Rand, R, C int) (ms []Matrix, ws [][]float32) {
	q := QuantizeNF4(R, C, randWeights(r, R*C))
	wq := make([]float32, R*C)
	q.Dequantize(wq)
	f := randVec(r, R*C)
	b := randBits(r, R*C, false)
	wb := make([]float32, R*C)
	bf16DecodeGeneric(wb, b)
	return []Matrix{q, NewF32(R, C, f), NewBF16(R, C, b)}, [][]float32{wq, f, wb}
}

// TestMulBF16 checks mulTBF16 and mulGradBF16 with every kernel variant
// on ragged shapes and pools: against the float64 product of the operands
// rounded to bfloat16 (float32 summation error only), and against the
// float64 product of the unrounded operands within the documented bound:
// each operand rounds by at most 2⁻⁸ relative (bfloat16 keeps 8 significant
// bits), so each product by 2⁻⁷ + 2⁻¹⁶, plus float32 summation:
// |error| ≤ (2⁻⁷·1.01 + K·2⁻²³)·Σ|x·w|.
func TestMulBF16(t *testing.T) {
	r := rand.New(rand.NewPCG(43, 44))
	shapes := [][3]int{{16, 64, 64}, {17, 33, 129}, {70, 260, 130}, {130, 64, 577}, {20, 300, 63}}
	pools := []*par.Pool{par.Serial, par.New(2), par.New(3)}
	for _, ks := range bf16Variants() {
		useBF16Kernels(t, ks)
		for si, sh := range shapes {
			n, R, C := sh[0], sh[1], sh[2]
			ms, ws := bf16Matrices(r, R, C)
			for mi, m := range ms {
				w, p := ws[mi], pools[(si+mi)%len(pools)]
				name := fmt.Sprintf("%s %T n=%d %dx%d workers=%d", ks.name, m, n, R, C, p.Workers())
				x := randVec(r, n*C)
				y := randVec(r, n*R) // overwritten
				mulTBF16(m.(source), p, y, x, n)
				for i := range n {
					for o := range R {
						rd, ex, abs := bf16Ref(x[i*C:(i+1)*C], w[o*C:], 1)
						checkBF16(t, name+" MulT", i, o, float64(y[i*R+o]), rd, ex, abs, C)
					}
				}
				dy := randVec(r, n*R)
				dx0 := randVec(r, n*C)
				dx := append([]float32(nil), dx0...)
				mulGradBF16(m.(source), p, dx, dy, n)
				for i := range n {
					for c := range C {
						rd, ex, abs := bf16Ref(dy[i*R:(i+1)*R], w[c:], C)
						d := float64(dx[i*C+c] - dx0[i*C+c])
						checkBF16(t, name+" MulGrad", i, c, d, rd, ex, abs+math.Abs(float64(dx0[i*C+c])), R)
					}
				}
			}
		}
	}
}

func checkBF16(t *testing.T, name string, i, o int, got, rounded, exact, abs float64, K int) {
	t.Helper()
	if d := math.Abs(got - rounded); d > float64(K+2)*0x1p-23*abs+1e-30 {
		t.Fatalf("%s [%d,%d] = %g, bfloat16 reference %g (off %g, sum |x·w| %g)", name, i, o, got, rounded, d, abs)
	}
	if d := math.Abs(got - exact); d > (0x1p-7*1.01+float64(K)*0x1p-23)*abs+1e-30 {
		t.Fatalf("%s [%d,%d] = %g, float64 product %g (off %g, bound %g)", name, i, o, got, exact, d, (0x1p-7*1.01+float64(K)*0x1p-23)*abs)
	}
}

// TestMulBF16Fallback checks that the exported calls run the float32
// products where the bfloat16 path does not apply: too few rows.
func TestMulBF16Fallback(t *testing.T) {
	r := rand.New(rand.NewPCG(45, 46))
	m := NewF32(20, 30, randVec(r, 600))
	x := randVec(r, 3*30)
	got, want := make([]float32, 3*20), make([]float32, 3*20)
	MulTBF16(m, par.Serial, got, x, 3)
	m.MulT(par.Serial, want, x, 3)
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("MulTBF16 on 3 rows differs from MulT")
	}
}

// TestBF16Encodings re-encodes every instruction written as bytes in
// bf16mm_amd64.s from the mnemonic in its comment.
func TestBF16Encodings(t *testing.T) {
	f, err := os.Open("bf16mm_amd64.s")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	line := regexp.MustCompile(`^\s*((?:BYTE \$0x[0-9a-f]{2}(?:; )?)+)\s*// (\w+) Z(\d+), Z(\d+), Z(\d+) \(Intel order\)`)
	ops := map[string][2]byte{"VDPBF16PS": {2, 0x52}, "VCVTNE2PS2BF16": {3, 0x72}} // pp (F3, F2), opcode in 0F38
	seen := 0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		m := line.FindStringSubmatch(sc.Text())
		if m == nil {
			if strings.Contains(sc.Text(), "BYTE") {
				t.Errorf("BYTE line without a checked comment: %q", sc.Text())
			}
			continue
		}
		op, ok := ops[m[2]]
		if !ok {
			t.Errorf("unknown mnemonic %q", m[2])
			continue
		}
		var regs [3]int
		for k := range regs {
			regs[k], _ = strconv.Atoi(m[3+k])
		}
		want := evex512(op[0], op[1], regs[0], regs[1], regs[2])
		var got []byte
		for _, b := range strings.Split(m[1], ";") {
			v, _ := strconv.ParseUint(strings.TrimPrefix(strings.TrimSpace(b), "BYTE $0x"), 16, 8)
			got = append(got, byte(v))
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%s: bytes % x, want % x", strings.TrimSpace(sc.Text()), got, want)
		}
		seen++
	}
	if seen != 18 {
		t.Errorf("checked %d encoded instructions, want 18", seen)
	}
}

// evex512 encodes a register-only EVEX.512.pp.0F38.W0 instruction with
// ModRM.reg = dst, EVEX.vvvv = src1 and ModRM.rm = src2 (Intel SDM 2.7).
func evex512(pp, opcode byte, dst, src1, src2 int) []byte {
	bit := func(v, i int) byte { return byte(v>>i) & 1 }
	p0 := (1^bit(dst, 3))<<7 | (1^bit(src2, 4))<<6 | (1^bit(src2, 3))<<5 | (1^bit(dst, 4))<<4 | 2 // map 0F38
	p1 := byte(^src1&15)<<3 | 1<<2 | pp                                                           // W0
	p2 := byte(2)<<5 | (1^bit(src1, 4))<<3                                                        // L'L = 512
	return []byte{0x62, p0, p1, p2, opcode, 0xc0 | byte(dst&7)<<3 | byte(src2&7)}
}

// BenchmarkNF4TrainBF16 compares the float32 and bfloat16 products of the
// trainer's M shapes and S's head (256 tokens) in one run.
func BenchmarkNF4TrainBF16(b *testing.B) {
	const n = 256
	for _, sh := range [][2]int{{2048, 2048}, {5632, 2048}, {2048, 5632}, {32000, 576}} {
		m := randomNF4(sh[0], sh[1])
		p := par.New(0)
		r := rand.New(rand.NewPCG(5, 5))
		x, y := randVec(r, n*sh[1]), make([]float32, n*sh[0])
		for _, op := range []string{"MulT", "MulGrad"} {
			for _, bf := range []bool{false, true} {
				b.Run(fmt.Sprintf("%s/%dx%d/bf16=%v", op, sh[0], sh[1], bf), func(b *testing.B) {
					for b.Loop() {
						switch {
						case op == "MulT" && bf:
							MulTBF16(m, p, y, x, n)
						case op == "MulT":
							m.MulT(p, y, x, n)
						case bf:
							MulGradBF16(m, p, x, y, n)
						default:
							m.MulGrad(p, x, y, n)
						}
					}
					b.ReportMetric(2*float64(sh[0]*sh[1]*n)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
				})
			}
		}
	}
}

// TestMulBF16AllocatesNothing: the bfloat16 products reuse pooled jobs and
// scratch, like MulT and MulGrad.
func TestMulBF16AllocatesNothing(t *testing.T) {
	if raceEnabled {
		t.Skip("sync.Pool drops objects under the race detector")
	}
	r := rand.New(rand.NewPCG(47, 48))
	const R, C, n = 40, 130, 20
	m := QuantizeNF4(R, C, randWeights(r, R*C))
	x, y := randVec(r, n*C), make([]float32, n*R)
	p := par.New(2)
	if a := testing.AllocsPerRun(20, func() { mulTBF16(m, p, y, x, n) }); a != 0 {
		t.Errorf("mulTBF16: %v allocations per call", a)
	}
	if a := testing.AllocsPerRun(20, func() { mulGradBF16(m, p, x, y, n) }); a != 0 {
		t.Errorf("mulGradBF16: %v allocations per call", a)
	}
}
