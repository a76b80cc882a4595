package quant

import (
	"math/rand/v2"
	"testing"
)

func TestPyFloat(t *testing.T) {
	for _, tc := range []struct {
		v    float64
		want string
	}{
		{0, "0.0"}, {1, "1.0"}, {0.0123, "0.0123"}, {1e-05, "1e-05"}, {0.0001, "0.0001"},
		{-2.5, "-2.5"}, {float64(float32(0.1)), "0.10000000149011612"},
		{1234567890123456.0, "1234567890123456.0"}, {1.2345678901234568e+17, "1.2345678901234568e+17"},
	} {
		if got := pyFloat(tc.v); got != tc.want {
			t.Errorf("pyFloat(%v) = %q, Python repr %q", tc.v, got, tc.want)
		}
	}
}

// FuzzNF4FromBnb feeds arbitrary quant_state JSON and tensor sizes to the
// checkpoint reader: it must return an error or a matrix that dequantizes,
// never panic.
func FuzzNF4FromBnb(f *testing.F) {
	q := QuantizeNF4(3, 70, randWeights(rand.New(rand.NewPCG(1, 1)), 210))
	good := q.Bnb()
	f.Add(3, 70, good.QuantState, 0, 0, 0)
	f.Add(3, 70, []byte(`{"quant_type": "fp4", "blocksize": 64, "dtype": "bfloat16", "shape": [3, 70]}`), 0, 0, 0)
	f.Add(3, 70, []byte(`{"quant_type": "nf4", "blocksize": 64, "dtype": "float16", "shape": [3, 70], "nested_blocksize": 256, "nested_offset": 1e400}`), 0, 0, 0)
	f.Add(70, 3, good.QuantState, 1, -1, 2)
	f.Add(-1, -5, []byte(`{"shape": [-1, -5], "quant_type": "nf4", "blocksize": 64}`), 0, 0, 0)
	f.Fuzz(func(t *testing.T, rows, cols int, state []byte, dw, da, dn int) {
		b := good
		b.QuantState = state
		b.Weight = resize(b.Weight, dw)
		b.Absmax = resize(b.Absmax, da)
		b.NestedAbsmax = resize(b.NestedAbsmax, dn)
		m, err := NF4FromBnb(rows, cols, b)
		if err != nil {
			return
		}
		dst := make([]float32, rows*cols)
		m.Dequantize(dst)
	})
}

func resize[T any](s []T, d int) []T {
	d = max(-len(s), min(d, 64))
	if d <= 0 {
		return s[:len(s)+d]
	}
	return append(append([]T(nil), s...), make([]T, d)...)
}
