package quant

import (
	"fmt"
	"math"
	"sort"

	"github.com/loraplex/loraplex/quant/par"
)

const (
	nf4Block    = 64  // elements per NF4 block (bitsandbytes blocksize)
	nestedBlock = 256 // block scales per second-level scale (nested_blocksize)
)

// NF4 is a weight matrix quantized with bitsandbytes NF4, blocksize 64 and
// double quantization of the block scales. The layout is described in the
// package documentation. It implements Matrix.
type NF4 struct {
	rows, cols int
	packed     []byte    // two codes per byte, first in the high nibble
	qabs       []uint8   // per 64-block: index into dyn
	absmax2    []float32 // per 256 blocks: scale of the dyn values
	offset     float32   // added to every dequantized block scale
	code       *[16]float32
	dyn        *[256]float32
	dtype      string    // dtype of the weight before quantization, for quant_state
	int8       bool      // SetInt8Prefill
	int8Dec    bool      // SetInt8Decode
	q8sw       []float32 // SetInt8Prefill: block scales/127 in panel order (q8.go)
}

var (
	nf4Mids     = [15]float64(midpoints(nf4Code[:]))
	dynamicMids = midpoints(dynamicMap[:])
)

// QuantizeNF4 quantizes a row-major rows×cols float32 weight exactly as
// bitsandbytes quantize_4bit(quant_type="nf4", blocksize=64,
// compress_statistics=True) does. The offset (mean of the block scales) is
// summed in float64, which can differ from torch's float32 mean in the last
// bit on very large tensors.
func QuantizeNF4(rows, cols int, w []float32) *NF4 {
	n := rows * cols
	if len(w) != n {
		panic(fmt.Sprintf("quant: QuantizeNF4 %d×%d needs %d values, got %d", rows, cols, n, len(w)))
	}
	nb := (n + nf4Block - 1) / nf4Block
	q := &NF4{
		rows: rows, cols: cols,
		packed: make([]byte, (n+1)/2),
		qabs:   make([]uint8, nb),
		code:   &nf4Code, dyn: &dynamicMap,
		dtype: "float32",
	}
	absmax := make([]float32, nb)
	for b := range nb {
		blk := w[b*nf4Block : min(n, (b+1)*nf4Block)]
		var m float32
		for _, v := range blk {
			m = max(m, abs32(v))
		}
		absmax[b] = m
		// An all-zero block divides by 1e-38 instead: every value maps to 0.0.
		inv := 1 / max(m, 1e-38)
		for k, v := range blk {
			c := nearestNF4(clamp1(v * inv))
			i := b*nf4Block + k
			if i%2 == 0 {
				q.packed[i/2] = byte(c) << 4
			} else {
				q.packed[i/2] |= byte(c)
			}
		}
	}
	if n%2 == 1 {
		q.packed[n/2] |= 7 // bitsandbytes pads an odd length with the value 0.0
	}
	q.offset, q.absmax2 = quantizeScales(absmax, q.qabs)
	adviseHuge(q.packed)
	return q
}

// quantizeScales is the double quantization: offset = mean(absmax), then
// absmax-offset is quantized with the dynamic map in blocks of 256, each
// with its own float32 scale (quantize_blockwise).
func quantizeScales(absmax []float32, qabs []uint8) (float32, []float32) {
	if len(absmax) == 0 {
		return 0, nil
	}
	var sum float64
	for _, a := range absmax {
		sum += float64(a)
	}
	offset := float32(sum / float64(len(absmax)))
	ng := (len(absmax) + nestedBlock - 1) / nestedBlock
	absmax2 := make([]float32, ng)
	for g := range ng {
		lo, hi := g*nestedBlock, min(len(absmax), (g+1)*nestedBlock)
		var m float32
		for _, a := range absmax[lo:hi] {
			m = max(m, abs32(a-offset))
		}
		absmax2[g] = m
		inv := 1 / m
		for i := lo; i < hi; i++ {
			s := (absmax[i] - offset) * inv
			if m == 0 {
				// torch computes 0·inf = NaN here and argmin picks code 0;
				// the scale is 0, so every code decodes to the offset.
				qabs[i] = 0
				continue
			}
			qabs[i] = uint8(nearest(dynamicMap[:], dynamicMids, clamp1(s)))
		}
	}
	return offset, absmax2
}

// midpoints returns the float64 midpoints of adjacent sorted codes; they are
// exact, since the codes are float32.
func midpoints(codes []float32) []float64 {
	m := make([]float64, len(codes)-1)
	for i := range m {
		m[i] = (float64(codes[i]) + float64(codes[i+1])) / 2
	}
	return m
}

// nearest is torch.argmin(|s - codes|) in float32: the code with the smallest
// rounded distance, the lowest index on a tie. A binary search on the
// midpoints lands next to the answer; the float32 distances decide among
// the neighbours.
func nearest(codes []float32, mids []float64, s float32) int {
	i := sort.SearchFloat64s(mids, float64(s))
	lo, hi := max(0, i-1), min(len(codes)-1, i+1)
	best := lo
	for j := lo + 1; j <= hi; j++ {
		if abs32(s-codes[j]) < abs32(s-codes[best]) {
			best = j
		}
	}
	return best
}

// nearestNF4 is nearest for the 16 NF4 codes with a branch-free binary
// search: it runs once per weight when a model is quantized on load.
func nearestNF4(s float32) int {
	m, f := &nf4Mids, float64(s)
	i := 8 * b2i(m[7] < f)
	i += 4 * b2i(m[i+3] < f)
	i += 2 * b2i(m[i+1] < f)
	i += b2i(m[i] < f)
	// i codes have their upper midpoint below s. Only within rounding
	// distance of a midpoint can float32 distances tie or disagree.
	const near = 1e-6
	if (i > 0 && f-m[i-1] < near) || (i < 15 && m[i]-f < near) {
		return nearest(nf4Code[:], m[:], s)
	}
	return i
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

func clamp1(v float32) float32 {
	if v > 1 {
		return 1
	}
	if v < -1 {
		return -1
	}
	return v
}

func abs32(v float32) float32 { return math.Float32frombits(math.Float32bits(v) &^ (1 << 31)) }

// Rows implements Matrix.
func (q *NF4) Rows() int { return q.rows }

// Cols implements Matrix.
func (q *NF4) Cols() int { return q.cols }

// Bytes is the resident size: the packed codes, one byte per 64 values,
// one float32 per 16384 values and the offset, plus the code tables when a
// checkpoint brought non-standard ones (the standard tables are shared)
// and, under SetInt8Prefill, one float32 per 64 values.
func (q *NF4) Bytes() int64 {
	b := int64(len(q.packed) + len(q.qabs) + 4*len(q.absmax2) + 4*len(q.q8sw) + 4)
	if q.code != &nf4Code {
		b += 16 * 4
	}
	if q.dyn != &dynamicMap {
		b += 256 * 4
	}
	return b
}

// scale returns the dequantized absmax of block b.
func (q *NF4) scale(b int) float32 {
	return float32(q.dyn[q.qabs[b]]*q.absmax2[b/nestedBlock]) + q.offset
}

// at returns flattened element i, dequantized.
func (q *NF4) at(i int) float32 {
	c := q.packed[i/2]
	if i%2 == 0 {
		c >>= 4
	}
	return q.code[c&15] * q.scale(i/nf4Block)
}

// Dequantize writes the whole weight, row-major, into dst[:Rows·Cols]; the
// values are bitsandbytes' dequantize_4bit output in float32.
func (q *NF4) Dequantize(dst []float32) {
	q.decodeFlat(dst[:q.rows*q.cols], 0)
}

// decodeFlat dequantizes flattened elements [s, s+len(dst)). Whole blocks
// go through the kernel; the ragged ends (rows that do not start on a block)
// element by element.
func (q *NF4) decodeFlat(dst []float32, s int) {
	e := s + len(dst)
	h := min(e, (s+nf4Block-1)/nf4Block*nf4Block)
	for i := s; i < h; i++ {
		dst[i-s] = q.at(i)
	}
	b, bEnd := h/nf4Block, e/nf4Block
	for b < bEnd {
		g := b / nestedBlock
		bn := min(bEnd, (g+1)*nestedBlock)
		kern.nf4Decode(dst[b*nf4Block-s:bn*nf4Block-s], q.packed[b*nf4Block/2:bn*nf4Block/2], q.qabs[b:bn], q.code, q.dyn, q.absmax2[g], q.offset)
		b = bn
	}
	for i := max(h, bEnd*nf4Block); i < e; i++ {
		dst[i-s] = q.at(i)
	}
}

// dotFlat returns Σ w[s+k]·x[k] over flattened elements [s, s+len(x)).
func (q *NF4) dotFlat(x []float32, s int) float32 {
	e := s + len(x)
	h := min(e, (s+nf4Block-1)/nf4Block*nf4Block)
	var sum float32
	for i := s; i < h; i++ {
		sum += q.at(i) * x[i-s]
	}
	b, bEnd := h/nf4Block, e/nf4Block
	for b < bEnd {
		g := b / nestedBlock
		bn := min(bEnd, (g+1)*nestedBlock)
		sum += kern.nf4Dot(q.packed[b*nf4Block/2:bn*nf4Block/2], q.qabs[b:bn], x[b*nf4Block-s:bn*nf4Block-s], q.code, q.dyn, q.absmax2[g], q.offset)
		b = bn
	}
	for i := max(h, bEnd*nf4Block); i < e; i++ {
		sum += q.at(i) * x[i-s]
	}
	return sum
}

func (q *NF4) dot(r int, x []float32) float32 { return q.dotFlat(x[:q.cols], r*q.cols) }

func (q *NF4) decode(dst []float32, r, c0, c1 int) { q.decodeFlat(dst[:c1-c0], r*q.cols+c0) }

// Row implements Matrix.
func (q *NF4) Row(dst []float32, r int) { q.decode(dst, r, 0, q.cols) }

// MulT implements Matrix. Decode batches (quadRows), when the rows of W
// start on block boundaries (cols a multiple of 64, as in every real model),
// go through the quad-order kernels where the CPU has them.
func (q *NF4) MulT(p *par.Pool, y, x []float32, n int) {
	if q.useQ8(n) {
		checkMul("MulT", q, y, x, q.rows, q.cols, n)
		q.mulQ8(p, y, x, n)
		return
	}
	if !q.quadRows(n) {
		mulT(q, p, y, x, n)
		return
	}
	checkMul("MulT", q, y, x, q.rows, q.cols, n)
	if q.useQ8Decode() {
		q.mulQ8Decode(p, y, x, n)
		return
	}
	buf := getScratch(n * q.cols)
	defer scratchPool.Put(buf)
	quadX(*buf, x[:n*q.cols])
	getJob(jobQuad, q, y, *buf, n).runShared(p, q.rows, shareRows(p, q.rows, q.cols, n))
}

// rowsQuad sets y[i·Rows+r] = W[r,:]·x[i·Cols:] for i < n and r in
// [lo, hi), with x in quad order (quadX) and cols a multiple of 64.
func (q *NF4) rowsQuad(y, xq []float32, n, lo, hi int) {
	R, C, nb := q.rows, q.cols, q.cols/nf4Block
	p, qa, b0 := q.packed[lo*nb*32:hi*nb*32], q.qabs[lo*nb:hi*nb], lo*nb
	i := 0
	for ; i+4 <= n && kern.nf4Rows4 != nil; i += 4 {
		kern.nf4Rows4(y[i*R+lo:(i+3)*R+hi], R, p, qa, q.absmax2, b0, nb, xq[i*C:(i+4)*C], q.code, q.dyn, q.offset)
	}
	for ; i+2 <= n && kern.nf4Rows2 != nil; i += 2 {
		kern.nf4Rows2(y[i*R+lo:i*R+hi], y[(i+1)*R+lo:(i+1)*R+hi], p, qa, q.absmax2, b0, nb,
			xq[i*C:(i+1)*C], xq[(i+1)*C:(i+2)*C], q.code, q.dyn, q.offset)
	}
	for ; i < n; i++ {
		kern.nf4Rows(y[i*R+lo:i*R+hi], p, qa, q.absmax2, b0, nb, xq[i*C:(i+1)*C], q.code, q.dyn, q.offset)
	}
}

// MulGrad implements Matrix.
func (q *NF4) MulGrad(p *par.Pool, dx, dy []float32, n int) { mulGrad(q, p, dx, dy, n) }
