package model

import (
	"fmt"
	"testing"
)

// benchLoRAAdapters returns n rank-16 adapters on all seven projections,
// prepared as the loader prepares them: Bᵀ always, bfloat16 A and Bᵀ with
// bf16 (what --adapter-bf16 does).
func benchLoRAAdapters(m *Model, n int, bf16 bool) []*Adapter {
	as := make([]*Adapter, n)
	for i := range as {
		as[i] = benchAdapter(m, uint64(100+i))
		as[i].Prepare()
		if bf16 {
			as[i].PrepareBF16()
		}
	}
	return as
}

// BenchmarkDecodeLoRA: one decode step of 4 sequences with 64 tokens of
// context on S NF4, 2 threads, with no adapter, one adapter shared by all
// four rows, or four distinct adapters; float32 or bfloat16 adapters; exact
// or int8 base products. The gap to "none" is what the adapters cost.
func BenchmarkDecodeLoRA(b *testing.B) {
	const batch = 4
	for _, int8 := range []bool{false, true} {
		for _, tc := range []struct {
			name     string
			adapters int
			bf16     bool
		}{{"none", 0, false}, {"shared", 1, false}, {"distinct", 4, false}, {"shared-bf16", 1, true}, {"distinct-bf16", 4, true}} {
			b.Run(fmt.Sprintf("int8=%v/%s", int8, tc.name), func(b *testing.B) {
				m := variant(b, benchModel(b, "nf4"), int8, false)
				as := benchLoRAAdapters(m, tc.adapters, tc.bf16)
				in := decodeInputs(m, batch)
				for i := range in {
					if len(as) > 0 {
						in[i].Adapter = as[i%len(as)]
					}
				}
				decodeSteps(b, m, in)
			})
		}
	}
}

// BenchmarkPrefillLoRA: one 64-token prompt per op on S NF4, 2 threads,
// without an adapter or with a float32 or bfloat16 rank-16 adapter on all
// seven projections, exact or int8 base products: the prefill that sets the
// time to first token of an adapter's request.
func BenchmarkPrefillLoRA(b *testing.B) {
	const n = 64
	for _, int8 := range []bool{false, true} {
		for _, tc := range []struct {
			name     string
			adapters int
			bf16     bool
		}{{"none", 0, false}, {"lora", 1, false}, {"lora-bf16", 1, true}} {
			b.Run(fmt.Sprintf("int8=%v/%s", int8, tc.name), func(b *testing.B) {
				m := variant(b, benchModel(b, "nf4"), int8, false)
				var a *Adapter
				if as := benchLoRAAdapters(m, tc.adapters, tc.bf16); len(as) > 0 {
					a = as[0]
				}
				prefillBench(b, m, n, a)
			})
		}
	}
}
