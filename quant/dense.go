package quant

import (
	"fmt"
	"math"

	"github.com/loraplex/loraplex/quant/par"
	"github.com/loraplex/loraplex/quant/vec"
)

// F32 is a float32 matrix sharing the caller's slice.
type F32 struct {
	rows, cols int
	w          []float32
}

// NewF32 wraps a row-major rows×cols weight without copying it.
func NewF32(rows, cols int, w []float32) Matrix {
	checkLen("NewF32", rows, cols, len(w))
	return &F32{rows: rows, cols: cols, w: w[:rows*cols]}
}

// BF16 is a bfloat16 matrix (raw bits) sharing the caller's slice, which may
// be a read-only memory mapping: it is never written.
type BF16 struct {
	rows, cols int
	w          []uint16
}

// NewBF16 wraps row-major bfloat16 bits without copying them.
func NewBF16(rows, cols int, w []uint16) Matrix {
	checkLen("NewBF16", rows, cols, len(w))
	return &BF16{rows: rows, cols: cols, w: w[:rows*cols]}
}

// F16 is an IEEE half-precision matrix (raw bits) sharing the caller's slice,
// which may be a read-only memory mapping: it is never written.
type F16 struct {
	rows, cols int
	w          []uint16
}

// NewF16 wraps row-major float16 bits without copying them.
func NewF16(rows, cols int, w []uint16) Matrix {
	checkLen("NewF16", rows, cols, len(w))
	return &F16{rows: rows, cols: cols, w: w[:rows*cols]}
}

func checkLen(fn string, rows, cols, n int) {
	if rows < 0 || cols < 0 || n < rows*cols {
		panic(fmt.Sprintf("quant: %s(%d, %d) needs %d values, got %d", fn, rows, cols, rows*cols, n))
	}
}

func (m *F32) Rows() int    { return m.rows }
func (m *F32) Cols() int    { return m.cols }
func (m *F32) Bytes() int64 { return int64(len(m.w)) * 4 }
func (m *F32) dot(r int, x []float32) float32 {
	return vec.Dot(m.w[r*m.cols:(r+1)*m.cols], x[:m.cols])
}
func (m *F32) decode(dst []float32, r, c0, c1 int) { copy(dst[:c1-c0], m.w[r*m.cols+c0:r*m.cols+c1]) }
func (m *F32) view(r0, r1 int) []float32           { return m.w[r0*m.cols : r1*m.cols] }
func (m *F32) Row(dst []float32, r int)            { m.decode(dst, r, 0, m.cols) }
func (m *F32) MulT(p *par.Pool, y, x []float32, n int) {
	mulT(m, p, y, x, n)
}
func (m *F32) MulGrad(p *par.Pool, dx, dy []float32, n int) { mulGrad(m, p, dx, dy, n) }

func (m *BF16) Rows() int    { return m.rows }
func (m *BF16) Cols() int    { return m.cols }
func (m *BF16) Bytes() int64 { return int64(len(m.w)) * 2 }
func (m *BF16) dot(r int, x []float32) float32 {
	return kern.bf16Dot(m.w[r*m.cols:(r+1)*m.cols], x[:m.cols])
}
func (m *BF16) decode(dst []float32, r, c0, c1 int) {
	kern.bf16Decode(dst[:c1-c0], m.w[r*m.cols+c0:r*m.cols+c1])
}
func (m *BF16) Row(dst []float32, r int)                     { m.decode(dst, r, 0, m.cols) }
func (m *BF16) MulT(p *par.Pool, y, x []float32, n int)      { mulT(m, p, y, x, n) }
func (m *BF16) MulGrad(p *par.Pool, dx, dy []float32, n int) { mulGrad(m, p, dx, dy, n) }

func (m *F16) Rows() int    { return m.rows }
func (m *F16) Cols() int    { return m.cols }
func (m *F16) Bytes() int64 { return int64(len(m.w)) * 2 }
func (m *F16) dot(r int, x []float32) float32 {
	return kern.f16Dot(m.w[r*m.cols:(r+1)*m.cols], x[:m.cols])
}
func (m *F16) decode(dst []float32, r, c0, c1 int) {
	kern.f16Decode(dst[:c1-c0], m.w[r*m.cols+c0:r*m.cols+c1])
}
func (m *F16) Row(dst []float32, r int)                     { m.decode(dst, r, 0, m.cols) }
func (m *F16) MulT(p *par.Pool, y, x []float32, n int)      { mulT(m, p, y, x, n) }
func (m *F16) MulGrad(p *par.Pool, dx, dy []float32, n int) { mulGrad(m, p, dx, dy, n) }

// bf16ToF32 widens bfloat16 bits exactly.
func bf16ToF32(h uint16) float32 { return math.Float32frombits(uint32(h) << 16) }

// f16ToF32 widens IEEE half-precision bits exactly (subnormals, infinities
// and NaN included).
func f16ToF32(h uint16) float32 {
	sign := uint32(h>>15) << 31
	exp := uint32(h>>10) & 0x1f
	mant := uint32(h) & 0x3ff
	switch {
	case exp == 0x1f:
		return math.Float32frombits(sign | 0x7f800000 | mant<<13)
	case exp == 0:
		v := float32(mant) * (1.0 / (1 << 24)) // subnormal: mant·2^-24, exact
		return math.Float32frombits(math.Float32bits(v) | sign)
	default:
		return math.Float32frombits(sign | (exp+112)<<23 | mant<<13)
	}
}
