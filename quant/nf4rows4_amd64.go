//go:build !noasm

package quant

// nf4Rows4AVX512 implements nf4Rows4 (see kernelSet): nf4RowsAVX512 for
// the four activation rows xq[a·64·nb:] into y[a·ldy:] (a < 4), decoding
// each block once. The caller checks the lengths (nf4Rows4Checked).
//
//go:noescape
func nf4Rows4AVX512(y []float32, ldy, rows int, p []byte, q []uint8, a2 []float32, b0, nb int, xq []float32, code *[16]float32, dyn *[256]float32, off float32, t *[256]float32)

func nf4Rows4Checked(y []float32, ldy int, p []byte, q []uint8, a2 []float32, b0, nb int, xq []float32, code *[16]float32, dyn *[256]float32, off float32) {
	rows := len(y) - 3*ldy
	if rows < 0 || ldy < rows {
		panic("quant: nf4Rows4 needs four output rows of ldy ≥ rows")
	}
	if !checkRows(y[:rows], p, q, a2, b0, nb) {
		for a := 1; a < 4; a++ {
			clear(y[a*ldy : a*ldy+rows])
		}
		return
	}
	_ = xq[4*nb*nf4Block-1]
	var t [256]float32
	nf4Rows4AVX512(y, ldy, rows, p, q, a2, b0, nb, xq, code, dyn, off, &t)
}
