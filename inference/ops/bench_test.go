package ops

import (
	"math"
	"testing"
)

func BenchmarkSwiGLU(b *testing.B) {
	g, u, o := make([]float32, 1536), make([]float32, 1536), make([]float32, 1536)
	for i := range g {
		g[i], u[i] = float32(math.Sin(float64(i)))*4, 1
	}
	for b.Loop() {
		SwiGLU(o, g, u)
	}
}
