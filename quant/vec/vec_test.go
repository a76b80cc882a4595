package vec

import (
	"math"
	"math/rand/v2"
	"testing"
)

const guard = float32(-12345.5)

func randVec(r *rand.Rand, n, extra int) []float32 {
	v := make([]float32, n+extra)
	for i := range n {
		v[i] = float32(r.NormFloat64())
	}
	for i := n; i < len(v); i++ {
		v[i] = guard
	}
	return v
}

func checkGuard(t *testing.T, what string, v []float32, n int) {
	t.Helper()
	for i := n; i < len(v); i++ {
		if v[i] != guard {
			t.Fatalf("%s wrote past its end at %d (len %d)", what, i, n)
		}
	}
}

func near(got, want float32, n int) bool {
	return math.Abs(float64(got-want)) <= 1e-5*math.Sqrt(float64(n+1))*(1+math.Abs(float64(want)))
}

// TestConformance runs every variant of this build against the Go loops on
// ragged lengths and offsets, with guard values after every output.
func TestConformance(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	lengths := []int{1, 2, 3, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65, 127, 128, 129, 1000, 4099}
	for _, k := range variants() {
		t.Run(k.name, func(t *testing.T) {
			for _, n := range lengths {
				for _, off := range []int{0, 1, 3} {
					a, b := randVec(r, n+off, 9)[off:], randVec(r, n+off, 9)[off:]
					if got, want := k.dot(a[:n], b[:n]), dotGeneric(a[:n], b[:n]); !near(got, want, n) {
						t.Fatalf("dot n=%d: %v, generic %v", n, got, want)
					}
					if got, want := k.sumSq(a[:n]), sumSqGeneric(a[:n]); !near(got, want, n) {
						t.Fatalf("sumSq n=%d: %v, generic %v", n, got, want)
					}
					if got, want := k.maxIndex(a[:n]), maxIndexGeneric(a[:n]); got != want {
						t.Fatalf("maxIndex n=%d: %d, generic %d", n, got, want)
					}
					for _, op := range []struct {
						name string
						fn   func(dst, x []float32)
						ref  func(dst, x []float32)
					}{
						{"axpy", func(d, x []float32) { k.axpy(0.7, x, d) }, func(d, x []float32) { axpyGeneric(0.7, x, d) }},
						{"scale", func(d, x []float32) { k.scale(-1.3, d) }, func(d, x []float32) { scaleGeneric(-1.3, d) }},
						{"add", k.add, addGeneric},
						{"mul", k.mul, mulGeneric},
					} {
						got := append([]float32(nil), b...)
						want := append([]float32(nil), b...)
						op.fn(got[:n], a[:n])
						op.ref(want[:n], a[:n])
						checkGuard(t, op.name, got, n)
						for i := range n {
							if !near(got[i], want[i], 1) {
								t.Fatalf("%s n=%d [%d]: %v, generic %v", op.name, n, i, got[i], want[i])
							}
						}
					}
				}
			}
			// MaxIndex: ties pick the first, NaN is skipped, -Inf counts.
			for _, tc := range []struct {
				x    []float32
				want int
			}{
				{[]float32{1, 3, 3, 2}, 1},
				{[]float32{float32(math.NaN()), -1, -1}, 1},
				{[]float32{float32(math.Inf(-1))}, 0},
				{[]float32{float32(math.NaN())}, -1},
			} {
				long := make([]float32, 40)
				for i := range long {
					long[i] = -1e30
				}
				copy(long[19:], tc.x)
				if got := k.maxIndex(tc.x); got != tc.want {
					t.Fatalf("maxIndex %v = %d, want %d", tc.x, got, tc.want)
				}
				if tc.want >= 0 && tc.x[0] == tc.x[0] && tc.x[0] > -1e30 {
					if got := k.maxIndex(long); got != 19+tc.want {
						t.Fatalf("maxIndex padded %v = %d, want %d", tc.x, got, 19+tc.want)
					}
				}
			}
			// Long vectors: NaN in the vector lanes, all NaN, -Inf only.
			nan, inf := float32(math.NaN()), float32(math.Inf(-1))
			for _, n := range []int{8, 17, 40, 100} {
				v := randVec(r, n, 0)
				for i := 0; i < n; i += 3 {
					v[i] = nan
				}
				if got, want := k.maxIndex(v), maxIndexGeneric(v); got != want {
					t.Fatalf("maxIndex with NaNs n=%d: %d, generic %d", n, got, want)
				}
				for i := range v {
					v[i] = nan
				}
				if got := k.maxIndex(v); got != -1 {
					t.Fatalf("maxIndex all NaN n=%d: %d, want -1", n, got)
				}
				v[n-1], v[n/2] = inf, inf
				if got := k.maxIndex(v); got != n/2 {
					t.Fatalf("maxIndex NaN and -Inf n=%d: %d, want %d", n, got, n/2)
				}
			}
		})
	}
}

func TestExported(t *testing.T) {
	a, b := []float32{1, 2, 3}, []float32{4, 5, 6, 99}
	if Dot(a, b) != 32 || SumSq(a) != 14 || MaxIndex(b) != 3 || MaxIndex(nil) != -1 || Dot(nil, nil) != 0 {
		t.Fatal("Dot/SumSq/MaxIndex")
	}
	y := []float32{1, 1, 1}
	Axpy(2, a, y)
	Add(y, a)
	Mul(y, a)
	Scale(0.5, y)
	if y[0] != 2 || y[1] != 7 || y[2] != 15 {
		t.Fatalf("Axpy/Add/Mul/Scale gave %v", y)
	}
}

func BenchmarkDot(b *testing.B) {
	x, y := randVec(rand.New(rand.NewPCG(1, 1)), 2048, 0), randVec(rand.New(rand.NewPCG(2, 2)), 2048, 0)
	b.SetBytes(2 * 2048 * 4)
	for b.Loop() {
		Dot(x, y)
	}
}

func BenchmarkMaxIndex(b *testing.B) {
	x := randVec(rand.New(rand.NewPCG(1, 1)), 32000, 0)
	b.SetBytes(32000 * 4)
	for b.Loop() {
		MaxIndex(x)
	}
}
