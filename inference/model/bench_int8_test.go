package model

import (
	"fmt"
	"testing"

	"github.com/loraplex/loraplex/inference/kvcache"
	"github.com/loraplex/loraplex/quant"
	"github.com/loraplex/loraplex/quant/par"
)

// benchInt8Model is a second S model over the same NF4 weights as
// benchModel's, with every NF4 projection opted into the int8 paths (what
// --int8 does), so exact and int8 cases run side by side in one benchmark.
func benchInt8Model(b *testing.B) *Model {
	benchMu.Lock()
	if m := benchModels["nf4-int8"]; m != nil {
		benchMu.Unlock()
		return m
	}
	benchMu.Unlock()
	base := benchModel(b, "nf4")
	m := *base
	m.Layers = make([]Layer, len(base.Layers))
	for i, l := range base.Layers {
		m.Layers[i] = l
		for mod, w := range l.W {
			if q, ok := w.(*quant.NF4); ok {
				c := *q
				c.SetInt8Prefill(true)
				c.SetInt8Decode(true)
				m.Layers[i].W[mod] = &c
			}
		}
	}
	benchMu.Lock()
	defer benchMu.Unlock()
	benchModels["nf4-int8"] = &m
	return &m
}

func benchInt8Pick(b *testing.B, int8 bool) *Model {
	if int8 {
		return benchInt8Model(b)
	}
	return benchModel(b, "nf4")
}

// BenchmarkPrefillInt8: one 128-token prompt per op on S NF4, 2 threads,
// exact float path against the int8 path.
func BenchmarkPrefillInt8(b *testing.B) {
	for _, int8 := range []bool{false, true} {
		b.Run(fmt.Sprintf("int8=%v", int8), func(b *testing.B) {
			m := benchInt8Pick(b, int8)
			p := par.New(2)
			kv := kvcache.NewPool(m.Cfg.Layers, m.Cfg.KVHeads, m.Cfg.HeadDim, 16, 16)
			ws := NewWorkspace(m, 128, 1)
			toks := randTokens(128, m.Cfg.Vocab)
			var seq kvcache.Seq
			for b.Loop() {
				m.Forward(p, ws, kv, []SeqInput{{Tokens: toks, KV: &seq}})
				kv.Free(&seq)
			}
			b.ReportMetric(float64(128*b.N)/b.Elapsed().Seconds(), "tok/s")
		})
	}
}

// BenchmarkDecodeInt8: one decode step of `batch` sequences with 64 tokens
// of context each on S NF4, no adapters, 2 threads, exact against int8.
func BenchmarkDecodeInt8(b *testing.B) {
	for _, batch := range []int{4, 8, 16} {
		for _, int8 := range []bool{false, true} {
			b.Run(fmt.Sprintf("batch%d/int8=%v", batch, int8), func(b *testing.B) {
				m := benchInt8Pick(b, int8)
				p := par.New(2)
				kv := kvcache.NewPool(m.Cfg.Layers, m.Cfg.KVHeads, m.Cfg.HeadDim, 16, 8*batch)
				ws := NewWorkspace(m, 64*batch, batch)
				in := make([]SeqInput, batch)
				for i := range in {
					in[i] = SeqInput{Tokens: randTokens(64, m.Cfg.Vocab), KV: &kvcache.Seq{}}
				}
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
				b.ReportMetric(float64(batch*b.N)/b.Elapsed().Seconds(), "tok/s")
			})
		}
	}
}
