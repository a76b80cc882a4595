package quant

import (
	"math/rand/v2"
	"testing"
)

// BenchmarkKernelNF4Dot measures the in-cache speed of each nf4Dot
// variant over one 2048-column row (bytes/s of packed codes).
func BenchmarkKernelNF4Dot(b *testing.B) {
	q := randomNF4(1, 2048)
	x := randVec(rand.New(rand.NewPCG(1, 1)), 2048)
	for _, ks := range kernelVariants() {
		b.Run(ks.name, func(b *testing.B) {
			b.SetBytes(int64(len(q.packed)))
			for b.Loop() {
				ks.nf4Dot(q.packed, q.qabs, x, q.code, q.dyn, q.absmax2[0], q.offset)
			}
		})
	}
}
