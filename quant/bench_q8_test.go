package quant

import (
	"fmt"
	"testing"
)

// BenchmarkNF4MulTInt8Batch is the int8 batched path beside the float32
// panel path on S- and M-shaped matrices, at decoding batch sizes and a
// 128-row prefill.
func BenchmarkNF4MulTInt8Batch(b *testing.B) {
	for _, sh := range [][2]int{{1536, 576}, {5632, 2048}} {
		for _, n := range []int{4, 8, 16, 128} {
			for _, on := range []bool{false, true} {
				q := randomNF4(sh[0], sh[1])
				q.SetInt8Prefill(on)
				b.Run(fmt.Sprintf("%dx%d/n=%d/int8=%v", sh[0], sh[1], n, on), func(b *testing.B) { benchMulT(b, q, n) })
			}
		}
	}
}

// BenchmarkQ8Widen is the weight side of the int8 batched path alone, on
// one panel in cache.
func BenchmarkQ8Widen(b *testing.B) {
	q := randomNF4(16, 2048)
	nb := q.cols / nf4Block
	wu := make([]byte, nb*1024)
	b.SetBytes(int64(len(q.packed)))
	for b.Loop() {
		kern.q8Widen(wu, q.packed, 16, nb)
	}
}
