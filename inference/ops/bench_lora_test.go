package ops

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// BenchmarkLoRAGroup: the rank-16 updates of one S decoder layer's seven
// projections for a group of n rows sharing an adapter, one thread: the
// per-row kernels (LoRAT16, LoRAT) against the group kernels (LoRAGroup16,
// LoRAGroup), bfloat16 and float32 weights.
func BenchmarkLoRAGroup(b *testing.B) {
	const r, h, f = 16, 576, 1536
	shapes := [][2]int{{h, h}, {h, 192}, {h, 192}, {h, h}, {h, f}, {h, f}, {f, h}} // in, out
	rng := rand.New(rand.NewPCG(5, 6))
	type mod struct {
		a, bt     []float32
		a16, bt16 []uint16
	}
	mods := make([]mod, len(shapes))
	for i, s := range shapes {
		m := &mods[i]
		m.a, m.bt = f32(randVec(rng, r*s[0], 0.01)), f32(randVec(rng, r*s[1], 0.01))
		m.a16, m.bt16 = make([]uint16, len(m.a)), make([]uint16, len(m.bt))
		ToBF16(m.a16, m.a)
		ToBF16(m.bt16, m.bt)
	}
	for _, n := range []int{1, 4, 64} {
		x, y, t := f32(randVec(rng, n*f, 1)), make([]float32, n*f), make([]float32, n*r)
		for _, k := range []string{"rows-bf16", "group-bf16", "rows-f32", "group-f32"} {
			b.Run(fmt.Sprintf("n=%d/%s", n, k), func(b *testing.B) {
				for b.Loop() {
					for i, s := range shapes {
						m, in, out := &mods[i], s[0], s[1]
						switch k {
						case "rows-bf16":
							LoRAT16(y, t, x, m.a16, m.bt16, n, in, out, r, 2)
						case "group-bf16":
							LoRAGroup16(y, t, x, m.a16, m.bt16, n, in, out, r, 2)
						case "rows-f32":
							LoRAT(y, t, x, m.a, m.bt, n, in, out, r, 2)
						case "group-f32":
							LoRAGroup(y, t, x, m.a, m.bt, n, in, out, r, 2)
						}
					}
				}
			})
		}
	}
}
