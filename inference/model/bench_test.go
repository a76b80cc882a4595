package model

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/loraplex/loraplex/inference/config"
	"github.com/loraplex/loraplex/inference/kvcache"
	"github.com/loraplex/loraplex/inference/synth"
	"github.com/loraplex/loraplex/quant"
	"github.com/loraplex/loraplex/quant/par"
)

var (
	benchMu     sync.Mutex
	benchModels = map[string]*Model{}
)

// benchModel builds S with random weights in memory: BF16 embeddings as in a
// real checkpoint, linear weights F32 ("none") or NF4.
func benchModel(b *testing.B, q string) *Model {
	benchMu.Lock()
	defer benchMu.Unlock()
	if m := benchModels[q]; m != nil {
		return m
	}
	cfg, err := shapeConfig(synth.S)
	if err != nil {
		b.Fatal(err)
	}
	r := rand.New(rand.NewPCG(1, 2))
	randn := func(n int, std float64) []float32 {
		v := make([]float32, n)
		for i := range v {
			v[i] = float32(r.NormFloat64() * std)
		}
		return v
	}
	ones := func(n int) []float32 {
		v := make([]float32, n)
		for i := range v {
			v[i] = 1
		}
		return v
	}
	emb := randn(cfg.Vocab*cfg.Hidden, 0.02)
	bits := make([]uint16, len(emb))
	for i, v := range emb {
		bits[i] = uint16(math.Float32bits(v) >> 16)
	}
	embed := quant.NewBF16(cfg.Vocab, cfg.Hidden, bits)
	layers := make([]Layer, cfg.Layers)
	for i := range layers {
		layers[i].InNorm, layers[i].PostNorm = ones(cfg.Hidden), ones(cfg.Hidden)
		for mod := range NumModules {
			out, in := ModuleShape(cfg, mod)
			w := randn(out*in, 0.05)
			if q == "nf4" {
				layers[i].W[mod] = quant.QuantizeNF4(out, in, w)
			} else {
				layers[i].W[mod] = quant.NewF32(out, in, w)
			}
		}
	}
	m, err := New(cfg, embed, layers, ones(cfg.Hidden), embed)
	if err != nil {
		b.Fatal(err)
	}
	benchModels[q] = m
	return m
}

// benchAdapter is a rank-16 LoRA on all seven projections of every layer.
func benchAdapter(m *Model, seed uint64) *Adapter {
	r := rand.New(rand.NewPCG(seed, 7))
	a := &Adapter{ID: fmt.Sprint("bench", seed), LoRA: make([][NumModules]*LoRA, len(m.Layers))}
	for i := range a.LoRA {
		for mod := range NumModules {
			out, in := ModuleShape(m.Cfg, mod)
			l := &LoRA{R: 16, Scale: 2, A: make([]float32, 16*in), B: make([]float32, out*16)}
			for j := range l.A {
				l.A[j] = float32(r.NormFloat64() * 0.01)
			}
			for j := range l.B {
				l.B[j] = float32(r.NormFloat64() * 0.01)
			}
			a.LoRA[i][mod] = l
		}
	}
	return a
}

// shapeConfig is the configuration of a synthetic model of shape sh stored
// in bf16, as the speed anchors' models are.
func shapeConfig(sh synth.Shape) (*config.Config, error) {
	j, err := sh.ConfigJSON("bf16")
	if err != nil {
		return nil, err
	}
	return config.Parse(j)
}

func randTokens(n, vocab int) []int32 {
	t := make([]int32, n)
	for i := range t {
		t[i] = int32((i*7919 + 13) % vocab)
	}
	return t
}

// BenchmarkPrefill: one 128-token prompt per op, 2 threads. "perrow" runs
// attention one (row, head) at a time, the baseline of the matrix path.
func BenchmarkPrefill(b *testing.B) {
	for _, tc := range []struct {
		q      string
		perRow bool
	}{{"none", false}, {"nf4", false}, {"nf4", true}} {
		name := tc.q
		if tc.perRow {
			name += "/perrow"
		}
		b.Run(name, func(b *testing.B) {
			if tc.perRow {
				defer func(v int) { gemmAttnRows = v }(gemmAttnRows)
				gemmAttnRows = 1 << 30
			}
			prefillBench(b, benchModel(b, tc.q), 128, nil)
		})
	}
}

// BenchmarkDecode: one decode step of `batch` sequences per op, each with 64
// tokens of context, 2 threads; "lora" gives every sequence its own rank-16
// adapter on all seven projections ("-prepared": with Bᵀ precomputed,
// "-bf16": with A and Bᵀ also kept in bfloat16);
// "dora" makes those adapters DoRA; "head" gives the first sequence's
// adapter its own lm_head (modules_to_save), one more pass over a
// vocab × hidden matrix per step.
func BenchmarkDecode(b *testing.B) {
	for _, tc := range []struct {
		q                                string
		batch                            int
		lora, prepared, dora, head, bf16 bool
	}{
		{"none", 1, false, false, false, false, false}, {"none", 8, false, false, false, false, false},
		{"nf4", 1, false, false, false, false, false}, {"nf4", 4, false, false, false, false, false}, {"nf4", 8, false, false, false, false, false},
		{"nf4", 1, true, false, false, false, false}, {"nf4", 8, true, false, false, false, false},
		{"nf4", 1, true, true, false, false, false}, {"nf4", 8, true, true, false, false, false},
		{"nf4", 1, true, true, true, false, false}, {"nf4", 8, true, true, true, false, false},
		{"nf4", 8, true, true, false, true, false},
		{"nf4", 1, true, true, false, false, true}, {"nf4", 8, true, true, false, false, true},
	} {
		q, batch := tc.q, tc.batch
		name := fmt.Sprintf("%s/batch%d", q, batch)
		if tc.lora {
			name += "/lora"
		}
		if tc.prepared {
			name += "-prepared"
		}
		if tc.bf16 {
			name += "-bf16"
		}
		if tc.dora {
			name += "/dora"
		}
		if tc.head {
			name += "/head"
		}
		b.Run(name, func(b *testing.B) {
			m := benchModel(b, q)
			p := par.New(2)
			in := decodeInputs(m, batch)
			for i := range in {
				if tc.lora {
					a := benchAdapter(m, uint64(i))
					if tc.prepared {
						a.Prepare()
					}
					if tc.bf16 {
						a.PrepareBF16()
					}
					if tc.dora {
						for _, layer := range a.LoRA {
							for _, l := range layer {
								l.Magnitude = make([]float32, len(l.B)/l.R)
								for j := range l.Magnitude {
									l.Magnitude[j] = 1
								}
							}
						}
					}
					if tc.head && i == 0 {
						// Another Matrix over the same bits: the cost is the
						// extra product, not the memory.
						h := *m.Head.(*quant.BF16)
						a.Head = &h
					}
					if err := m.PrepareAdapter(p, a); err != nil {
						b.Fatal(err)
					}
					in[i].Adapter = a
				}
			}
			decodeSteps(b, m, in)
		})
	}
}

// prefillBench times the prefill of one prompt of n tokens per op, 2
// threads, through adapter a (nil: the base).
func prefillBench(b *testing.B, m *Model, n int, a *Adapter) {
	p := par.New(2)
	kv := kvcache.NewPool(m.Cfg.Layers, m.Cfg.KVHeads, m.Cfg.HeadDim, 16, (n+15)/16)
	ws := NewWorkspace(m, n, 1)
	toks := randTokens(n, m.Cfg.Vocab)
	var seq kvcache.Seq
	for b.Loop() {
		m.Forward(p, ws, kv, []SeqInput{{Tokens: toks, KV: &seq, Adapter: a}})
		kv.Free(&seq)
	}
	b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "tok/s")
}

// decodeInputs are batch sequences, each with a 64-token prompt.
func decodeInputs(m *Model, batch int) []SeqInput {
	in := make([]SeqInput, batch)
	for i := range in {
		in[i] = SeqInput{Tokens: randTokens(64, m.Cfg.Vocab), KV: &kvcache.Seq{}}
	}
	return in
}

// decodeSteps prefills the sequences of in, then times one decode step of
// all of them per op (2 threads), their context kept between 64 and 100
// tokens.
func decodeSteps(b *testing.B, m *Model, in []SeqInput) {
	p := par.New(2)
	kv := kvcache.NewPool(m.Cfg.Layers, m.Cfg.KVHeads, m.Cfg.HeadDim, 16, 8*len(in))
	ws := NewWorkspace(m, 64*len(in), len(in))
	m.Forward(p, ws, kv, in)
	for i := range in {
		in[i].Tokens = in[i].Tokens[:1]
	}
	for b.Loop() {
		for i := range in {
			if in[i].KV.Len >= 100 {
				kv.Truncate(in[i].KV, 64)
			}
		}
		m.Forward(p, ws, kv, in)
	}
	b.ReportMetric(float64(len(in)*b.N)/b.Elapsed().Seconds(), "tok/s")
}

// BenchmarkDecodeLongContext: batch-1 NF4 decode with 1024 tokens of
// context, where reading the float32 KV cache (1.5 MiB per layer) rivals
// reading the weights.
func BenchmarkDecodeLongContext(b *testing.B) {
	m := benchModel(b, "nf4")
	p := par.New(2)
	kv := kvcache.NewPool(m.Cfg.Layers, m.Cfg.KVHeads, m.Cfg.HeadDim, 16, 80)
	ws := NewWorkspace(m, 1024, 1)
	in := []SeqInput{{Tokens: randTokens(1024, m.Cfg.Vocab), KV: &kvcache.Seq{}}}
	m.Forward(p, ws, kv, in)
	in[0].Tokens = in[0].Tokens[:1]
	for b.Loop() {
		if in[0].KV.Len >= 1100 {
			kv.Truncate(in[0].KV, 1024)
		}
		m.Forward(p, ws, kv, in)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "tok/s")
}
