package ops

import (
	"math"
	"sync/atomic"

	"github.com/loraplex/loraplex/quant"
	"github.com/loraplex/loraplex/quant/par"
	"github.com/loraplex/loraplex/quant/vec"
)

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

// attnBlock is the number of query rows whose attention is computed as one
// tile: the tile's scores against all the keys it sees (at most T×64
// floats) stay in L2 while the products pass over them, and 64 is the
// width of the quant package's accumulating kernel.
const attnBlock = 64

// AttnProbsLen is the length of the probs buffer that Attention fills for
// sequences of the given lengths: for each sequence, head and block of 64
// query rows, the weights of those rows over every key up to the block's
// last row (the causal lower triangle in whole tiles, about 5/8 of T×T for
// T = 256).
func AttnProbsLen(lens []int, sh AttnShape) int {
	n := 0
	for _, T := range lens {
		n += sh.Heads * headProbs(T)
	}
	return n
}

// headProbs is the probs length of one head of a sequence of T rows.
func headProbs(T int) int {
	n := 0
	for i0 := 0; i0 < T; i0 += attnBlock {
		i1 := min(T, i0+attnBlock)
		n += i1 * (i1 - i0)
	}
	return n
}

// AttnScratch is the reusable scratch of Attention and AttentionBackward;
// the zero value is ready to use. Its buffers grow to the largest call and
// are then reused. One AttnScratch serves one call at a time.
type AttnScratch struct {
	kv     []float32   // forward: every sequence's K (T×d) and Vᵀ (d×T) per KV head
	work   [][]float32 // per worker
	starts []int       // first row of each sequence
	items  []attnItem
	next   atomic.Int64
}

// attnItem is one unit of parallel work: a sequence, a head and (in the
// forward pass) a block of query rows.
type attnItem struct{ seq, head, block int }

func (ws *AttnScratch) layout(p *par.Pool, lens []int, perWorker int) {
	ws.starts = ws.starts[:0]
	r := 0
	for _, T := range lens {
		ws.starts = append(ws.starts, r)
		r += T
	}
	for len(ws.work) < p.Workers() {
		ws.work = append(ws.work, nil)
	}
	for w := range p.Workers() {
		ws.work[w] = growF32(ws.work[w], perWorker)
	}
	ws.items = ws.items[:0]
}

// run hands the items out one at a time to p's workers, largest first as
// the caller sorted them, so a worker that falls behind (a busy core)
// delays the call by at most one item.
func (ws *AttnScratch) run(p *par.Pool, fn func(w int, it attnItem)) {
	ws.next.Store(0)
	p.For(min(p.Workers(), len(ws.items)), 1, func(lo, hi int) {
		for w := lo; w < hi; w++ {
			for {
				i := int(ws.next.Add(1)) - 1
				if i >= len(ws.items) {
					break
				}
				fn(w, ws.items[i])
				p.Yield()
			}
		}
	})
}

func growF32(b []float32, n int) []float32 {
	if cap(b) < n {
		return make([]float32, n)
	}
	return b[:n]
}

// Attention computes causal grouped-query attention over consecutive
// sequences of lens[s] rows each, every one at positions 0..T-1 (rotary
// embeddings already applied). q and out are rows×(Heads·HeadDim), k and v
// are rows×(KVHeads·HeadDim), all row-major. probs (AttnProbsLen long)
// receives the attention weights, which AttentionBackward needs. out is
// overwritten. ws may be nil.
//
// Each block of 64 query rows of one head is three matrix products on the
// quant kernels: scoresᵀ = K·(scale·Q)ᵀ over the keys the block sees, a
// softmax down each column with the causal mask, and outᵀ = Vᵀ·Pᵀ. Working
// on transposes keeps every product in the form dx += dy·W with 64 output
// columns, the quant package's fastest kernel, and keeps every elementwise
// pass sequential in memory. The sums run in another order than Scores
// and Mix, so results agree with the serving path to rounding, not bits.
func Attention(p *par.Pool, ws *AttnScratch, out, probs, q, k, v []float32, lens []int, sh AttnShape) {
	if ws == nil {
		ws = new(AttnScratch)
	}
	qd, kd, d := sh.Heads*sh.HeadDim, sh.KVHeads*sh.HeadDim, sh.HeadDim
	group := sh.Heads / sh.KVHeads
	longest, rows := 0, 0
	for _, T := range lens {
		longest, rows = max(longest, T), rows+T
	}
	B := attnBlock
	ws.layout(p, lens, 2*d*B+d*longest)
	// K and Vᵀ of every KV head, gathered once: the query heads of a
	// group and all their blocks read them.
	ws.kv = growF32(ws.kv, 2*rows*kd)
	kv := ws.kv
	for s := range lens {
		for kh := range sh.KVHeads {
			ws.items = append(ws.items, attnItem{seq: s, head: kh})
		}
	}
	ws.run(p, func(_ int, it attnItem) {
		r0, T := ws.starts[it.seq], lens[it.seq]
		kh := it.head
		kc := kv[2*r0*kd+2*kh*T*d:][:T*d]
		vt := kv[2*r0*kd+(2*kh+1)*T*d:][:T*d]
		for j := range T {
			row := (r0 + j) * kd
			copy(kc[j*d:(j+1)*d], k[row+kh*d:row+(kh+1)*d])
			for e, x := range v[row+kh*d : row+(kh+1)*d] {
				vt[e*T+j] = x
			}
		}
	})

	ws.items = ws.items[:0]
	for b := (longest+B-1)/B - 1; b >= 0; b-- {
		for s, T := range lens {
			if b*B < T {
				for h := range sh.Heads {
					ws.items = append(ws.items, attnItem{seq: s, head: h, block: b})
				}
			}
		}
	}
	ws.run(p, func(w int, it attnItem) {
		r0, T := ws.starts[it.seq], lens[it.seq]
		h, kh := it.head, it.head/group
		i0 := it.block * B
		i1 := min(T, i0+B)
		n, nk := i1-i0, i1
		kc := kv[2*r0*kd+2*kh*T*d:][:T*d]
		vt := kv[2*r0*kd+(2*kh+1)*T*d:][:T*d]
		buf := ws.work[w]
		qt, ot, vtn := buf[:d*n], buf[d*B:][:d*n], buf[2*d*B:][:d*nk]
		for i := range n {
			row := (r0+i0+i)*qd + h*d
			for e, x := range q[row : row+d] {
				qt[e*n+i] = sh.Scale * x
			}
		}
		pt := probs[probsOffset(ws, lens, it.seq, h, it.block, sh):][:nk*n]
		clear(pt)
		quant.NewF32(d, n, qt).MulGrad(par.Serial, pt, kc, nk)
		softmaxColumns(pt, nk, n, i0)
		for e := range d {
			copy(vtn[e*nk:(e+1)*nk], vt[e*T:e*T+nk])
		}
		clear(ot)
		quant.NewF32(nk, n, pt).MulGrad(par.Serial, ot, vtn, d)
		for i := range n {
			o := out[(r0+i0+i)*qd+h*d:][:d]
			for e := range o {
				o[e] = ot[e*n+i]
			}
		}
	})
}

// probsOffset is where the tile of (sequence s, head h, query block b)
// starts in probs.
func probsOffset(ws *AttnScratch, lens []int, s, h, b int, sh AttnShape) int {
	off := 0
	for _, T := range lens[:s] {
		off += sh.Heads * headProbs(T)
	}
	off += h * headProbs(lens[s])
	for i0 := 0; i0 < b*attnBlock; i0 += attnBlock {
		i1 := i0 + attnBlock
		off += i1 * attnBlock
	}
	return off
}

// softmaxColumns turns the nk×n transposed scores st of query rows
// i0..i0+n-1 into attention weights in place: column i is a softmax over
// keys 0..i0+i, and the keys after it (the causal mask) get weight 0. Like
// Softmax it subtracts the maximum, exponentiates and multiplies by the
// reciprocal of the sum.
func softmaxColumns(st []float32, nk, n, i0 int) {
	var mx, inv [attnBlock]float32
	m, sum := mx[:n], inv[:n]
	for i := range m {
		m[i] = float32(math.Inf(-1))
	}
	for j := range nk {
		row := st[j*n : (j+1)*n]
		lo := max(0, j-i0) // first column that sees key j
		for i := lo; i < n; i++ {
			m[i] = max(m[i], row[i])
		}
	}
	clear(sum)
	for j := range nk {
		row := st[j*n : (j+1)*n]
		lo := max(0, j-i0)
		clear(row[:lo])
		r := row[lo:]
		vec.Axpy(-1, m[lo:], r)
		expSlice(r)
		vec.Add(sum[lo:], r)
	}
	for i, s := range sum {
		sum[i] = 1 / s
	}
	for j := range nk {
		vec.Mul(st[j*n:(j+1)*n], sum)
	}
}

// AttentionBackward accumulates dq, dk and dv for Attention given dout and
// the probs Attention saved, with the same sequence layout. It splits work
// over sequences and key/value heads, since the query heads of one group
// all write the same dk and dv rows; each block of query rows is five
// products in the same transposed form as the forward pass:
//
//	dPᵀ = V·dOᵀ, dSᵀ = Pᵀ∘(dPᵀ − colsum(Pᵀ∘dPᵀ))·scale,
//	dQᵀ = Kᵀ·dSᵀ, dK += dSᵀ·Q, dV += Pᵀ·dO.
func AttentionBackward(p *par.Pool, ws *AttnScratch, dq, dk, dv, dout, probs, q, k, v []float32, lens []int, sh AttnShape) {
	if ws == nil {
		ws = new(AttnScratch)
	}
	qd, kd, d := sh.Heads*sh.HeadDim, sh.KVHeads*sh.HeadDim, sh.HeadDim
	group := sh.Heads / sh.KVHeads
	longest := 0
	for _, T := range lens {
		longest = max(longest, T)
	}
	B := attnBlock
	// K, V, Kᵀ, dK, dV: T×d each; dOᵀ, dO, Q, dQᵀ: d×B each; Kᵀ of the
	// keys a block sees: d×T; dPᵀ: T×B.
	ws.layout(p, lens, 6*longest*d+4*d*B+longest*B)
	for s := range lens {
		for kh := range sh.KVHeads {
			ws.items = append(ws.items, attnItem{seq: s, head: kh})
		}
	}
	ws.run(p, func(w int, it attnItem) {
		r0, T := ws.starts[it.seq], lens[it.seq]
		kh := it.head
		buf := ws.work[w]
		kc, vc, kt := buf[:T*d], buf[T*d:][:T*d], buf[2*T*d:][:T*d]
		gk, gv := buf[3*T*d:][:T*d], buf[4*T*d:][:T*d]
		rest := buf[5*T*d:]
		for j := range T {
			row := (r0+j)*kd + kh*d
			copy(kc[j*d:(j+1)*d], k[row:row+d])
			copy(vc[j*d:(j+1)*d], v[row:row+d])
			for e, x := range k[row : row+d] {
				kt[e*T+j] = x
			}
		}
		clear(gk)
		clear(gv)
		for h := kh * group; h < (kh+1)*group; h++ {
			for b := 0; b*B < T; b++ {
				i0 := b * B
				i1 := min(T, i0+B)
				n, nk := i1-i0, i1
				dotT, do, qb, dqt := rest[:d*n], rest[d*B:][:n*d], rest[2*d*B:][:n*d], rest[3*d*B:][:d*n]
				ktn, dpt := rest[4*d*B:][:d*nk], rest[4*d*B+d*T:][:nk*n]
				for i := range n {
					row := (r0+i0+i)*qd + h*d
					copy(do[i*d:(i+1)*d], dout[row:row+d])
					copy(qb[i*d:(i+1)*d], q[row:row+d])
					for e, x := range dout[row : row+d] {
						dotT[e*n+i] = x
					}
				}
				pt := probs[probsOffset(ws, lens, it.seq, h, b, sh):][:nk*n]
				clear(dpt)
				quant.NewF32(d, n, dotT).MulGrad(par.Serial, dpt, vc, nk)
				dsColumns(dpt, pt, nk, n, sh.Scale)
				for e := range d {
					copy(ktn[e*nk:(e+1)*nk], kt[e*T:e*T+nk])
				}
				clear(dqt)
				quant.NewF32(nk, n, dpt).MulGrad(par.Serial, dqt, ktn, d)
				for i := range n {
					g := dq[(r0+i0+i)*qd+h*d:][:d]
					for e := range g {
						g[e] += dqt[e*n+i]
					}
				}
				quant.NewF32(n, d, qb).MulGrad(par.Serial, gk, dpt, nk)
				quant.NewF32(n, d, do).MulGrad(par.Serial, gv, pt, nk)
			}
		}
		for j := range T {
			row := (r0+j)*kd + kh*d
			vec.Add(dk[row:row+d], gk[j*d:(j+1)*d])
			vec.Add(dv[row:row+d], gv[j*d:(j+1)*d])
		}
	})
}

// dsColumns turns dPᵀ (nk×n, in dpt) into dSᵀ in place given Pᵀ:
// dS_ij = scale · P_ij (dP_ij − Σ_j' P_ij' dP_ij'), the softmax backward
// through the scaled scores.
func dsColumns(dpt, pt []float32, nk, n int, scale float32) {
	var dd [attnBlock]float32
	D := dd[:n]
	for j := range nk {
		pr, dr := pt[j*n:(j+1)*n], dpt[j*n:(j+1)*n]
		for i, x := range pr {
			D[i] += x * dr[i]
		}
	}
	for j := range nk {
		pr, dr := pt[j*n:(j+1)*n], dpt[j*n:(j+1)*n]
		for i, x := range pr {
			dr[i] = scale * x * (dr[i] - D[i])
		}
	}
}
