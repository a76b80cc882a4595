package model

import (
	"fmt"
	"testing"
)

// BenchmarkPrefillInt8: one 128-token prompt per op on S NF4, 2 threads,
// exact float path against the int8 path (what --int8 sets).
func BenchmarkPrefillInt8(b *testing.B) {
	for _, int8 := range []bool{false, true} {
		b.Run(fmt.Sprintf("int8=%v", int8), func(b *testing.B) {
			prefillBench(b, variant(b, benchModel(b, "nf4"), int8, false), 128, nil)
		})
	}
}

// BenchmarkDecodeInt8: one decode step of `batch` sequences with 64 tokens
// of context each on S NF4, no adapters, 2 threads, exact against int8.
func BenchmarkDecodeInt8(b *testing.B) {
	for _, batch := range []int{4, 8, 16} {
		for _, int8 := range []bool{false, true} {
			b.Run(fmt.Sprintf("batch%d/int8=%v", batch, int8), func(b *testing.B) {
				m := variant(b, benchModel(b, "nf4"), int8, false)
				decodeSteps(b, m, decodeInputs(m, batch))
			})
		}
	}
}
