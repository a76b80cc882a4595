package quant

import "github.com/loraplex/loraplex/quant/par"

// Matrix is a read-only weight matrix W of Rows()×Cols() (a Linear layer's
// [out, in] weight, or an embedding table [vocab, hidden]) in some storage
// format. Every format (F32, BF16, F16, NF4) implements it, so the model code
// never knows how its weights are stored. Implementations split work over p.
type Matrix interface {
	Rows() int // output features (or vocabulary size for an embedding table)
	Cols() int // input features (or hidden size)

	// MulT computes y = x·Wᵀ for n activation rows: x is n×Cols, y is n×Rows,
	// both row-major. y is overwritten.
	MulT(p *par.Pool, y, x []float32, n int)

	// MulGrad accumulates the input gradient of MulT: dx += dy·W, with dy
	// n×Rows and dx n×Cols. The trainer uses it to back-propagate through a
	// frozen weight.
	MulGrad(p *par.Pool, dx, dy []float32, n int)

	// Row writes row r of W, widened to float32, into dst[:Cols()]
	// (embedding lookup).
	Row(dst []float32, r int)

	// Bytes is the resident size of the weight data in bytes.
	Bytes() int64
}
