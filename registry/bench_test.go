package registry

import (
	"context"
	"math/rand/v2"
	"testing"

	"github.com/loraplex/loraplex/adapters"
	"github.com/loraplex/loraplex/inference/config"
	"github.com/loraplex/loraplex/inference/model"
)

// randomLoRA adapts all seven projections of every layer with rank r and
// scale alpha/r.
func randomLoRA(c *config.Config, r int, alpha float32, rng *rand.Rand) *model.Adapter {
	q, kv := c.Heads*c.HeadDim, c.KVHeads*c.HeadDim
	dims := [model.NumModules][2]int{
		model.Q: {c.Hidden, q}, model.K: {c.Hidden, kv}, model.V: {c.Hidden, kv}, model.O: {q, c.Hidden},
		model.Gate: {c.Hidden, c.Intermediate}, model.Up: {c.Hidden, c.Intermediate}, model.Down: {c.Intermediate, c.Hidden},
	}
	vals := func(n int) []float32 {
		v := make([]float32, n)
		for i := range v {
			v[i] = float32(rng.NormFloat64() * 0.02)
		}
		return v
	}
	a := &model.Adapter{LoRA: make([][model.NumModules]*model.LoRA, c.Layers)}
	for l := range c.Layers {
		for m, d := range dims {
			a.LoRA[l][m] = &model.LoRA{R: r, Scale: alpha / float32(r), A: vals(r * d[0]), B: vals(d[1] * r)}
		}
	}
	return a
}

func BenchmarkAcquireHit(b *testing.B) {
	f := &fakeLoader{}
	r := newTestRegistry(b, f, Config{}, map[string]int{"org/a": 16, "org/b": 16})
	mustAcquire(b, r, "org/a").Release()
	ctx := context.Background()
	b.Run("serial", func(b *testing.B) {
		for b.Loop() {
			h, err := r.Acquire(ctx, "org/a")
			if err != nil {
				b.Fatal(err)
			}
			h.Release()
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				h, err := r.Acquire(ctx, "org/a")
				if err != nil {
					b.Fatal(err)
				}
				h.Release()
			}
		})
	})
}

// BenchmarkColdLoad measures a cold Acquire of an r=16 LoRA on all seven
// projections of the S shape (hidden 576, 30 layers, FFN 1536, 9 heads, 3
// KV heads), read from disk with the PEFT loader and checked against the
// base config.
func BenchmarkColdLoad(b *testing.B) {
	base := &config.Config{Arch: "llama", Hidden: 576, Intermediate: 1536, Layers: 30, Heads: 9, KVHeads: 3, HeadDim: 64, Vocab: 49152, MaxPos: 2048}
	s, err := OpenStore(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	a := randomLoRA(base, 16, 32, rand.New(rand.NewPCG(1, 2)))
	if _, err := s.Put("s-r16", false, func(dir string) error {
		return adapters.SaveLoRA(dir, &adapters.PEFTConfig{R: 16, Alpha: 32, TargetModules: adapters.Modules{Regex: adapters.AllLinear}}, a)
	}); err != nil {
		b.Fatal(err)
	}
	r := New(s, adapters.NewLoader(base, "", nil), Config{})
	defer r.Close()
	ctx := context.Background()
	b.SetBytes(a.Bytes())
	for b.Loop() {
		r.Evict("s-r16")
		h, err := r.Acquire(ctx, "s-r16")
		if err != nil {
			b.Fatal(err)
		}
		h.Release()
	}
	if st := r.Stats(); st.Hits != 0 {
		b.Fatalf("%d acquires were hits", st.Hits)
	}
}
