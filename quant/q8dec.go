package quant

import (
	"math"
	"sync"

	"github.com/loraplex/loraplex/quant/par"
)

// The int8 decoding path (opt-in per matrix with SetInt8Decode) serves MulT
// with one to three activation rows. Float32 decoding spends ~13 vector
// operations per 64 weights on nibble lookups and multiply-adds, which caps
// a core below what memory can deliver; int8 needs ~4.5. Each 64-value
// block of an activation row is rounded to int8 with its own scale
// amax/127, as in the prefill path (q8.go), and each NF4 code becomes the
// offset int8 weight round(127·code)+128 through a byte permutation, reading
// the packed nibbles in place.
//
// Activations are encoded in pairs of blocks matching a 64-byte load of
// packed codes, 64 words per pair (q8PairWords):
//
//	words  0-15: bytes k of the pair's even elements 2k (high nibbles)
//	words 16-31: bytes k of the odd elements 2k+1 (low nibbles)
//	words 32-47: int32 -16·Σc over the int8 codes c of the lane's block;
//	             its 8 lanes add up to -128·Σc, which cancels the +128
//	             weight offset exactly
//	words 48-63: float32 amax/127/127 of the lane's block
//
// so lanes 0-7 of every 16-lane vector belong to the pair's first block
// and 8-15 to its second. A lone last block has a zero second half.
// The error bound is the prefill path's (TestInt8Bound).

// q8PairWords is the size of one encoded pair of activation blocks.
const q8PairWords = 64

// q8DecWords is the encoded size of an activation row of cols values.
func q8DecWords(cols int) int { return (cols/nf4Block + 1) / 2 * q8PairWords }

// nf4U8 holds the offset int8 weight of each NF4 code, round(127·code)+128.
var nf4U8 = func() (u [16]byte) {
	for c, v := range nf4Code {
		u[c] = byte(int32(math.RoundToEven(float64(v)*127)) + 128)
	}
	return u
}()

// SetInt8Decode makes MulT with one to three activation rows (decoding)
// use int8 activations and integer dot products where the CPU has
// AVX512-VNNI and VBMI, which lets batch-1 decoding run near memory speed.
// Results then differ from the exact bitsandbytes product within the same bound as
// SetInt8Prefill's (see q8.go): about 1% relative RMS on random data. It
// has no effect where cols is not a multiple of 64 or the code table is not
// NF4. Set it before the matrix is shared: it is not synchronised.
func (q *NF4) SetInt8Decode(on bool) { q.int8Dec = on }

func (q *NF4) useQ8Decode() bool {
	return q.int8Dec && q.cols%nf4Block == 0 && q.code == &nf4Code && kern.nf4RowsQ8 != nil
}

var wordPool = sync.Pool{New: func() any { return new([]uint32) }}

// mulQ8Decode is MulT for n ≤ 3 rows through the int8 row kernel: the
// activations are encoded once, then the workers share the weight rows.
func (q *NF4) mulQ8Decode(p *par.Pool, y, x []float32, n int) {
	W := q8DecWords(q.cols)
	buf := wordPool.Get().(*[]uint32)
	defer wordPool.Put(buf)
	if cap(*buf) < n*W {
		*buf = make([]uint32, n*W)
	}
	xa := (*buf)[:n*W]
	for i := range n {
		kern.encodeActsQ8(xa[i*W:(i+1)*W], x[i*q.cols:(i+1)*q.cols])
	}
	j := getJob(jobQuadQ8, q, y, nil, n)
	j.xa = xa
	j.runShared(p, q.rows, shareRows(p, q.rows, q.cols, n))
}

// rowsQ8 sets y[i·Rows+r] for i < n and r in [lo, hi) from the encoded
// activations xa (q8DecWords(cols) words per row).
func (q *NF4) rowsQ8(y []float32, xa []uint32, n, lo, hi int) {
	R, W, nb := q.rows, q8DecWords(q.cols), q.cols/nf4Block
	p, qa, b0 := q.packed[lo*nb*32:hi*nb*32], q.qabs[lo*nb:hi*nb], lo*nb
	i := 0
	for ; i+2 <= n && kern.nf4Rows2Q8 != nil; i += 2 {
		kern.nf4Rows2Q8(y[i*R+lo:i*R+hi], y[(i+1)*R+lo:(i+1)*R+hi], p, qa, q.absmax2, b0, nb,
			xa[i*W:(i+1)*W], xa[(i+1)*W:(i+2)*W], q.dyn, q.offset)
	}
	for ; i < n; i++ {
		kern.nf4RowsQ8(y[i*R+lo:i*R+hi], p, qa, q.absmax2, b0, nb, xa[i*W:(i+1)*W], q.dyn, q.offset)
	}
}

// encodeActsQ8Generic writes row x (len a multiple of 64) to xa in the
// pair encoding described above: each group of 8 elements fills one word of
// even and one word of odd elements.
func encodeActsQ8Generic(xa []uint32, x []float32) {
	clear(xa)
	for b := 0; b*nf4Block < len(x); b++ {
		blk := (*[nf4Block]float32)(x[b*nf4Block:])
		var amax float32
		for _, v := range blk {
			amax = max(amax, abs32(v))
		}
		if amax == 0 {
			continue
		}
		pair, h := (*[q8PairWords]uint32)(xa[b/2*q8PairWords:]), b%2
		inv := 127 / amax
		var sum int32
		for j := range 8 {
			var c [8]int32
			for u, v := range blk[8*j : 8*j+8] {
				c[u] = roundI8(v * inv)
				sum += c[u]
			}
			pair[8*h+j] = pack4(c[0], c[2], c[4], c[6])
			pair[16+8*h+j] = pack4(c[1], c[3], c[5], c[7])
		}
		for l := 8 * h; l < 8*h+8; l++ {
			pair[32+l] = uint32(-16 * sum)
			pair[48+l] = math.Float32bits(amax / 127 / 127)
		}
	}
}

// roundI8 rounds v (|v| ≤ 127 up to rounding) half to even and clamps it
// to ±127: adding 1.5·2²³ leaves the integer in the low mantissa bits.
func roundI8(v float32) int32 {
	const magic = 0x1.8p23
	r := int32(float32(v+magic)) - int32(magic)
	return max(-127, min(127, r))
}

// pack4 packs four int8 values into a little-endian word.
func pack4(a, b, c, d int32) uint32 {
	return uint32(uint8(a)) | uint32(uint8(b))<<8 | uint32(uint8(c))<<16 | uint32(uint8(d))<<24
}
