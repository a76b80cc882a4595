package quant

import (
	"math"
	"sync"
	"sync/atomic"

	"github.com/loraplex/loraplex/quant/par"
)

// bfloat16 compute: MulTBF16 and MulGradBF16 round both operands of a
// many-row product to bfloat16 and accumulate the pair products in float32,
// what bitsandbytes does for QLoRA with bnb_4bit_compute_dtype=bfloat16: the
// dequantized weight (NF4 code times block scale, in float32) is rounded to
// the nearest bfloat16, as are the activations. CPUs with AVX512_BF16 run
// the products with VDPBF16PS at twice the float32 FMA rate.
//
// Operands travel as pair words: the low 16 bits hold element 2p of a run,
// the high 16 bits element 2p+1, the layout VDPBF16PS multiplies.

const (
	// bf16MinRows is the fewest activation rows for which MulTBF16 takes
	// the bfloat16 path: fewer rows cannot pay for rounding the weights.
	bf16MinRows = 16
	// bf16Panel weight rows are rounded together in MulTBF16: each pass
	// over a 64-row block of packed activations feeds 16 rows.
	bf16Panel = 16
	// bf16Chunk pairs (256 columns) of the packed activations, 64 KiB, are
	// one kernel call in MulTBF16; the chunk stays in L1/L2 while the
	// panel's four row groups pass over it.
	bf16Chunk = 256
	// bf16GradRows is the depth of one rounded tile of W in MulGradBF16:
	// 256 rows of a 256-column strip are 128 KiB of pair words, and each
	// kernel call runs 128 pairs deep, so the dx accumulators are loaded
	// and stored once per 2048 multiply-adds.
	bf16GradRows = 256
	// bf16Ahead is how many rows ahead MulGradBF16 prefetches its strip
	// of W.
	bf16Ahead = 16
	// bf16Tile is the activation columns of one packed block in MulTBF16
	// and the dx columns of one kernel call in MulGradBF16.
	bf16Tile = 64
)

// bf16KernelSet is one implementation of the bfloat16 inner loops; the Go
// versions are the specification.
type bf16KernelSet struct {
	name string
	// cvt sets dst[k] = pair(src[2k], src[2k+1]) for k < len(dst); src has
	// 2·len(dst) values.
	cvt func(dst []uint32, src []float32)
	// cvtPairs sets dst[c] = pair(a[c], b[c]) for c < len(dst).
	cvtPairs func(dst []uint32, a, b []float32)
	// acc4x64 adds, for q < 4 and c < 64,
	// d[q·ldd+c] += Σ_{p<P} dot2(a[q·lda+p], b[p·ldb+c]).
	acc4x64 func(d []float32, ldd int, a []uint32, lda int, b []uint32, ldb int, P int)
}

var bf16Generic = bf16KernelSet{name: "generic", cvt: bf16CvtGeneric, cvtPairs: bf16CvtPairsGeneric, acc4x64: bf16Acc4x64Generic}

// bf16k is the set in use: the assembly where the CPU has AVX512_BF16.
var bf16k = bestBF16Kernels()

// HasBF16Compute reports whether MulTBF16 and MulGradBF16 compute in
// bfloat16 on this CPU; elsewhere they run the float32 products (the Go
// version of the bfloat16 loops would be slower than those).
func HasBF16Compute() bool { return bf16k.name != "generic" }

// roundBF16 rounds v to the nearest bfloat16, ties to even, as
// VCVTNE2PS2BF16 does: denormal inputs become zero of the same sign and
// NaNs stay quiet NaNs.
func roundBF16(v float32) uint16 {
	b := math.Float32bits(v)
	switch {
	case b&0x7f800000 == 0:
		return uint16(b>>16) & 0x8000
	case b&0x7fffffff > 0x7f800000:
		return uint16(b>>16) | 0x40
	}
	return uint16((b + 0x7fff + (b>>16)&1) >> 16)
}

func pairBF16(lo, hi float32) uint32 { return uint32(roundBF16(lo)) | uint32(roundBF16(hi))<<16 }

// dot2 is one lane of VDPBF16PS: acc plus the two pair products, the high
// one first, each sum rounded to float32. Products of bfloat16 values are
// exact in float32; denormal bfloat16 inputs count as zero (VDPBF16PS
// flushes them).
func dot2(acc float32, a, b uint32) float32 {
	acc += bf16In(uint16(a>>16)) * bf16In(uint16(b>>16))
	return acc + bf16In(uint16(a))*bf16In(uint16(b))
}

func bf16In(h uint16) float32 {
	if h&0x7f80 == 0 {
		return 0
	}
	return bf16ToF32(h)
}

func bf16CvtGeneric(dst []uint32, src []float32) {
	src = src[:2*len(dst)]
	for k := range dst {
		dst[k] = pairBF16(src[2*k], src[2*k+1])
	}
}

func bf16CvtPairsGeneric(dst []uint32, a, b []float32) {
	a, b = a[:len(dst)], b[:len(dst)]
	for c := range dst {
		dst[c] = pairBF16(a[c], b[c])
	}
}

func bf16Acc4x64Generic(d []float32, ldd int, a []uint32, lda int, b []uint32, ldb int, P int) {
	_ = d[3*ldd+63]
	for q := range 4 {
		dq := d[q*ldd : q*ldd+64]
		for p := range P {
			ap, bp := a[q*lda+p], b[p*ldb:p*ldb+64]
			for c, w := range bp {
				dq[c] = dot2(dq[c], ap, w)
			}
		}
	}
}

var pairScratch = sync.Pool{New: func() any { return new([]uint32) }}

func getPairs(n int) *[]uint32 {
	b := pairScratch.Get().(*[]uint32)
	if cap(*b) < n {
		*b = make([]uint32, n)
	}
	*b = (*b)[:n]
	return b
}

// cvtRow sets dst[k] = pair(src[2k], src[2k+1]) for all len(src) values,
// the last pair's high half zero when len(src) is odd; dst holds
// (len(src)+1)/2 words.
func cvtRow(dst []uint32, src []float32) {
	n := len(src)
	h := n / 2 &^ 15
	bf16k.cvt(dst[:h], src[:2*h])
	bf16CvtGeneric(dst[h:n/2], src[2*h:])
	if n%2 == 1 {
		dst[n/2] = pairBF16(src[n-1], 0)
	}
}

// cvtPairRows sets dst[c] = pair(a[c], b[c]) for c < len(a).
func cvtPairRows(dst []uint32, a, b []float32) {
	n := len(a)
	h := n &^ 15
	bf16k.cvtPairs(dst[:h], a[:h], b[:h])
	bf16CvtPairsGeneric(dst[h:n], a[h:], b[h:n])
}

// bf16Job is one MulTBF16 or MulGradBF16 call handed to the pool's workers,
// pooled with its methods bound once so a call allocates nothing.
type bf16Job struct {
	p       *par.Pool // where it runs: claimed items Yield to it
	s       source
	out, in []float32
	n       int
	packed  []uint32     // the activations in pair words
	next    atomic.Int64 // the next item to claim
	items   int
	strips  int // MulGradBF16: column strips and row blocks
	blocks  int
	blockN  int
	mulT    func(lo, hi int)
	pack    func(lo, hi int)
	grad    func(lo, hi int)
	panels  int
	cp      int // pair words per activation row (MulTBF16) or dy row
	nblocks int // 64-row blocks of packed activations (MulTBF16)
}

var bf16Jobs = sync.Pool{New: func() any {
	j := new(bf16Job)
	j.mulT, j.pack, j.grad = j.mulTClaim, j.packRange, j.gradClaim
	return j
}}

func getBF16Job(p *par.Pool, s source, out, in []float32, n int) *bf16Job {
	j := bf16Jobs.Get().(*bf16Job)
	j.p, j.s, j.out, j.in, j.n = p, s, out, in, n
	j.next.Store(0)
	return j
}

func (j *bf16Job) release() {
	j.p, j.s, j.out, j.in, j.packed = nil, nil, nil, nil, nil
	bf16Jobs.Put(j)
}

// MulTBF16 is m.MulT computed in bfloat16 (see the top of this file) when
// the CPU has AVX512_BF16 and x has at least 16 rows; otherwise, and for
// matrices of other packages, it is m.MulT.
func MulTBF16(m Matrix, p *par.Pool, y, x []float32, n int) {
	s, ok := m.(source)
	if !ok || !HasBF16Compute() || n < bf16MinRows {
		m.MulT(p, y, x, n)
		return
	}
	mulTBF16(s, p, y, x, n)
}

// MulGradBF16 is m.MulGrad computed in bfloat16, on the same terms as
// MulTBF16.
func MulGradBF16(m Matrix, p *par.Pool, dx, dy []float32, n int) {
	s, ok := m.(source)
	if !ok || !HasBF16Compute() || n < bf16MinRows {
		m.MulGrad(p, dx, dy, n)
		return
	}
	mulGradBF16(s, p, dx, dy, n)
}

// mulTBF16 computes y[n×R] = x[n×C]·Wᵀ in bfloat16. The activations are
// packed once, in blocks of 64 rows, pair p of row i at
// [block][p][i%64], zero-padded to whole blocks; the workers then claim
// panels of 16 weight rows, round each panel once and run it against
// every block, 256 pairs at a time.
func mulTBF16(s source, p *par.Pool, y, x []float32, n int) {
	R, C := s.Rows(), s.Cols()
	checkMul("MulT", s, y, x, R, C, n)
	if n == 0 || R == 0 {
		return
	}
	j := getBF16Job(p, s, y, x, n)
	j.cp, j.nblocks = (C+1)/2, (n+bf16Tile-1)/bf16Tile
	buf := getPairs(j.nblocks * j.cp * bf16Tile)
	j.packed = *buf
	p.For(j.nblocks, 1, j.pack)
	j.panels = (R + bf16Panel - 1) / bf16Panel
	p.For(min(p.Workers(), j.panels), 1, j.mulT)
	pairScratch.Put(buf)
	j.release()
}

// packRange packs the activation blocks [lo, hi) for mulTBF16.
func (j *bf16Job) packRange(lo, hi int) {
	C, cp := j.s.Cols(), j.cp
	row := getPairs(cp)
	defer pairScratch.Put(row)
	for b := lo; b < hi; b++ {
		blk := j.packed[b*cp*bf16Tile : (b+1)*cp*bf16Tile]
		for c := range bf16Tile {
			i := b*bf16Tile + c
			if i >= j.n {
				for k := range cp {
					blk[k*bf16Tile+c] = 0
				}
				continue
			}
			cvtRow(*row, j.in[i*C:(i+1)*C])
			for k, w := range *row {
				blk[k*bf16Tile+c] = w
			}
		}
	}
}

// mulTClaim is one worker's loop in mulTBF16: it claims panels until none
// are left; its range is ignored.
func (j *bf16Job) mulTClaim(_, _ int) {
	R, C, cp := j.s.Rows(), j.s.Cols(), j.cp
	wb := getPairs(bf16Panel * cp)
	defer pairScratch.Put(wb)
	fb := getScratch(C + bf16Panel*bf16Tile)
	defer scratchPool.Put(fb)
	row, t := (*fb)[:C], (*fb)[C:]
	for u := int(j.next.Add(1)) - 1; u < j.panels; u = int(j.next.Add(1)) - 1 {
		r0 := u * bf16Panel
		r1 := min(R, r0+bf16Panel)
		groups := (r1 - r0 + 3) / 4
		for r := r0; r < r0+4*groups; r++ {
			dst := (*wb)[(r-r0)*cp : (r-r0+1)*cp]
			if r >= r1 {
				clear(dst)
				continue
			}
			j.s.decode(row, r, 0, C)
			cvtRow(dst, row)
		}
		for b := range j.nblocks {
			clear(t)
			blk := j.packed[b*cp*bf16Tile:]
			for k0 := 0; k0 < cp; k0 += bf16Chunk {
				P := min(bf16Chunk, cp-k0)
				for g := range groups {
					bf16k.acc4x64(t[g*4*bf16Tile:], bf16Tile, (*wb)[g*4*cp+k0:], cp, blk[k0*bf16Tile:], bf16Tile, P)
				}
			}
			for c := range min(bf16Tile, j.n-b*bf16Tile) {
				yi := j.out[(b*bf16Tile+c)*R:]
				for r := r0; r < r1; r++ {
					yi[r] = t[(r-r0)*bf16Tile+c]
				}
			}
		}
		j.p.Yield()
	}
}

// mulGradBF16 computes dx[n×C] += dy[n×R]·W in bfloat16: dy is rounded
// once into pair words along R (rows padded to a multiple of four with
// zeros), then the workers claim the items of gradSplit, round each
// 256-row tile of their strip of W into pairs of rows and apply it four
// rows of dx at a time.
func mulGradBF16(s source, p *par.Pool, dx, dy []float32, n int) {
	R, C := s.Rows(), s.Cols()
	checkMul("MulGrad", s, dx, dy, C, R, n)
	if n == 0 || C == 0 {
		return
	}
	j := getBF16Job(p, s, dx, dy, n)
	j.cp = (R + 1) / 2
	n4 := (n + 3) &^ 3
	buf := getPairs(n4 * j.cp)
	j.packed = *buf
	for i := range n4 {
		if i < n {
			cvtRow(j.packed[i*j.cp:(i+1)*j.cp], dy[i*R:(i+1)*R])
		} else {
			clear(j.packed[i*j.cp : (i+1)*j.cp])
		}
	}
	j.strips, j.blocks = gradSplit(C, n, p.Workers())
	j.blockN = ((n+j.blocks-1)/j.blocks + 3) &^ 3
	j.items = j.strips * j.blocks
	p.For(min(p.Workers(), j.items), 1, j.grad)
	pairScratch.Put(buf)
	j.release()
}

// gradClaim is one worker's loop in mulGradBF16; its range is ignored.
func (j *bf16Job) gradClaim(_, _ int) {
	R, C := j.s.Rows(), j.s.Cols()
	units := (C + gradUnit - 1) / gradUnit
	fb := getScratch(2*gradCols + 4*bf16Tile)
	defer scratchPool.Put(fb)
	wb := getPairs(bf16GradRows / 2 * gradCols)
	defer pairScratch.Put(wb)
	for u := int(j.next.Add(1)) - 1; u < j.items; u = int(j.next.Add(1)) - 1 {
		st, b := u/j.blocks, u%j.blocks
		c0 := st * units / j.strips * gradUnit
		c1 := min(C, (st+1)*units/j.strips*gradUnit)
		i0, i1 := b*j.blockN, min(j.n, (b+1)*j.blockN)
		if i0 >= i1 || c0 >= c1 {
			continue
		}
		wd := c1 - c0
		ld := (wd + bf16Tile - 1) &^ (bf16Tile - 1)
		f0, f1, t := (*fb)[:ld], (*fb)[ld:2*ld], (*fb)[2*gradCols:]
		for r0 := 0; r0 < R; r0 += bf16GradRows {
			r1 := min(R, r0+bf16GradRows)
			P := (r1 - r0 + 1) / 2
			for q := range P {
				r := r0 + 2*q
				prefetchStrip(j.s, r+bf16Ahead, c0, c1)
				prefetchStrip(j.s, r+bf16Ahead+1, c0, c1)
				j.s.decode(f0, r, c0, c1)
				clear(f0[wd:])
				clear(f1)
				if r+1 < r1 {
					j.s.decode(f1, r+1, c0, c1)
				}
				cvtPairRows((*wb)[q*ld:(q+1)*ld], f0, f1)
			}
			j.gradTile(t, (*wb)[:P*ld], ld, r0/2, P, c0, c1, i0, i1)
			j.p.Yield()
		}
	}
}

// gradTile adds the pairs [p0, p0+P) of dy's rows [i0, i1) times the packed
// tile w (pair q, column c at w[q·ld+c], for dx columns [c0, c1)) to dx.
// Partial 4×64 tiles at the rims go through t.
func (j *bf16Job) gradTile(t []float32, w []uint32, ld, p0, P, c0, c1, i0, i1 int) {
	C, cp, dx := j.s.Cols(), j.cp, j.out
	for i := i0; i < i1; i += 4 {
		rows := min(4, i1-i)
		a := j.packed[i*cp+p0:]
		for c := c0; c < c1; c += bf16Tile {
			cols := min(bf16Tile, c1-c)
			if rows == 4 && cols == bf16Tile {
				_ = dx[(i+3)*C+c+bf16Tile-1]
				bf16k.acc4x64(dx[i*C+c:], C, a, cp, w[c-c0:], ld, P)
				continue
			}
			clear(t)
			for q := range rows {
				copy(t[q*bf16Tile:q*bf16Tile+cols], dx[(i+q)*C+c:(i+q)*C+c+cols])
			}
			bf16k.acc4x64(t, bf16Tile, a, cp, w[c-c0:], ld, P)
			for q := range rows {
				copy(dx[(i+q)*C+c:(i+q)*C+c+cols], t[q*bf16Tile:q*bf16Tile+cols])
			}
		}
	}
}
