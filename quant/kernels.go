package quant

// kernelSet is one implementation of every inner loop. The Go versions
// (genericKernels) are the specification; assembly versions must match them
// up to float32 summation order.
type kernelSet struct {
	name string

	// nf4Dot returns Σ w[k]·x[k] over the len(q) whole 64-blocks in p
	// (32 bytes each), all in one 256-block group with scale a2.
	nf4Dot func(p []byte, q []uint8, x []float32, code *[16]float32, dyn *[256]float32, a2, off float32) float32
	// nf4Rows sets y[i] = Σ_k w[i·64·nb+k]·x[k] for i < len(y): len(y)
	// consecutive runs of nb whole 64-blocks each (weight rows that start on
	// a block boundary), with xq = quadX(x). Block j of p has global index
	// b0+j and second-level scale a2[(b0+j)/256]. nil where a set has no
	// such kernel.
	nf4Rows func(y []float32, p []byte, q []uint8, a2 []float32, b0, nb int, xq []float32, code *[16]float32, dyn *[256]float32, off float32)
	// nf4Rows2 is nf4Rows for two activation rows, x0 into y0 and x1 into
	// y1, decoding each block once; nil where a set has none.
	nf4Rows2 func(y0, y1 []float32, p []byte, q []uint8, a2 []float32, b0, nb int, x0, x1 []float32, code *[16]float32, dyn *[256]float32, off float32)
	// nf4Rows4 is nf4Rows for four activation rows, xq[a·64·nb:] into
	// y[a·ldy:] for a < 4 (len(y)-3·ldy weight rows), decoding each block
	// once; nil where a set has none.
	nf4Rows4 func(y []float32, ldy int, p []byte, q []uint8, a2 []float32, b0, nb int, xq []float32, code *[16]float32, dyn *[256]float32, off float32)
	// nf4RowsQ8 is nf4Rows for activations encoded by encodeActsQ8 (the
	// int8 decoding path, q8dec.go); nil where the CPU has no VNNI or
	// no VBMI.
	// encodeActsQ8 is encodeActsQ8Generic.
	nf4RowsQ8    func(y []float32, p []byte, q []uint8, a2 []float32, b0, nb int, xa []uint32, dyn *[256]float32, off float32)
	encodeActsQ8 func(xa []uint32, x []float32)
	// nf4Rows2Q8 is nf4RowsQ8 for two activation rows, x0 into y0 and x1
	// into y1, unpacking each block once; nil where a set has none.
	nf4Rows2Q8 func(y0, y1 []float32, p []byte, q []uint8, a2 []float32, b0, nb int, x0, x1 []uint32, dyn *[256]float32, off float32)
	// nf4Decode writes the len(q) whole 64-blocks in p, dequantized, to dst.
	nf4Decode func(dst []float32, p []byte, q []uint8, code *[16]float32, dyn *[256]float32, a2, off float32)

	bf16Dot    func(w []uint16, x []float32) float32
	bf16Decode func(dst []float32, w []uint16)
	// bf16Dot2 sets out[a] = bf16Dot(w, x[a*ldx:]) for a < 2, widening
	// each weight once; nil where a set has none.
	bf16Dot2  func(w []uint16, x []float32, ldx int, out *[2]float32)
	f16Dot    func(w []uint16, x []float32) float32
	f16Decode func(dst []float32, w []uint16)

	// acc4x64 adds, for a < 4 and c < 64,
	// dx[a·ldx+c] += Σ_{r<R} dy[a·ldy+r]·w[r·ldw+c].
	acc4x64 func(dx []float32, ldx int, dy []float32, ldy int, w []float32, ldw int, R int)

	// q8Tile is the int8 tile kernel of the batched path (q8.go): m (4
	// or 8) rows of acts from row i against one widened panel of nb
	// blocks; nil where the CPU has no VNNI.
	q8Tile func(t *[q8TileRows * 16]float32, acts *q8Acts, i, m int, wu []byte, sw []float32, nb int)
	// q8Widen is q8WidenGeneric and q8Quant is q8Acts.quantize, the
	// weight and activation sides of the int8 batched path.
	q8Widen func(wu, p []byte, rows, nb int)
	q8Quant func(acts *q8Acts, a int, x []float32)

	// dot4x4 sets t[4a+b] = Σ_{k<K} x[a·ldx+k]·w[b·ldw+k] for a, b < 4.
	dot4x4 func(t *[16]float32, x []float32, ldx int, w []float32, ldw int, K int)
}

// kern is the kernel set in use, chosen once from the CPU features.
var kern = bestKernels()

var genericKernels = kernelSet{
	name:         "generic",
	nf4Dot:       nf4DotGeneric,
	nf4Decode:    nf4DecodeGeneric,
	encodeActsQ8: encodeActsQ8Generic,
	q8Widen:      q8WidenGeneric,
	q8Quant:      (*q8Acts).quantize,
	bf16Dot:      bf16DotGeneric,
	bf16Decode:   bf16DecodeGeneric,
	f16Dot:       f16DotGeneric,
	f16Decode:    f16DecodeGeneric,
	dot4x4:       dot4x4Generic,
	acc4x64:      acc4x64Generic,
}

// nf4BlockTable returns the 16 dequantized values of a block whose scale
// code is qb: code[c]·(float32(dyn[qb]·a2) + off), as bitsandbytes rounds.
func nf4BlockTable(t *[16]float32, code *[16]float32, dyn *[256]float32, qb uint8, a2, off float32) {
	s := float32(dyn[qb]*a2) + off
	for c := range t {
		t[c] = code[c] * s
	}
}

// nf4DotGeneric is the loop the assembly nf4Dot kernels implement:
//
//	for j, qb := range q {
//		nf4BlockTable(&t, code, dyn, qb, a2, off)
//		for k, b := range p[32*j : 32*j+32] {
//			sum += t[b>>4]*x[64*j+2*k] + t[b&15]*x[64*j+2*k+1]
//		}
//	}
func nf4DotGeneric(p []byte, q []uint8, x []float32, code *[16]float32, dyn *[256]float32, a2, off float32) float32 {
	var t [16]float32
	var sum float32
	for j, qb := range q {
		nf4BlockTable(&t, code, dyn, qb, a2, off)
		xb := x[64*j : 64*j+64]
		for k, b := range p[32*j : 32*j+32] {
			sum += t[b>>4]*xb[2*k] + t[b&15]*xb[2*k+1]
		}
	}
	return sum
}

// quadPerm[s] is the element of each group of four that quad order puts
// in the s-th quarter of a block.
var quadPerm = [4]int{1, 0, 3, 2}

// quadX writes x in quad order: within each 64-value block, quarter s
// holds elements 4i+quadPerm[s] for i < 16. Two packed bytes hold elements
// 4i..4i+3 as nibbles hi0, lo0, hi1, lo1; widened to a 32-bit lane, bits
// 0-3, 4-7, 8-11 and 12-15 are elements 4i+1, 4i, 4i+3 and 4i+2, so in this
// order a kernel needs one widening and three shifts per block and no byte
// shuffles. len(x) must be a multiple of 64.
func quadX(xq, x []float32) {
	e0, e1, e2, e3 := quadPerm[0], quadPerm[1], quadPerm[2], quadPerm[3]
	for b := 0; b+nf4Block <= len(x); b += nf4Block {
		src, dst := (*[nf4Block]float32)(x[b:]), (*[nf4Block]float32)(xq[b:])
		for i := range 16 {
			dst[i], dst[16+i], dst[32+i], dst[48+i] = src[4*i+e0], src[4*i+e1], src[4*i+e2], src[4*i+e3]
		}
	}
}

// nf4DecodeGeneric is the loop the assembly nf4Decode kernels implement:
//
//	for j, qb := range q {
//		nf4BlockTable(&t, code, dyn, qb, a2, off)
//		for k, b := range p[32*j : 32*j+32] {
//			dst[64*j+2*k], dst[64*j+2*k+1] = t[b>>4], t[b&15]
//		}
//	}
func nf4DecodeGeneric(dst []float32, p []byte, q []uint8, code *[16]float32, dyn *[256]float32, a2, off float32) {
	var t [16]float32
	for j, qb := range q {
		nf4BlockTable(&t, code, dyn, qb, a2, off)
		d := dst[64*j : 64*j+64]
		for k, b := range p[32*j : 32*j+32] {
			d[2*k], d[2*k+1] = t[b>>4], t[b&15]
		}
	}
}

// bf16DotGeneric: for k := range w { sum += bf16ToF32(w[k]) * x[k] }.
func bf16DotGeneric(w []uint16, x []float32) float32 {
	var sum float32
	x = x[:len(w)]
	for k, h := range w {
		sum += bf16ToF32(h) * x[k]
	}
	return sum
}

// bf16DecodeGeneric: for k := range w { dst[k] = bf16ToF32(w[k]) }.
func bf16DecodeGeneric(dst []float32, w []uint16) {
	dst = dst[:len(w)]
	for k, h := range w {
		dst[k] = bf16ToF32(h)
	}
}

// f16DotGeneric: for k := range w { sum += f16ToF32(w[k]) * x[k] }.
func f16DotGeneric(w []uint16, x []float32) float32 {
	var sum float32
	x = x[:len(w)]
	for k, h := range w {
		sum += f16ToF32(h) * x[k]
	}
	return sum
}

// f16DecodeGeneric: for k := range w { dst[k] = f16ToF32(w[k]) }.
func f16DecodeGeneric(dst []float32, w []uint16) {
	dst = dst[:len(w)]
	for k, h := range w {
		dst[k] = f16ToF32(h)
	}
}

// dot4x4Generic is the loop the assembly dot4x4 kernels implement:
//
//	for a := range 4 {
//		for b := range 4 {
//			for k := range K {
//				t[4*a+b] += x[a*ldx+k] * w[b*ldw+k]
//			}
//		}
//	}
//
// with t zeroed first.
func dot4x4Generic(t *[16]float32, x []float32, ldx int, w []float32, ldw int, K int) {
	_ = x[3*ldx+K-1]
	_ = w[3*ldw+K-1]
	for a := range 4 {
		xa := x[a*ldx : a*ldx+K]
		for b := range 4 {
			wb := w[b*ldw : b*ldw+K]
			var s float32
			for k, v := range xa {
				s += v * wb[k]
			}
			t[4*a+b] = s
		}
	}
}

// acc4x64Generic is the loop the assembly acc4x64 kernels implement:
//
//	for r := range R {
//		for a := range 4 {
//			for c := range 64 {
//				dx[a*ldx+c] += dy[a*ldy+r] * w[r*ldw+c]
//			}
//		}
//	}
func acc4x64Generic(dx []float32, ldx int, dy []float32, ldy int, w []float32, ldw int, R int) {
	_ = dx[3*ldx+63]
	for r := range R {
		wr := w[r*ldw : r*ldw+64]
		for a := range 4 {
			d := dy[a*ldy+r]
			dxa := dx[a*ldx : a*ldx+64]
			for c, v := range wr {
				dxa[c] += d * v
			}
		}
	}
}
