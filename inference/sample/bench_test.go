package sample

import (
	"math/rand/v2"
	"testing"
)

// BenchmarkSample draws one token from a Llama-sized vocabulary.
func BenchmarkSample(b *testing.B) {
	rng := rand.New(rand.NewPCG(9, 9))
	x := make([]float32, 32000)
	for i := range x {
		x[i] = float32(rng.NormFloat64() * 2)
	}
	hist := make([]int32, 512)
	for i := range hist {
		hist[i] = int32(rng.IntN(len(x)))
	}
	seed := int64(1)
	for _, c := range []struct {
		name string
		p    Params
	}{
		{"greedy", Params{}},
		{"temperature", Params{Temperature: 0.8, Seed: &seed}},
		{"top-k40", Params{Temperature: 0.8, TopK: 40, Seed: &seed}},
		{"top-p0.9", Params{Temperature: 0.8, TopP: 0.9, Seed: &seed}},
		{"penalties+top-p", Params{Temperature: 0.8, TopP: 0.9, Seed: &seed, FrequencyPenalty: 0.5, PresencePenalty: 0.5, RepetitionPenalty: 1.1}},
	} {
		b.Run(c.name, func(b *testing.B) {
			s := New(c.p)
			s.SetPromptLen(256)
			for b.Loop() {
				s.Sample(x, hist)
			}
		})
	}
}

func BenchmarkTopLogprobs(b *testing.B) {
	rng := rand.New(rand.NewPCG(9, 9))
	x := make([]float32, 32000)
	for i := range x {
		x[i] = float32(rng.NormFloat64() * 2)
	}
	dst := make([]TokenLogprob, 0, 20)
	for b.Loop() {
		TopLogprobs(dst[:0], x, LogSumExp(x), 20)
	}
}
