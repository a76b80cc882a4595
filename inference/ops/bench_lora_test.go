package ops

import (
	"fmt"
	"math"
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

// BenchmarkLoRAStream: one decode row through each of 4 adapters' rank-16
// bfloat16 updates over all 30 S layers (39 MB, more than the caches hold),
// one thread: the memory stream a decode step with four distinct adapters
// pays for, in bytes per second.
func BenchmarkLoRAStream(b *testing.B) {
	const r, h, f, layers = 16, 576, 1536, 4 * 30
	shapes := [][2]int{{h, h}, {h, 192}, {h, 192}, {h, h}, {h, f}, {h, f}, {f, h}}
	type mod struct{ a16, bt16 []uint16 }
	var mods []mod
	bytes := 0
	for range layers {
		for _, s := range shapes {
			m := mod{make([]uint16, r*s[0]), make([]uint16, r*s[1])}
			for i := range m.a16 {
				m.a16[i] = uint16(math.Float32bits(0.01) >> 16)
			}
			for i := range m.bt16 {
				m.bt16[i] = uint16(math.Float32bits(0.01) >> 16)
			}
			mods = append(mods, m)
			bytes += 2 * (len(m.a16) + len(m.bt16))
		}
	}
	x, y, t := make([]float32, f), make([]float32, f), make([]float32, r)
	for _, k := range []string{"rows-bf16", "group-bf16"} {
		b.Run(k, func(b *testing.B) {
			b.SetBytes(int64(bytes))
			for b.Loop() {
				for i, m := range mods {
					in, out := shapes[i%len(shapes)][0], shapes[i%len(shapes)][1]
					if k == "rows-bf16" {
						LoRAT16(y, t, x, m.a16, m.bt16, 1, in, out, r, 2)
					} else {
						LoRAGroup16(y, t, x, m.a16, m.bt16, 1, in, out, r, 2)
					}
				}
			}
		})
	}
}
