package quant

import (
	"encoding/binary"
	"sync"

	"github.com/loraplex/loraplex/quant/par"
)

// The int8 batched path (opt-in per matrix with SetInt8Prefill, from
// q8MinBatch activation rows on: prefill and decoding batches) multiplies
// many activation rows with integer dot products. Each 64-value
// block of an activation row is rounded to int8 with its own scale
// amax/127 (rows stay in natural order); each NF4 code becomes the offset
// int8 weight round(127·code)+128, so a weight block is int8 codes times
// the block scale/127.
//
// Weights are widened per call, one panel of 16 rows at a time, into a
// "row-lane" layout: for block b, vector j (64 bytes) holds in its 32-bit
// lane l elements 4j..4j+3 of the block in panel row l. A VPDPBUSD of that
// vector with four activation bytes broadcast to every lane advances 16
// row sums at once, and after the block's 16 vectors each lane holds one
// (row, block) integer sum, which a convert and a multiply-add by the
// product of the two block scales fold into a float32 sum. So any multiple
// of 64 columns runs without padding, and a tile of activation rows writes
// 16 consecutive outputs per row. The accumulators start at
// -128·Σ(block's int8 activations), which removes the +128 weight offset
// (VPDPBUSD multiplies unsigned by signed bytes).
//
// Error: |x - x̂| ≤ amax_b(x)/254 and |w - ŵ| ≤ scale_b/254 per element, so
// |y - ŷ| ≤ Σ_k (|x_k|·scale_b + amax_b(x)·|ŵ_k|)/254 (TestInt8Bound).
const (
	q8Panel    = 16 // weight rows widened together, one per 32-bit lane
	q8TileRows = 8  // activation rows of the big tile kernel
	q8MinBatch = 4  // fewer rows are SetInt8Decode's (q8dec.go)
	// q8ShareActs is the fewest activation values worth quantizing on both
	// workers; a decoding batch's few thousand take a microsecond or two,
	// less than handing them out.
	q8ShareActs = 1 << 15
)

// q8Acts holds quantized activation rows: xq row-major int8 (cols bytes a
// row), and for block b of row a, at b·np + a, its scale sx and negated
// offset correction corr. np (a multiple of 4) rows, the padding zero.
type q8Acts struct {
	xq   []byte
	sx   []float32
	corr []int32
	np   int
}

// quantize writes row a of acts from x (len cols, cols%64 == 0); the
// assembly q8Quant kernels implement it.
func (acts *q8Acts) quantize(a int, x []float32) {
	C, np := len(x), acts.np
	xq := acts.xq[a*C : (a+1)*C]
	for b := 0; b*nf4Block < C; b++ {
		blk := (*[nf4Block]float32)(x[b*nf4Block:])
		var amax float32
		for _, v := range blk {
			amax = max(amax, abs32(v))
		}
		if amax == 0 {
			clear(xq[b*nf4Block : (b+1)*nf4Block])
			acts.sx[b*np+a], acts.corr[b*np+a] = 0, 0
			continue
		}
		inv := 127 / amax
		var sum int32
		for e, v := range blk {
			c := roundI8(v * inv)
			xq[b*nf4Block+e] = byte(int8(c))
			sum += c
		}
		acts.sx[b*np+a], acts.corr[b*np+a] = amax/127, -128*sum
	}
}

// zero makes row a of acts a padding row.
func (acts *q8Acts) zero(a, cols int) {
	clear(acts.xq[a*cols : (a+1)*cols])
	for b := range cols / nf4Block {
		acts.sx[b*acts.np+a], acts.corr[b*acts.np+a] = 0, 0
	}
}

// nf4Q8 maps two packed bytes (four codes) to their four offset int8
// weights round(127·code)+128, as one little-endian uint32 in element order.
var nf4Q8 = sync.OnceValue(func() *[1 << 16]uint32 {
	t := new([1 << 16]uint32)
	u := &nf4U8
	for i := range t {
		b0, b1 := i&0xff, i>>8
		t[i] = uint32(u[b0>>4]) | uint32(u[b0&15])<<8 | uint32(u[b1>>4])<<16 | uint32(u[b1&15])<<24
	}
	return t
})

// panelQ8 widens rows [r0, r1) (r0 a multiple of q8Panel, r1-r0 at most
// q8Panel) of q into the row-lane layout wu (nb·1024 bytes) and returns
// the panel's block scales.
func (q *NF4) panelQ8(wu []byte, r0, r1 int) []float32 {
	nb := q.cols / nf4Block
	kern.q8Widen(wu, q.packed[r0*nb*32:r1*nb*32], r1-r0, nb)
	return q.q8sw[r0*nb : (r0+q8Panel)*nb]
}

// q8Scales lays out the block scales/127 of q (as q.scale computes them)
// for the int8 batched path: for the panel of rows from r0, block b, row
// r0+l at r0·nb + 16b + l; lanes past the last row hold 0.
func (q *NF4) q8Scales() []float32 {
	nb := q.cols / nf4Block
	sw := make([]float32, (q.rows+q8Panel-1)/q8Panel*q8Panel*nb)
	for r := range q.rows {
		p := sw[r/q8Panel*q8Panel*nb:]
		for b := range nb {
			p[16*b+r%q8Panel] = q.scale(r*nb+b) / 127
		}
	}
	return sw
}

// q8WidenGeneric is the loop the assembly q8Widen kernels implement: it
// writes rows (≤ 16) rows of nb packed blocks each, p row-major, into the
// row-lane layout wu, lanes past rows as offset zeros.
func q8WidenGeneric(wu, p []byte, rows, nb int) {
	t := nf4Q8()
	for l := range q8Panel {
		for b := range nb {
			w := wu[b*1024+4*l:]
			if l >= rows {
				for j := range 16 {
					binary.LittleEndian.PutUint32(w[j*64:], 0x80808080)
				}
				continue
			}
			blk := (*[32]byte)(p[(l*nb+b)*32:])
			for j := range 16 {
				binary.LittleEndian.PutUint32(w[j*64:], t[uint16(blk[2*j])|uint16(blk[2*j+1])<<8])
			}
		}
	}
}

// q8TileGeneric is the loop the assembly q8Tile kernels implement, for m
// (4 or 8) activation rows of acts starting at row i against one widened
// panel (wu, sw) of nb blocks:
//
//	for a < m, l < 16:
//		t[16a+l] = Σ_b float32(corr[b·np+i+a] + Σ_{j<16, u<4}
//		               int32(wu[(16b+j)·64+4l+u])·int32(int8(xq[(i+a)·64nb+64b+4j+u])))
//		           · (sw[16b+l]·sx[b·np+i+a])
func q8TileGeneric(t *[q8TileRows * 16]float32, acts *q8Acts, i, m int, wu []byte, sw []float32, nb int) {
	C, np := nb*nf4Block, acts.np
	for a := range m {
		var f [16]float32
		xq := acts.xq[(i+a)*C:]
		for b := range nb {
			var d [16]int32
			for l := range d {
				d[l] = acts.corr[b*np+i+a]
			}
			for j := range 16 {
				x := xq[b*nf4Block+4*j:]
				w := wu[(16*b+j)*64:]
				for l := range 16 {
					for u := range 4 {
						d[l] += int32(w[4*l+u]) * int32(int8(x[u]))
					}
				}
			}
			s := acts.sx[b*np+i+a]
			for l := range f {
				f[l] += float32(d[l]) * (sw[16*b+l] * s)
			}
		}
		copy(t[16*a:16*a+16], f[:])
	}
}

// q8Buf is the scratch of the int8 path.
type q8Buf struct {
	acts q8Acts
	wu   []byte
	t    [q8TileRows * 16]float32
}

var q8Pool = sync.Pool{New: func() any { return new(q8Buf) }}

// grow sizes acts for np rows of cols values.
func (acts *q8Acts) grow(np, cols int) {
	nq, ns := np*cols, np*cols/nf4Block
	if cap(acts.xq) < nq {
		acts.xq = make([]byte, nq)
	}
	if cap(acts.sx) < ns {
		acts.sx, acts.corr = make([]float32, ns), make([]int32, ns)
	}
	acts.xq, acts.sx, acts.corr, acts.np = acts.xq[:nq], acts.sx[:ns], acts.corr[:ns], np
}

// SetInt8Prefill makes MulT with four or more activation rows (prefill
// and decoding batches; see SetInt8Decode for fewer) use int8 activations
// and integer dot products where the CPU has AVX512-VNNI: 3-4 times the
// float32 speed. Results then differ from the exact
// bitsandbytes product within the bound noted at the top of q8.go: about
// 1% relative RMS on random data, mostly because NF4 codes are not
// multiples of 1/127. MulGrad stays exact. The matrix keeps its block
// scales as float32 while on (4 more bytes per 64 weights, counted in
// Bytes). It has no effect where cols is not a multiple of 64 or the code
// table is not NF4. Set it before the matrix is shared: it is not
// synchronised.
func (q *NF4) SetInt8Prefill(on bool) {
	q.int8, q.q8sw = on, nil
	if on && q.cols%nf4Block == 0 && q.code == &nf4Code && kern.q8Tile != nil {
		q.q8sw = q.q8Scales()
	}
}

func (q *NF4) useQ8(n int) bool {
	return q.int8 && n >= q8MinBatch && q.q8sw != nil && kern.q8Tile != nil
}

// mulQ8 is MulT through the int8 tile kernels: the activations are
// quantized once, then the workers claim shares of weight panels, widen
// each panel once and run it against all activation rows.
func (q *NF4) mulQ8(p *par.Pool, y, x []float32, n int) {
	buf := q8Pool.Get().(*q8Buf)
	defer q8Pool.Put(buf)
	np := (n + 3) &^ 3
	buf.acts.grow(np, q.cols)
	j := getJob(jobQ8, q, y, x, n)
	j.q8 = &buf.acts
	if np*q.cols < q8ShareActs {
		q.q8ActsRange(&buf.acts, x, n, 0, np)
	} else {
		j.kind = jobQ8Acts
		p.For(np, max(1, minRowWork/q.cols), j.run)
		j.kind = jobQ8
	}
	panels := (q.rows + q8Panel - 1) / q8Panel
	per := max(1, panels/(p.Workers()*sharesPerWorker))
	j.runShared(p, q.rows, per*q8Panel)
}

// q8ActsRange quantizes activation rows [lo, hi) into acts; rows from n on
// are the zero padding of the last tile.
func (q *NF4) q8ActsRange(acts *q8Acts, x []float32, n, lo, hi int) {
	C := q.cols
	for a := lo; a < hi; a++ {
		if a < n {
			kern.q8Quant(acts, a, x[a*C:(a+1)*C])
		} else {
			acts.zero(a, C)
		}
	}
}

// q8Range is one worker's share of mulQ8: weight rows [lo, hi).
func (q *NF4) q8Range(y []float32, acts *q8Acts, n, lo, hi int) {
	R, nb := q.rows, q.cols/nf4Block
	w := q8Pool.Get().(*q8Buf)
	defer q8Pool.Put(w)
	if cap(w.wu) < nb*1024 {
		w.wu = make([]byte, nb*1024)
	}
	wu := w.wu[:nb*1024]
	for r0 := lo; r0 < hi; r0 += q8Panel {
		r1 := min(hi, r0+q8Panel)
		sw := q.panelQ8(wu, r0, r1)
		for i := 0; i < n; {
			m := q8TileRows
			if acts.np-i < q8TileRows {
				m = 4
			}
			kern.q8Tile(&w.t, acts, i, m, wu, sw, nb)
			for a := 0; a < m && i+a < n; a++ {
				copy(y[(i+a)*R+r0:(i+a)*R+r1], w.t[16*a:])
			}
			i += m
		}
	}
}
