package quant

import (
	"encoding/json"
	"errors"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

// refArgmin is torch.argmin(|s - codes|) transcribed literally: every
// distance rounded to float32 (float64 arithmetic on float32 inputs rounds
// correctly), the first index wins a tie.
func refArgmin(codes []float32, s float32) int {
	best, bestD := 0, float32(math.Inf(1))
	if s != s {
		return 0 // argmin of all-NaN distances is the first index
	}
	for i, c := range codes {
		d := float32(math.Abs(float64(s) - float64(c)))
		if d < bestD {
			best, bestD = i, d
		}
	}
	return best
}

// refQuantize is bitsandbytes quantize_4bit + double quantization written
// from the algorithm with float64 arithmetic rounded to float32 at each
// torch operation, independent of QuantizeNF4's search and packing code.
func refQuantize(w []float32) (codes []int, qabs []uint8, absmax2 []float32, offset float32) {
	n := len(w)
	nb := (n + 63) / 64
	absmax := make([]float32, nb)
	for i, v := range w {
		absmax[i/64] = float32(math.Max(float64(absmax[i/64]), math.Abs(float64(v))))
	}
	codes = make([]int, n)
	for i, v := range w {
		d := math.Max(float64(absmax[i/64]), 1e-38)
		inv := float32(1 / float64(float32(d)))
		s := float32(float64(v) * float64(inv))
		s = float32(math.Max(-1, math.Min(1, float64(s))))
		codes[i] = refArgmin(nf4Code[:], s)
	}
	var sum float64
	for _, a := range absmax {
		sum += float64(a)
	}
	if nb > 0 {
		offset = float32(sum / float64(nb))
	}
	qabs = make([]uint8, nb)
	for g := 0; g*256 < nb; g++ {
		hi := min(nb, g*256+256)
		var m float64
		for _, a := range absmax[g*256 : hi] {
			m = math.Max(m, math.Abs(float64(float32(float64(a)-float64(offset)))))
		}
		absmax2 = append(absmax2, float32(m))
		inv := float32(1 / m)
		for i := g * 256; i < hi; i++ {
			c := float32(float64(absmax[i]) - float64(offset))
			s := float32(float64(c) * float64(inv))
			if m == 0 {
				s = float32(math.NaN())
			}
			s = float32(math.Max(-1, math.Min(1, float64(s))))
			if m == 0 {
				s = float32(math.NaN())
			}
			qabs[i] = uint8(refArgmin(dynamicMap[:], s))
		}
	}
	return codes, qabs, absmax2, offset
}

func codeAt(q *NF4, i int) int {
	b := q.packed[i/2]
	if i%2 == 0 {
		return int(b >> 4)
	}
	return int(b & 15)
}

func TestDynamicMap(t *testing.T) {
	m := DynamicMap()
	for i := 1; i < 256; i++ {
		if !(m[i-1] < m[i]) {
			t.Fatalf("map not strictly ascending at %d: %v %v", i, m[i-1], m[i])
		}
	}
	if m[0] != -0.99296875 || m[255] != 1 || m[127] != 0 {
		t.Fatalf("ends/zero: m[0]=%v m[127]=%v m[255]=%v", m[0], m[127], m[255])
	}
	// Smallest magnitude: 10^-6 · (0.1+1)/2 = 5.5e-7.
	if math.Abs(float64(m[128])-5.5e-7) > 1e-12 || m[128] != -m[126] {
		t.Fatalf("smallest magnitudes %v %v, want ±5.5e-7", m[126], m[128])
	}
}

func TestQuantizeHandCases(t *testing.T) {
	// Halves of codes 6 and 8 lie exactly between them and code 7 (0.0).
	tests := []struct {
		name  string
		w     []float32
		codes []int
		bytes []byte
	}{
		// absmax 1 is exact, so the scaled values are the inputs.
		{"3 then 12 pack to 0x3C", []float32{nf4Code[3], nf4Code[12], 1}, []int{3, 12, 15, 7}, []byte{0x3C, 0xF7}},
		{"midpoint tie goes to the lower code", []float32{nf4Code[6] / 2, nf4Code[8] / 2, 1}, []int{6, 7, 15}, []byte{0x67, 0xF7}},
		{"odd length pads with code 7", []float32{-1, 0, 1}, []int{0, 7, 15, 7}, []byte{0x07, 0xF7}},
		{"all-zero block", make([]float32, 64), nil, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			q := QuantizeNF4(1, len(tc.w), tc.w)
			if tc.bytes != nil && string(q.packed) != string(tc.bytes) {
				t.Fatalf("packed % X, want % X", q.packed, tc.bytes)
			}
			for i, c := range tc.codes {
				if i < len(tc.w) && codeAt(q, i) != c {
					t.Fatalf("code[%d] = %d, want %d", i, codeAt(q, i), c)
				}
			}
			if tc.codes == nil {
				for i := range tc.w {
					if codeAt(q, i) != 7 {
						t.Fatalf("zero block: code[%d] = %d, want 7", i, codeAt(q, i))
					}
				}
			}
			got := make([]float32, len(tc.w))
			q.Dequantize(got)
			for i, v := range tc.w {
				// One block: the offset is the absmax and the scale decodes
				// to it exactly, so exactly representable codes round-trip.
				if math.Abs(float64(got[i]-nf4Code[codeAt(q, i)]*absmaxOf(tc.w))) > 0 {
					t.Fatalf("dequant[%d] = %v from %v", i, got[i], v)
				}
			}
		})
	}
}

func absmaxOf(w []float32) float32 {
	var m float32
	for _, v := range w {
		m = max(m, abs32(v))
	}
	return m
}

func randWeights(r *rand.Rand, n int) []float32 {
	w := make([]float32, n)
	for i := range w {
		w[i] = float32(r.NormFloat64() * 0.02)
	}
	return w
}

func TestQuantizeMatchesReference(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	shapes := [][2]int{{0, 0}, {1, 1}, {3, 5}, {7, 63}, {5, 64}, {3, 100}, {33, 65}, {130, 129}, {260, 64}, {64, 1027}}
	for _, sh := range shapes {
		rows, cols := sh[0], sh[1]
		w := randWeights(r, rows*cols)
		// Sprinkle exact zeros, a zero block and exact code values.
		for i := 0; i < len(w); i += 17 {
			w[i] = 0
		}
		if len(w) >= 128 {
			clear(w[64:128])
		}
		q := QuantizeNF4(rows, cols, w)
		codes, qabs, absmax2, offset := refQuantize(w)
		for i, c := range codes {
			if codeAt(q, i) != c {
				t.Fatalf("%v: code[%d] = %d, reference %d (w=%v)", sh, i, codeAt(q, i), c, w[i])
			}
		}
		if len(w)%2 == 1 && q.packed[len(q.packed)-1]&15 != 7 {
			t.Fatalf("%v: pad nibble %d, want 7", sh, q.packed[len(q.packed)-1]&15)
		}
		if offset != q.offset {
			t.Fatalf("%v: offset %v, reference %v", sh, q.offset, offset)
		}
		for i := range qabs {
			if q.qabs[i] != qabs[i] {
				t.Fatalf("%v: qabsmax[%d] = %d, reference %d", sh, i, q.qabs[i], qabs[i])
			}
		}
		for i := range absmax2 {
			if q.absmax2[i] != absmax2[i] {
				t.Fatalf("%v: absmax2[%d] = %v, reference %v", sh, i, q.absmax2[i], absmax2[i])
			}
		}
		// Dequantize: code·(dyn·absmax2 + offset), each product and sum
		// rounded to float32.
		got := make([]float32, len(w))
		q.Dequantize(got)
		for i := range w {
			b := i / 64
			s := float32(float64(float32(float64(dynamicMap[qabs[b]])*float64(absmax2[b/256]))) + float64(offset))
			want := float32(float64(nf4Code[codes[i]]) * float64(s))
			if got[i] != want {
				t.Fatalf("%v: dequant[%d] = %v, want %v", sh, i, got[i], want)
			}
			// And the quantization error is bounded by half the widest gap
			// between codes (0.16) times the block scale.
			if d := math.Abs(float64(got[i] - w[i])); d > 0.17*float64(absmaxOf(w[b*64:min(len(w), b*64+64)]))+1e-6 {
				t.Fatalf("%v: |dequant-w|[%d] = %v too large", sh, i, d)
			}
		}
	}
}

func TestBnbRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for _, sh := range [][2]int{{3, 7}, {64, 96}, {300, 64}} {
		w := randWeights(r, sh[0]*sh[1])
		q := QuantizeNF4(sh[0], sh[1], w)
		q.SetSourceDType("bfloat16")
		bt := q.Bnb()
		var st map[string]any
		if err := json.Unmarshal(bt.QuantState, &st); err != nil {
			t.Fatal(err)
		}
		if st["quant_type"] != "nf4" || st["blocksize"] != 64.0 || st["dtype"] != "bfloat16" || st["nested_blocksize"] != 256.0 || float32(st["nested_offset"].(float64)) != q.offset {
			t.Fatalf("quant_state %s", bt.QuantState)
		}
		if !strings.HasPrefix(string(bt.QuantState), `{"quant_type": "nf4", "blocksize": 64, "dtype": "bfloat16", "shape": [`) {
			t.Fatalf("quant_state not in json.dumps form: %s", bt.QuantState)
		}
		q2, err := NF4FromBnb(sh[0], sh[1], bt)
		if err != nil {
			t.Fatal(err)
		}
		a, b := make([]float32, len(w)), make([]float32, len(w))
		q.Dequantize(a)
		q2.Dequantize(b)
		for i := range a {
			if a[i] != b[i] {
				t.Fatalf("%v: round trip differs at %d: %v vs %v", sh, i, a[i], b[i])
			}
		}
		if q2.Bytes() != q.Bytes() {
			t.Fatalf("standard tables not shared after loading: %d vs %d bytes", q2.Bytes(), q.Bytes())
		}
	}
}

func TestNF4FromBnbRejects(t *testing.T) {
	q := QuantizeNF4(4, 64, randWeights(rand.New(rand.NewPCG(5, 6)), 256))
	good := q.Bnb()
	tests := []struct {
		name, tensor string
		edit         func(b *BnbTensors)
	}{
		{"fp4", "quant_state", func(b *BnbTensors) {
			b.QuantState = []byte(strings.Replace(string(b.QuantState), `"nf4"`, `"fp4"`, 1))
		}},
		{"blocksize", "quant_state", func(b *BnbTensors) {
			b.QuantState = []byte(strings.Replace(string(b.QuantState), `"blocksize": 64`, `"blocksize": 128`, 1))
		}},
		{"shape", "quant_state", func(b *BnbTensors) {
			b.QuantState = []byte(strings.Replace(string(b.QuantState), `[4, 64]`, `[64, 4]`, 1))
		}},
		{"bad json", "quant_state", func(b *BnbTensors) { b.QuantState = []byte("{") }},
		{"weight size", `"weight"`, func(b *BnbTensors) { b.Weight = b.Weight[:10] }},
		{"absmax size", "weight.absmax", func(b *BnbTensors) { b.Absmax = b.Absmax[:1] }},
		{"nested size", "nested_absmax", func(b *BnbTensors) { b.NestedAbsmax = nil }},
		{"nested map", "nested_quant_map", func(b *BnbTensors) { b.NestedQuantMap = b.NestedQuantMap[:16] }},
		{"quant map", "quant_map", func(b *BnbTensors) { b.QuantMap = b.QuantMap[:8] }},
		{"no absmax", "absmax", func(b *BnbTensors) { b.Absmax = nil }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := good
			tc.edit(&b)
			_, err := NF4FromBnb(4, 64, b)
			if !errors.Is(err, ErrFormat) || !strings.Contains(err.Error(), tc.tensor) {
				t.Fatalf("got %v, want ErrFormat naming %s", err, tc.tensor)
			}
		})
	}
}

func TestNF4FromBnbUnnested(t *testing.T) {
	w := randWeights(rand.New(rand.NewPCG(7, 8)), 8*64)
	q := QuantizeNF4(8, 64, w)
	b := q.Bnb()
	absmax := make([]float32, 8)
	for i := range absmax {
		absmax[i] = absmaxOf(w[i*64 : i*64+64])
	}
	b.Absmax, b.AbsmaxF32, b.NestedAbsmax = nil, absmax, nil
	q2, err := NF4FromBnb(8, 64, b)
	if err != nil {
		t.Fatal(err)
	}
	a, c := make([]float32, len(w)), make([]float32, len(w))
	q.Dequantize(a)
	q2.Dequantize(c)
	for i := range a {
		if a[i] != c[i] {
			t.Fatalf("double-quantizing float32 absmax on load differs from QuantizeNF4 at %d", i)
		}
	}
}

func TestResidentBitsPerParam(t *testing.T) {
	if testing.Short() {
		t.Skip("quantizes an 11.5M-parameter matrix")
	}
	const rows, cols = 5632, 2048
	w := randWeights(rand.New(rand.NewPCG(9, 10)), rows*cols)
	q := QuantizeNF4(rows, cols, w)
	bits := float64(q.Bytes()) * 8 / float64(rows*cols)
	if bits > 4.2 {
		t.Fatalf("%.4f bits per parameter, want ≤ 4.2", bits)
	}
	t.Logf("NF4 %d×%d: %.4f bits/param", rows, cols, bits)
}

// TestQuantizeNearMidpoints puts values on and one float32 step either side
// of every midpoint between codes (absmax 1, so they are scaled by 1).
func TestQuantizeNearMidpoints(t *testing.T) {
	w := []float32{1}
	for i := range 15 {
		m := float32((float64(nf4Code[i]) + float64(nf4Code[i+1])) / 2)
		w = append(w, m, math.Nextafter32(m, 2), math.Nextafter32(m, -2), nf4Code[i])
	}
	q := QuantizeNF4(1, len(w), w)
	codes, _, _, _ := refQuantize(w)
	for i, c := range codes {
		if codeAt(q, i) != c {
			t.Fatalf("w=%v: code %d, reference %d", w[i], codeAt(q, i), c)
		}
	}
}
