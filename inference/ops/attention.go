package ops

import "github.com/loraplex/loraplex/quant/par"

// Scores writes s[t] = scale · q·k_t for the n keys k_t = k[t·stride:][:len(q)].
// It is the first half of one query's attention; the paged KV cache calls it
// once per block.
func Scores(s, q, k []float32, stride, n int, scale float32) {
	d := len(q)
	s = s[:n]
	for t := range s {
		s[t] = scale * dot(q, k[t*stride:t*stride+d])
	}
}

// Mix accumulates out += Σ_t p[t]·v_t over the n values v_t = v[t·stride:][:len(out)].
func Mix(out, p, v []float32, stride, n int) {
	d := len(out)
	for t, w := range p[:n] {
		axpy(w, v[t*stride:t*stride+d], out)
	}
}

// AttnShape is the head layout of grouped-query attention: query head h reads
// key/value head h / (Heads/KVHeads).
type AttnShape struct {
	Heads, KVHeads, HeadDim int
	Scale                   float32 // usually 1/sqrt(HeadDim)
}

// Attention computes causal grouped-query attention over one sequence of T
// rows at positions 0..T-1 (rotary embeddings already applied). q and out are
// T×(Heads·HeadDim), k and v are T×(KVHeads·HeadDim), all row-major. probs
// (Heads×T×T) receives the attention weights, which AttentionBackward needs;
// only its causal lower triangle is written. out is overwritten.
func Attention(p *par.Pool, out, probs, q, k, v []float32, T int, sh AttnShape) {
	qd, kd, d := sh.Heads*sh.HeadDim, sh.KVHeads*sh.HeadDim, sh.HeadDim
	group := sh.Heads / sh.KVHeads
	clear(out[:T*qd])
	p.For(sh.Heads, 1, func(lo, hi int) {
		for h := lo; h < hi; h++ {
			ko := (h / group) * d
			for t := 0; t < T; t++ {
				pr := probs[(h*T+t)*T:][:t+1]
				Scores(pr, q[t*qd+h*d:][:d], k[ko:], kd, t+1, sh.Scale)
				Softmax(pr)
				Mix(out[t*qd+h*d:][:d], pr, v[ko:], kd, t+1)
			}
		}
	})
}

// AttentionBackward accumulates dq, dk and dv for Attention given dout and
// the probs Attention saved. It splits work over key/value heads, since the
// query heads of one group all write the same dk and dv rows.
func AttentionBackward(p *par.Pool, dq, dk, dv, dout, probs, q, k, v []float32, T int, sh AttnShape) {
	qd, kd, d := sh.Heads*sh.HeadDim, sh.KVHeads*sh.HeadDim, sh.HeadDim
	group := sh.Heads / sh.KVHeads
	p.For(sh.KVHeads, 1, func(lo, hi int) {
		dp := make([]float32, T)
		for kh := lo; kh < hi; kh++ {
			ko := kh * d
			for h := kh * group; h < (kh+1)*group; h++ {
				for t := 0; t < T; t++ {
					pr := probs[(h*T+t)*T:][:t+1]
					do := dout[t*qd+h*d:][:d]
					// dp_j = dout·v_j; dv_j += p_j·dout.
					Scores(dp, do, v[ko:], kd, t+1, 1)
					for j, w := range pr {
						axpy(w, do, dv[j*kd+ko:][:d])
					}
					// ds = softmax backward of dp, then through the scaled dot.
					s := dot(pr, dp[:t+1])
					qt, dqt := q[t*qd+h*d:][:d], dq[t*qd+h*d:][:d]
					for j, w := range pr {
						ds := w * (dp[j] - s) * sh.Scale
						axpy(ds, k[j*kd+ko:][:d], dqt)
						axpy(ds, qt, dk[j*kd+ko:][:d])
					}
				}
			}
		}
	})
}
