package ops

import (
	"math"
	"testing"

	"github.com/loraplex/loraplex/quant/par"
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

// BenchmarkAttention runs the forward and backward attention of one layer
// of the S shape (9 query heads, 3 KV heads, head_dim 64) over a training
// batch of 4 sequences of 256 rows.
func BenchmarkAttention(b *testing.B) {
	sh := AttnShape{Heads: 9, KVHeads: 3, HeadDim: 64, Scale: 0.125}
	lens := []int{256, 256, 256, 256}
	rows := 4 * 256
	qd, kd := sh.Heads*sh.HeadDim, sh.KVHeads*sh.HeadDim
	fill := func(n int) []float32 {
		v := make([]float32, n)
		for i := range v {
			v[i] = float32(math.Sin(float64(i) * 0.37))
		}
		return v
	}
	q, k, v, dout := fill(rows*qd), fill(rows*kd), fill(rows*kd), fill(rows*qd)
	out, probs := make([]float32, rows*qd), make([]float32, AttnProbsLen(lens, sh))
	dq, dk, dv := make([]float32, rows*qd), make([]float32, rows*kd), make([]float32, rows*kd)
	p := par.New(0)
	ws := new(AttnScratch)
	for b.Loop() {
		Attention(p, ws, out, probs, q, k, v, lens, sh)
		AttentionBackward(p, ws, dq, dk, dv, dout, probs, q, k, v, lens, sh)
	}
}
