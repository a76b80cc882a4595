package quant

import (
	"math"
	"sync"
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
	var u [16]uint32
	for c, v := range nf4Code {
		u[c] = uint32(int32(math.RoundToEven(float64(v)*127)) + 128)
	}
	t := new([1 << 16]uint32)
	for i := range t {
		b0, b1 := i&0xff, i>>8
		t[i] = u[b0>>4] | u[b0&15]<<8 | u[b1>>4]<<16 | u[b1&15]<<24
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
			v := t[uint16(p[2*j])|uint16(p[2*j+1])<<8]
			wu[base+j*64], wu[base+j*64+1], wu[base+j*64+2], wu[base+j*64+3] = byte(v), byte(v>>8), byte(v>>16), byte(v>>24)
		}
	}
	// Padding blocks hold offset zeros; their sw is 0, so they add nothing.
	for b := nb; b < q8Groups(q.cols)*16; b++ {
		base := b/16*q8Group + b%16*4
		for j := range 16 {
			wu[base+j*64], wu[base+j*64+1], wu[base+j*64+2], wu[base+j*64+3] = 128, 128, 128, 128
		}
	}
}

// q8Tile4x4Generic is the loop the assembly q8Tile4x4 kernels implement:
// for a, b < 4, over groups g and lanes l,
//
//	d := Σ_{j<16, t<4} int32(wu[b*ldw + g*1024 + j*64 + 4*l + t]) *
//	                   int32(int8(xq[a*ldx + g*1024 + j*64 + 4*l + t]))
//	f[(4a+b)*16 + l] += float32(d - corr[a*lds + 16g + l]) *
//	                    (sx[a*lds + 16g + l] * sw[b*ldsw + 16g + l])
func q8Tile4x4Generic(f *[256]float32, xq []byte, ldx int, wu []byte, ldw int, sx []float32, corr []int32, lds int, sw []float32, ldsw int, groups int) {
	for a := range 4 {
		for b := range 4 {
			for g := range groups {
				for l := range 16 {
					var d int32
					for j := range 16 {
						o := g*q8Group + j*64 + 4*l
						for t := range 4 {
							d += int32(wu[b*ldw+o+t]) * int32(int8(xq[a*ldx+o+t]))
						}
					}
					s := a*lds + 16*g + l
					f[(4*a+b)*16+l] += float32(d-corr[s]) * (sx[s] * sw[b*ldsw+16*g+l])
				}
			}
		}
	}
}
