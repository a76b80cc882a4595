package quant

import (
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/loraplex/loraplex/quant/par"
	"github.com/loraplex/loraplex/quant/vec"
)

// source is what the shared MulT/MulGrad drivers need from a format.
type source interface {
	Rows() int
	Cols() int
	// dot returns W[r,:]·x[:Cols], streaming the row once.
	dot(r int, x []float32) float32
	// decode widens W[r, c0:c1] into dst[:c1-c0].
	decode(dst []float32, r, c0, c1 int)
}

// viewer is implemented by formats whose rows are already float32.
type viewer interface {
	view(r0, r1 int) []float32
}

const (
	// minRowWork is the smallest number of multiply-adds worth handing to
	// another worker; below it the hand-off costs more than it saves.
	minRowWork = 1 << 15
	// shareWork is the most multiply-adds in one share of a product with a
	// few activation rows (decoding): 256K weights, 128 KiB of NF4, long
	// enough a stretch for the hardware prefetchers.
	shareWork = 1 << 18
	// minShareWork is the fewest: 16K multiply-adds take a microsecond or
	// more, against tens of nanoseconds to claim a share.
	minShareWork = 1 << 14
	// sharesPerWorker is how many shares each worker gets at least, where
	// the matrix is big enough, so a worker that starts late or loses its
	// core hands its remaining shares to the others.
	sharesPerWorker = 4
	// shareAlign rows of float32 output fill a cache line, so workers
	// writing neighbouring shares do not share lines of y.
	shareAlign = 16
	// panelRows weight rows are widened together for batched products: 16
	// rows of 2048-5632 columns (128-360 KiB) stay in L2 while every
	// activation row passes over them.
	panelRows = 16
	// batchRows activation rows share one widened panel before the next
	// panel is widened: 64 rows of 2048 columns (512 KiB) fit in L2 beside
	// the panel, so a prefill of any length widens each panel once per 64
	// rows, and a decode batch of up to 64 widens it exactly once.
	batchRows = 64
)

var scratchPool = sync.Pool{New: func() any { return new([]float32) }}

func getScratch(n int) *[]float32 {
	b := scratchPool.Get().(*[]float32)
	if cap(*b) < n {
		*b = make([]float32, n)
	}
	*b = (*b)[:n]
	return b
}

func checkMul(name string, s source, out, in []float32, outCols, inCols, n int) {
	if n < 0 || len(out) < n*outCols || len(in) < n*inCols {
		panic(fmt.Sprintf("quant: %s on %d×%d with n=%d: got %d and %d values, need %d and %d",
			name, s.Rows(), s.Cols(), n, len(out), len(in), n*outCols, n*inCols))
	}
}

// rowGrain is the par grain for splitting rows: the pool hands each worker
// one contiguous run of rows, so each streams one contiguous stretch of the
// weights (what hardware prefetchers follow best) and writes one contiguous
// stretch of y (no false sharing except at the run ends).
func rowGrain(cols, n int) int { return max(1, minRowWork/max(1, cols*n)) }

// shareRows is the number of weight rows in one share of a product of
// rows×cols weights with n activation rows on p (see runShared): enough
// shares that every worker gets sharesPerWorker of them, but none so small
// that claiming it costs more than a few percent of running it.
func shareRows(p *par.Pool, rows, cols, n int) int {
	work := max(1, cols*n)
	hi := max(1, shareWork/work)
	lo := min(hi, max(1, minShareWork/work))
	share := (rows + p.Workers()*sharesPerWorker - 1) / (p.Workers() * sharesPerWorker)
	share = (share + shareAlign - 1) / shareAlign * shareAlign
	return min(hi, max(lo, share))
}

type jobKind uint8

const (
	jobDot    jobKind = iota // MulT, one activation row
	jobQuad                  // NF4 MulT, decode batches in quad order
	jobQuadQ8                // NF4 int8 MulT, 1-3 rows
	jobPanel                 // MulT, several activation rows
	jobQ8Acts                // NF4 int8 MulT: quantize the activations
	jobQ8                    // NF4 int8 MulT: the products
)

// job carries one kernel call to the pool's workers. Jobs are pooled with
// their methods bound once, so a call allocates nothing.
type job struct {
	kind    jobKind
	p       *par.Pool // where it runs: long loops Yield to it
	s       source
	out, in []float32
	n       int
	q8      *q8Acts  // quantized activations of jobQ8
	xa      []uint32 // encoded activations of jobQuadQ8
	run     func(lo, hi int)

	// runShared: rows [0, total) in shares of share rows, claimed in turn
	// through next by the claim loops.
	total, share int
	next         atomic.Int64
	claim        func(lo, hi int)
}

var jobPool = sync.Pool{New: func() any {
	j := new(job)
	j.run = j.do
	j.claim = j.claimShares
	return j
}}

func getJob(kind jobKind, s source, out, in []float32, n int) *job {
	j := jobPool.Get().(*job)
	j.kind, j.s, j.out, j.in, j.n = kind, s, out, in, n
	return j
}

// release drops the job's references and returns it to the pool.
func (j *job) release() {
	j.p, j.s, j.out, j.in, j.q8, j.xa = nil, nil, nil, nil, nil, nil
	jobPool.Put(j)
}

// start runs kind over [0, total) on p and returns when it is done.
func start(p *par.Pool, kind jobKind, s source, out, in []float32, n, total, grain int) {
	j := getJob(kind, s, out, in, n)
	j.p = p
	p.For(total, grain, j.run)
	j.release()
}

// runShared runs j over rows [0, total) on p in shares of share rows that
// the workers claim one after another until none are left, then releases
// j. A fixed split would make the call wait for its slowest worker: one
// that wakes late or loses its core to another process. Shares cost little
// to claim; shareRows sizes them so that small matrices still split evenly
// and large ones stream the weights in stretches of up to 128 KiB.
func (j *job) runShared(p *par.Pool, total, share int) {
	j.p, j.total, j.share = p, total, share
	j.next.Store(0)
	p.For(min(p.Workers(), (total+share-1)/share), 1, j.claim)
	j.release()
}

// claimShares is one worker's loop in runShared; its range is ignored.
func (j *job) claimShares(_, _ int) {
	for {
		lo := int(j.next.Add(int64(j.share))) - j.share
		if lo >= j.total {
			return
		}
		j.do(lo, min(j.total, lo+j.share))
		j.p.Yield()
	}
}

func (j *job) do(lo, hi int) {
	switch j.kind {
	case jobDot:
		for r := lo; r < hi; r++ {
			j.out[r] = j.s.dot(r, j.in)
		}
	case jobQuad:
		j.s.(*NF4).rowsQuad(j.out, j.in, j.n, lo, hi)
	case jobQuadQ8:
		j.s.(*NF4).rowsQ8(j.out, j.xa, j.n, lo, hi)
	case jobPanel:
		panelRange(j.s, j.out, j.in, j.n, lo, hi)
	case jobQ8Acts:
		j.s.(*NF4).q8ActsRange(j.q8, j.in, j.n, lo, hi)
	case jobQ8:
		j.s.(*NF4).q8Range(j.out, j.q8, j.n, lo, hi)
	}
}

// mulT computes y[n×R] = x[n×C]·Wᵀ. One activation row streams every weight
// row once through the fused dot kernel; several rows widen a panel of
// weight rows once and reuse it for up to batchRows activation rows.
func mulT(s source, p *par.Pool, y, x []float32, n int) {
	R, C := s.Rows(), s.Cols()
	checkMul("MulT", s, y, x, R, C, n)
	if n == 0 || R == 0 {
		return
	}
	if n == 1 {
		getJob(jobDot, s, y, x, 1).runShared(p, R, shareRows(p, R, C, 1))
		return
	}
	start(p, jobPanel, s, y, x, n, R, rowGrain(C, n))
}

// panelRange is the share of one worker in a batched MulT: weight rows
// [lo, hi) against all n activation rows.
func panelRange(s source, y, x []float32, n, lo, hi int) {
	R, C := s.Rows(), s.Cols()
	v, direct := s.(viewer)
	buf := getScratch(16 + panelRows*C)
	defer scratchPool.Put(buf)
	t := (*[16]float32)((*buf)[:16])
	for i0 := 0; i0 < n; i0 += batchRows {
		i1 := min(n, i0+batchRows)
		for r0 := lo; r0 < hi; r0 += panelRows {
			r1 := min(hi, r0+panelRows)
			var w []float32
			if direct {
				w = v.view(r0, r1)
			} else {
				w = (*buf)[16 : 16+(r1-r0)*C]
				for r := r0; r < r1; r++ {
					s.decode(w[(r-r0)*C:], r, 0, C)
				}
			}
			panelMulT(t, y, x, w, R, C, r0, r1, i0, i1)
		}
	}
}

// panelMulT computes y[i, r] for i in [i0,i1), r in [r0,r1) from widened
// rows w (row r at w[(r-r0)*C:]), in 4×4 tiles with a ragged rim.
func panelMulT(t *[16]float32, y, x, w []float32, R, C, r0, r1, i0, i1 int) {
	i := i0
	for ; i+4 <= i1; i += 4 {
		r := r0
		for ; r+4 <= r1; r += 4 {
			kern.dot4x4(t, x[i*C:], C, w[(r-r0)*C:], C, C)
			for a := range 4 {
				copy(y[(i+a)*R+r:(i+a)*R+r+4], t[a*4:a*4+4])
			}
		}
		for ; r < r1; r++ {
			wr := w[(r-r0)*C : (r-r0+1)*C]
			for a := range 4 {
				y[(i+a)*R+r] = vec.Dot(wr, x[(i+a)*C:(i+a+1)*C])
			}
		}
	}
	for ; i < i1; i++ {
		xi := x[i*C : (i+1)*C]
		for r := r0; r < r1; r++ {
			y[i*R+r] = vec.Dot(w[(r-r0)*C:(r-r0+1)*C], xi)
		}
	}
}
