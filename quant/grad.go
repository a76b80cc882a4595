package quant

import (
	"sync"
	"sync/atomic"

	"github.com/loraplex/loraplex/quant/par"
	"github.com/loraplex/loraplex/quant/vec"
)

const (
	// gradUnit columns of dx are the width of the acc4x64 kernel and the
	// finest split of MulGrad's work.
	gradUnit = 64
	// gradCols is the widest column strip of one MulGrad work item: a
	// 64×256 tile of W (64 KiB) stays in L2 while the kernel sweeps the
	// item's rows of dx.
	gradCols = 256
	// gradRows is the depth of one widened tile of W: each kernel call runs
	// 64 rows deep, so the dx accumulators are loaded and stored once per
	// 64 multiply-adds.
	gradRows = 64
	// gradBlockRows bounds the activation rows of one work item, so its
	// dx block (at most 256×256 floats, 256 KiB) stays in L2 across the
	// tiles of W; widening a tile again per block costs well under 1%.
	gradBlockRows = 256
)

// gradSplit divides MulGrad's dx (n×C) into strips × blocks equal work
// items: column strips of whole 64-column units (at most gradCols wide)
// and blocks of rows (at most gradBlockRows long). Workers claim items one
// by one, so the count should be a multiple of the workers for each to get
// the same share: else the rows are cut into more blocks (when each keeps
// at least four rows for the kernel), or failing that the strips narrow to
// single units, so no worker is left with more than one unit extra.
func gradSplit(C, n, workers int) (strips, blocks int) {
	units := (C + gradUnit - 1) / gradUnit
	strips = (units*gradUnit + gradCols - 1) / gradCols
	blocks = (n + gradBlockRows - 1) / gradBlockRows
	if workers <= 1 || strips*blocks%workers == 0 {
		return strips, blocks
	}
	if more := (blocks + workers - 1) / workers * workers; n >= 4*more {
		return strips, more
	}
	return units, blocks
}

// gradJob is one MulGrad call handed to the pool's workers. Jobs are
// pooled with their method bound once, so a call allocates nothing.
type gradJob struct {
	p         *par.Pool // where it runs: tiles Yield to it
	s         source
	dx, dy    []float32
	n         int
	units     int // 64-column units of dx, the last maybe partial
	strips    int
	blocks    int
	blockRows int          // a multiple of 4; the last block may be short or empty
	next      atomic.Int64 // the next item to claim
	run       func(lo, hi int)
}

var gradJobs = sync.Pool{New: func() any {
	j := new(gradJob)
	j.run = j.claim
	return j
}}

// mulGrad computes dx[n×C] += dy[n×R]·W. Workers own disjoint items of dx
// (see gradSplit), so no two write the same value; each widens its strip
// of W tile by tile (F32 weights are read in place) and applies each tile
// to the item's activation rows, four rows at a time through the acc4x64
// kernel.
func mulGrad(s source, p *par.Pool, dx, dy []float32, n int) {
	R, C := s.Rows(), s.Cols()
	checkMul("MulGrad", s, dx, dy, C, R, n)
	if n == 0 || C == 0 {
		return
	}
	strips, blocks := gradSplit(C, n, p.Workers())
	rows := (n + blocks - 1) / blocks
	j := gradJobs.Get().(*gradJob)
	j.p, j.s, j.dx, j.dy, j.n = p, s, dx, dy, n
	j.units, j.strips, j.blocks, j.blockRows = (C+gradUnit-1)/gradUnit, strips, blocks, (rows+3)&^3
	j.next.Store(0)
	// Workers claim items one at a time, so one that starts late or
	// loses its core hands its items to the others; with equal items and
	// no such delay every worker gets the same number.
	items := strips * blocks
	if items*gradCols*R*rows < 2*minRowWork {
		j.do(0, items)
	} else {
		p.For(min(p.Workers(), items), 1, j.run)
	}
	j.p, j.s, j.dx, j.dy = nil, nil, nil, nil
	gradJobs.Put(j)
}

// claim is one worker's loop: it runs items until none are left; its
// range is ignored.
func (j *gradJob) claim(_, _ int) {
	items := j.strips * j.blocks
	for u := int(j.next.Add(1)) - 1; u < items; u = int(j.next.Add(1)) - 1 {
		j.do(u, u+1)
	}
}

// do runs items [lo, hi): item u is strip u / blocks, block u % blocks.
func (j *gradJob) do(lo, hi int) {
	C := j.s.Cols()
	for u := lo; u < hi; u++ {
		st, b := u/j.blocks, u%j.blocks
		c0 := st * j.units / j.strips * gradUnit
		c1 := min(C, (st+1)*j.units/j.strips*gradUnit)
		i0, i1 := b*j.blockRows, min(j.n, (b+1)*j.blockRows)
		gradItem(j.p, j.s, j.dx, j.dy, c0, c1, i0, i1)
	}
}

// gradItem adds dy[i0:i1, :]·W[:, c0:c1] to dx[i0:i1, c0:c1]. An item of a
// large matrix is long work (the head's: vocabulary × 256 × 256), so it
// yields to p between tiles.
func gradItem(p *par.Pool, s source, dx, dy []float32, c0, c1, i0, i1 int) {
	R, C := s.Rows(), s.Cols()
	if i0 >= i1 || c0 >= c1 {
		return
	}
	v, direct := s.(viewer)
	var buf *[]float32
	if !direct {
		buf = getScratch(gradRows * gradCols)
		defer scratchPool.Put(buf)
	}
	wd := c1 - c0
	for r0 := 0; r0 < R; r0 += gradRows {
		r1 := min(R, r0+gradRows)
		var w []float32
		ld := wd
		if direct {
			w, ld = v.view(r0, r1)[c0:], C
		} else {
			w = (*buf)[:(r1-r0)*wd]
			for r := r0; r < r1; r++ {
				s.decode(w[(r-r0)*wd:], r, c0, c1)
			}
		}
		tileMulGrad(dx, dy, w, ld, R, C, r0, r1, c0, c1, i0, i1)
		p.Yield()
	}
}

// tileMulGrad adds dy[i0:i1, r0:r1]·w to dx[i0:i1, c0:c1], where row r of
// the tile (W[r, c0:c1]) starts at w[(r-r0)·ld].
func tileMulGrad(dx, dy, w []float32, ld, R, C, r0, r1, c0, c1, i0, i1 int) {
	wd := c1 - c0
	i := i0
	for ; i+4 <= i1; i += 4 {
		c := 0
		for ; c+gradUnit <= wd; c += gradUnit {
			_ = dx[(i+3)*C+c0+c+gradUnit-1]
			_ = w[(r1-r0-1)*ld+c+gradUnit-1]
			kern.acc4x64(dx[i*C+c0+c:], C, dy[i*R+r0:], R, w[c:], ld, r1-r0)
		}
		if c < wd {
			for a := range 4 {
				axpyRows(dx[(i+a)*C+c0+c:(i+a)*C+c1], dy[(i+a)*R:], w[c:], ld, r0, r1)
			}
		}
	}
	for ; i < i1; i++ {
		axpyRows(dx[i*C+c0:i*C+c1], dy[i*R:], w, ld, r0, r1)
	}
}

// axpyRows adds Σ_r dyRow[r]·w[(r-r0)·ld:][:len(dst)] to dst.
func axpyRows(dst, dyRow, w []float32, ld, r0, r1 int) {
	for r := r0; r < r1; r++ {
		if a := dyRow[r]; a != 0 {
			vec.Axpy(a, w[(r-r0)*ld:(r-r0)*ld+len(dst)], dst)
		}
	}
}
