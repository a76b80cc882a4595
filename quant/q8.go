package quant

import (
	"encoding/binary"
	"math"
	"sync"

	"github.com/loraplex/loraplex/quant/par"
)

// The int8 path (opt-in per matrix with SetInt8Prefill) multiplies large
// batches (prefill, at least q8MinRows activation rows) with integer dot
// products. Each 64-value block of an activation row is rounded to int8
// with its own scale amax/127; each NF4 code becomes round(127·code), so a
// weight block is int8 codes times the block scale/127. One VPDPBUSD then
// does 64 multiply-adds.
//
// Both sides are stored "group-transposed": 16 consecutive blocks form a
// group of 1024 bytes in which byte j·64 + 4·l + t holds element 4j+t of
// block l. A 32-bit lane of a 64-byte vector thus always belongs to one
// block, integer sums never mix blocks, and a group's 16 block sums are
// scaled with one vector multiply. Weights are stored offset by +128
// (VPDPBUSD multiplies unsigned by signed bytes); corr = 128·Σ xq per
// activation block removes the offset.
//
// Error: |x - x̂| ≤ amax_b(x)/254 and |w - ŵ| ≤ scale_b/254 per element, so
// |y - ŷ| ≤ Σ_k (|x_k|·scale_b + amax_b(x)·|ŵ_k|)/254 (TestInt8Bound).
const (
	q8Group   = 16 * nf4Block // elements per group
	q8MinRows = 16            // below this, decoding batches stay in float32
)

// q8Groups is the number of 16-block groups of a row of cols values.
func q8Groups(cols int) int { return (cols/nf4Block + 15) / 16 }

// q8Pos is where element k of a row lands in the group-transposed layout.
func q8Pos(k int) int {
	g, b, e := k/q8Group, k/nf4Block%16, k%nf4Block
	return g*q8Group + e/4*64 + b*4 + e%4
}

// quantizeActs writes row x (len cols, cols%64 == 0) as int8 in group-
// transposed order to xq (q8Groups·1024 bytes, the padding zeroed), its
// block scales to sx and the offset corrections to corr (q8Groups·16 each).
func quantizeActs(xq []byte, sx []float32, corr []int32, x []float32) {
	clear(xq)
	clear(sx)
	clear(corr)
	for b := 0; b*nf4Block < len(x); b++ {
		blk := x[b*nf4Block : (b+1)*nf4Block]
		var amax float32
		for _, v := range blk {
			amax = max(amax, abs32(v))
		}
		if amax == 0 {
			continue
		}
		sx[b] = amax / 127
		inv := 127 / amax
		var sum int32
		for e, v := range blk {
			c := int32(math.RoundToEven(float64(v * inv)))
			c = max(-127, min(127, c))
			xq[q8Pos(b*nf4Block+e)] = byte(int8(c))
			sum += c
		}
		corr[b] = 128 * sum
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

// rowQ8 writes row r of q (cols%64 == 0) as offset int8 weights in
// group-transposed order to wu and its block scales/127 to sw.
func (q *NF4) rowQ8(wu []byte, sw []float32, r int) {
	t := nf4Q8()
	nb := q.cols / nf4Block
	b0 := r * nb
	clear(sw)
	for b := range nb {
		sw[b] = q.scale(b0+b) / 127
		p := q.packed[(b0+b)*32 : (b0+b)*32+32]
		base := b/16*q8Group + b%16*4
		for j := range 16 {
			binary.LittleEndian.PutUint32(wu[base+j*64:], t[uint16(p[2*j])|uint16(p[2*j+1])<<8])
		}
	}
	// Padding blocks hold offset zeros; their sw is 0, so they add nothing.
	for b := nb; b < q8Groups(q.cols)*16; b++ {
		base := b/16*q8Group + b%16*4
		for j := range 16 {
			binary.LittleEndian.PutUint32(wu[base+j*64:], 0x80808080)
		}
	}
}

// q8Tile4x4Generic is the loop the assembly q8Tile4x4 kernels implement.
// Rows are ld = groups·1024 bytes (xq, wu) and ls = groups·16 values (sx,
// corr, sw) apart. With f zeroed first, for a, b < 4, groups g, lanes l:
//
//	d := Σ_{j<16, u<4} int32(wu[b*ld + g*1024 + j*64 + 4*l + u]) *
//	                   int32(int8(xq[a*ld + g*1024 + j*64 + 4*l + u]))
//	f[(4a+b)*16 + l] += float32(d - corr[a*ls + 16g + l]) *
//	                    (sx[a*ls + 16g + l] * sw[b*ls + 16g + l])
//
// and then t[4a+b] = Σ_l f[(4a+b)*16 + l].
func q8Tile4x4Generic(t *[16]float32, f *[256]float32, xq, wu []byte, sx []float32, corr []int32, sw []float32, groups int) {
	*f = [256]float32{}
	ld, ls := groups*q8Group, groups*16
	for a := range 4 {
		for b := range 4 {
			for g := range groups {
				for l := range 16 {
					var d int32
					for j := range 16 {
						o := g*q8Group + j*64 + 4*l
						for t := range 4 {
							d += int32(wu[b*ld+o+t]) * int32(int8(xq[a*ld+o+t]))
						}
					}
					sa, sb := a*ls+16*g+l, b*ls+16*g+l
					f[(4*a+b)*16+l] += float32(d-corr[sa]) * (sx[sa] * sw[sb])
				}
			}
		}
	}
	for i := range t {
		var s float32
		for _, v := range f[i*16 : i*16+16] {
			s += v
		}
		t[i] = s
	}
}

// q8Buf is the scratch of the int8 path: quantized rows, their block
// scales and corrections, and the tile accumulator.
type q8Buf struct {
	q    []byte
	s    []float32
	corr []int32
	f    [256]float32
	t    [16]float32
}

var q8Pool = sync.Pool{New: func() any { return new(q8Buf) }}

func getQ8(rows, groups int) *q8Buf {
	b := q8Pool.Get().(*q8Buf)
	nq, ns := rows*groups*q8Group, rows*groups*16
	if cap(b.q) < nq {
		b.q = make([]byte, nq)
	}
	if cap(b.s) < ns {
		b.s, b.corr = make([]float32, ns), make([]int32, ns)
	}
	b.q, b.s, b.corr = b.q[:nq], b.s[:ns], b.corr[:ns]
	return b
}

// SetInt8Prefill makes MulT with at least 16 activation rows use int8
// activations and integer dot products where the CPU has AVX512-VNNI
// (about twice the float32 speed at 128 rows). Results then differ from the
// exact bitsandbytes product within the bound noted at the top of q8.go:
// about 1% relative RMS on random data, mostly because NF4 codes are not
// multiples of 1/127. Decoding (fewer rows; see SetInt8Decode) and MulGrad
// stay exact. It has no effect where cols is not a multiple of 64 or the
// code table is not NF4. Set it before the matrix is shared: it is not
// synchronised.
func (q *NF4) SetInt8Prefill(on bool) { q.int8 = on }

func (q *NF4) useQ8(n int) bool {
	return q.int8 && n >= q8MinRows && q.cols%nf4Block == 0 && q.code == &nf4Code && kern.q8Tile4x4 != nil
}

// mulQ8 is MulT through the int8 kernels: the activations are quantized
// once, then each worker converts panels of 16 weight rows and runs them
// against all activation rows in 4×4 tiles.
func (q *NF4) mulQ8(p *par.Pool, y, x []float32, n int) {
	G := q8Groups(q.cols)
	np := (n + 3) &^ 3
	acts := getQ8(np, G)
	defer q8Pool.Put(acts)
	j := getJob(jobQ8Acts, q, y, x, n)
	j.q8 = acts
	p.For(np, max(1, minRowWork/q.cols), j.run)
	j.kind = jobQ8
	p.For(q.rows, rowGrain(q.cols, n), j.run)
	j.release()
}

// q8Acts quantizes activation rows [lo, hi) into acts; rows from n on are
// the zero padding of the last 4-row tile.
func (q *NF4) q8Acts(acts *q8Buf, x []float32, n, lo, hi int) {
	G := q8Groups(q.cols)
	for i := lo; i < hi; i++ {
		xq, s, corr := acts.q[i*G*q8Group:(i+1)*G*q8Group], acts.s[i*G*16:(i+1)*G*16], acts.corr[i*G*16:(i+1)*G*16]
		if i < n {
			quantizeActs(xq, s, corr, x[i*q.cols:(i+1)*q.cols])
		} else {
			clear(xq)
			clear(s)
			clear(corr)
		}
	}
}

// q8Range is one worker's share of mulQ8: weight rows [lo, hi).
func (q *NF4) q8Range(y []float32, acts *q8Buf, n, lo, hi int) {
	R, G := q.rows, q8Groups(q.cols)
	np := (n + 3) &^ 3
	w := getQ8(panelRows, G)
	defer q8Pool.Put(w)
	ld, ls := G*q8Group, G*16
	for r0 := lo; r0 < hi; r0 += panelRows {
		r1 := min(hi, r0+panelRows)
		for r := r0; r < r1; r++ {
			q.rowQ8(w.q[(r-r0)*ld:(r-r0+1)*ld], w.s[(r-r0)*ls:(r-r0+1)*ls], r)
		}
		// Rows past r1 in the last tile keep whatever finite values the
		// scratch holds; their results are not stored.
		for i := 0; i < np; i += 4 {
			for rb := r0; rb < r1; rb += 4 {
				kern.q8Tile4x4(&w.t, &w.f, acts.q[i*ld:(i+4)*ld], w.q[(rb-r0)*ld:(rb-r0+4)*ld],
					acts.s[i*ls:(i+4)*ls], acts.corr[i*ls:(i+4)*ls], w.s[(rb-r0)*ls:(rb-r0+4)*ls], G)
				for a := 0; a < 4 && i+a < n; a++ {
					for b := 0; b < 4 && rb+b < r1; b++ {
						y[(i+a)*R+rb+b] = w.t[4*a+b]
					}
				}
			}
		}
	}
}
