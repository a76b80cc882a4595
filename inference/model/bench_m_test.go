package model

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"testing"

	"github.com/loraplex/loraplex/inference/synth"
	"github.com/loraplex/loraplex/quant"
)

var benchM *Model

// benchModelM builds M with random weights in memory, once: BF16 embeddings
// and lm_head (untied, as in the real checkpoint) and NF4 decoder linears.
// The NF4 tensors are random codes and scales rather than quantized random
// weights: speed does not depend on the values, and quantizing a billion
// weights would dominate the benchmark set-up.
func benchModelM(b *testing.B) *Model {
	benchMu.Lock()
	defer benchMu.Unlock()
	if benchM != nil {
		return benchM
	}
	cfg, err := shapeConfig(synth.M)
	if err != nil {
		b.Fatal(err)
	}
	r := rand.New(rand.NewPCG(3, 4))
	ones := make([]float32, cfg.Hidden)
	for i := range ones {
		ones[i] = 1
	}
	bf16 := func() quant.Matrix {
		w := make([]uint16, cfg.Vocab*cfg.Hidden)
		for i := range w {
			// ±[2⁻⁷, 2⁻⁶) with a random mantissa: the size of real
			// embedding values.
			w[i] = 0x3c00 | uint16(r.Uint32())&0x807f
		}
		return quant.NewBF16(cfg.Vocab, cfg.Hidden, w)
	}
	dyn, code := quant.DynamicMap(), quant.NF4Code()
	layers := make([]Layer, cfg.Layers)
	for i := range layers {
		layers[i].InNorm, layers[i].PostNorm = ones, ones
		for mod := range NumModules {
			out, in := ModuleShape(cfg, mod)
			w := randomNF4M(b, r, out, in, code[:], dyn[:])
			layers[i].W[mod] = w
		}
	}
	m, err := New(cfg, bf16(), layers, ones, bf16())
	if err != nil {
		b.Fatal(err)
	}
	benchM = m
	runtime.GC() // not during the first timed loop
	return m
}

// randomNF4M is an NF4 matrix of random codes and block scales, built
// through the checkpoint constructor.
func randomNF4M(b *testing.B, r *rand.Rand, rows, cols int, code, dyn []float32) *quant.NF4 {
	n := rows * cols
	nb := n / 64
	t := quant.BnbTensors{
		Weight: make([]byte, n/2), Absmax: make([]byte, nb),
		QuantMap: code, NestedQuantMap: dyn, NestedAbsmax: make([]float32, (nb+255)/256),
		QuantState: fmt.Appendf(nil, `{"quant_type": "nf4", "blocksize": 64, "dtype": "bfloat16", "shape": [%d, %d], "nested_blocksize": 256, "nested_dtype": "float32", "nested_offset": 0.02}`, rows, cols),
	}
	fill := func(p []byte) {
		for i := 0; i < len(p); i += 8 {
			v := r.Uint64()
			for k := i; k < min(len(p), i+8); k++ {
				p[k] = byte(v)
				v >>= 8
			}
		}
	}
	fill(t.Weight)
	fill(t.Absmax)
	for i := range t.NestedAbsmax {
		t.NestedAbsmax[i] = 0.01
	}
	q, err := quant.NF4FromBnb(rows, cols, t)
	if err != nil {
		b.Fatal(err)
	}
	return q
}

// variants are the ways of running a model's NF4 weights that the
// benchmarks here compare: the exact float path or int8 activations
// (SetInt8Decode and SetInt8Prefill, what --int8 sets), with the stored
// lm_head or an NF4 copy (--quant-head nf4).
var variants = []struct {
	name            string
	int8, quantHead bool
}{{"nf4", false, false}, {"nf4-int8", true, false}, {"nf4-qhead", false, true}, {"nf4-int8-qhead", true, true}}

// benchQHeads caches each benchmark model's twin with an NF4 lm_head.
var benchQHeads = map[*Model]*Model{}

// variant returns m, or its twin with an NF4 lm_head, with the variant's
// int8 option set for the length of the sub-benchmark.
func variant(b *testing.B, m *Model, int8, quantHead bool) *Model {
	if quantHead {
		benchMu.Lock()
		h := benchQHeads[m]
		if h == nil {
			h = new(Model)
			*h = *m
			h.Head = quantizeHead(m.Head)
			benchQHeads[m] = h
			runtime.GC()
		}
		benchMu.Unlock()
		m = h
	}
	set := func(on bool) {
		for _, l := range m.Layers {
			for _, w := range l.W {
				setInt8Both(w, on)
			}
		}
		setInt8Both(m.Head, on)
	}
	set(int8)
	b.Cleanup(func() { set(false) })
	return m
}

func setInt8Both(w quant.Matrix, on bool) {
	if q, ok := w.(*quant.NF4); ok {
		q.SetInt8Decode(on)
		q.SetInt8Prefill(on)
	}
}

// BenchmarkDecodeM: one decode step of batch sequences of the M shape per
// op, each with 64 tokens of context, 2 threads.
func BenchmarkDecodeM(b *testing.B) {
	for _, v := range variants {
		for _, batch := range []int{1, 8} {
			b.Run(fmt.Sprintf("%s/batch%d", v.name, batch), func(b *testing.B) {
				m := variant(b, benchModelM(b), v.int8, v.quantHead)
				decodeSteps(b, m, decodeInputs(m, batch))
			})
		}
	}
}

// BenchmarkDecodeSHead is BenchmarkDecode's NF4 batch-1 case of the S shape
// in every variant, for the ratios of the lm_head and int8 options.
func BenchmarkDecodeSHead(b *testing.B) {
	for _, v := range variants {
		b.Run(v.name+"/batch1", func(b *testing.B) {
			m := variant(b, benchModel(b, "nf4"), v.int8, v.quantHead)
			decodeSteps(b, m, decodeInputs(m, 1))
		})
	}
}

// BenchmarkPrefillM: one 128-token prompt of the M shape per op, 2 threads.
func BenchmarkPrefillM(b *testing.B) {
	for _, v := range variants[:2] {
		b.Run(v.name, func(b *testing.B) {
			prefillBench(b, variant(b, benchModelM(b), v.int8, v.quantHead), 128, nil)
		})
	}
}
