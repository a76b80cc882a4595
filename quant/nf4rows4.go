package quant

// Decode batches of 4 to maxQuadRows activation rows go through nf4Rows4
// (four rows per call, then nf4Rows2 and nf4Rows for the rest) where the
// four rows of x fit in L1 beside the weights (cols ≤ maxQuadCols). Both
// paths spend the same FMAs; the row kernels decode every block once per
// four rows where the panel path widens it once per call, so the panel
// path wins from about twelve rows on, and on wide rows, where the row
// kernels read x from L2 (BenchmarkNF4MulTRows).
const (
	maxQuadRows = 8
	maxQuadCols = 2048
)

// quadRows reports whether MulT of n activation rows goes through the
// quad-order row kernels: rows that start on block boundaries, and up to
// three activation rows, or a decode batch in float32 where the set has
// nf4Rows4 (the int8 decoding kernels take three at most).
func (q *NF4) quadRows(n int) bool {
	if q.cols%nf4Block != 0 || kern.nf4Rows == nil {
		return false
	}
	return n <= 3 || n <= maxQuadRows && q.cols <= maxQuadCols && kern.nf4Rows4 != nil && !q.useQ8Decode()
}
