package model

import (
	"math"

	"github.com/loraplex/loraplex/inference/ops"
	"github.com/loraplex/loraplex/quant"
	"github.com/loraplex/loraplex/quant/par"
)

// gemmAttnRows is the number of new rows from which a sequence's attention
// runs as two matrix products per KV head (scores = Q·Kᵀ, out = P·V) on the
// quant kernels instead of one dot product per (row, head, key): a prefill
// chunk then costs a few large multiplications, at the price of computing
// the masked half of the scores. A variable so tests can force either path.
var gemmAttnRows = 16

// gemmScratch holds the gathered operands of attnGEMM.
type gemmScratch struct {
	k, vt, q, s, o []float32
}

func grown(b []float32, n int) []float32 {
	if cap(b) < n {
		return make([]float32, n)
	}
	return b[:n]
}

// attnGEMM computes attention for every new row of batch[i] at once. Each
// KV head's visible keys are gathered into one contiguous K (and a
// transposed V), the query rows of the heads that share it into one Q; the
// causal (and sliding-window) mask is applied between the two products.
func (ws *Workspace) attnGEMM(p *par.Pool, i int) {
	c := ws.m.Cfg
	s := &ws.batch[i]
	d, bs := c.HeadDim, ws.kv.BlockSize()
	qd, group := c.Heads*d, c.Heads/c.KVHeads
	r0 := ws.start[i]
	T := len(s.Embeds)/c.Hidden + len(s.Tokens)
	ctx := ws.pos[r0+T-1] + 1
	kvLo := 0 // the first key any row sees
	if win := c.SlidingWindow; win > 0 {
		kvLo = max(0, ws.pos[r0]+1-win)
	}
	nk, rows := ctx-kvLo, group*T
	g := &ws.gemm
	g.k, g.vt = grown(g.k, nk*d), grown(g.vt, d*nk)
	g.q, g.s, g.o = grown(g.q, rows*d), grown(g.s, rows*nk), grown(g.o, rows*d)
	scale := float32(1 / math.Sqrt(float64(d)))

	for kvh := 0; kvh < c.KVHeads; kvh++ {
		for j := kvLo; j < ctx; j++ {
			blk, off := s.KV.Blocks[j/bs], (j%bs)*d
			copy(g.k[(j-kvLo)*d:(j-kvLo+1)*d], ws.kv.K(blk, ws.layer, kvh)[off:off+d])
			for e, v := range ws.kv.V(blk, ws.layer, kvh)[off : off+d] {
				g.vt[e*nk+j-kvLo] = v
			}
		}
		for h := 0; h < group; h++ {
			hd := kvh*group + h
			for t := 0; t < T; t++ {
				copy(g.q[(h*T+t)*d:(h*T+t+1)*d], ws.q[(r0+t)*qd+hd*d:])
			}
		}
		quant.NewF32(nk, d, g.k).MulT(p, g.s, g.q, rows)
		p.For(rows, max(1, 1<<14/nk), func(lo, hi int) {
			for row := lo; row < hi; row++ {
				pos := ws.pos[r0+row%T]
				first := kvLo
				if win := c.SlidingWindow; win > 0 {
					first = max(first, pos+1-win)
				}
				sc := g.s[row*nk : (row+1)*nk]
				vis := sc[first-kvLo : pos+1-kvLo]
				for j := range vis {
					vis[j] *= scale
				}
				ops.Softmax(vis)
				clear(sc[:first-kvLo])
				clear(sc[pos+1-kvLo:])
			}
		})
		quant.NewF32(d, nk, g.vt).MulT(p, g.o, g.s, rows)
		for h := 0; h < group; h++ {
			hd := kvh*group + h
			for t := 0; t < T; t++ {
				copy(ws.attn[(r0+t)*qd+hd*d:(r0+t)*qd+(hd+1)*d], g.o[(h*T+t)*d:])
			}
		}
	}
}
