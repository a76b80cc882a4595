//go:build !noasm

package quant

import "golang.org/x/sys/cpu"

// Assembly kernels; each implements the Go loop of the generic function
// named beside it (see kernels.go).

//go:noescape
func nf4DotAVX512(p []byte, q []uint8, x []float32, code *[16]float32, dyn *[256]float32, a2, off float32) float32 // nf4DotGeneric

// nf4RowsAVX512 implements nf4Rows (see kernelSet): for each row
// i < len(y), y[i] = sum after
//
//	for j := range nb {
//		nf4BlockTable(&t, code, dyn, q[i*nb+j], a2[(b0+i*nb+j)/256], off)
//		for s, e := range quadPerm {
//			for l := range 16 {
//				b := p[(i*nb+j)*32+2*l+e/2]
//				sum += t[b>>(4*(1-e%2))&15] * xq[64*j+16*s+l]
//			}
//		}
//	}
//
// t is scratch for the scales of one second-level group. The caller checks
// the lengths (nf4RowsChecked).
//
//go:noescape
func nf4RowsAVX512(y []float32, p []byte, q []uint8, a2 []float32, b0, nb int, xq []float32, code *[16]float32, dyn *[256]float32, off float32, t *[256]float32)

// nf4Rows2AVX512 is nf4RowsAVX512 for x0 into y0 and x1 into y1, decoding
// each block once.
//
//go:noescape
func nf4Rows2AVX512(y0, y1 []float32, p []byte, q []uint8, a2 []float32, b0, nb int, x0, x1 []float32, code *[16]float32, dyn *[256]float32, off float32, t *[256]float32)

// checkRows panics unless the weight slices hold what an nf4Rows kernel
// reads for len(y) rows; it reports whether there is anything to compute
// (it zeroes y for rows of no blocks). Callers check the activations.
func checkRows(y []float32, p []byte, q []uint8, a2 []float32, b0, nb int) bool {
	rows := len(y)
	if rows == 0 {
		return false
	}
	if nb == 0 {
		clear(y)
		return false
	}
	_, _, _ = p[rows*nb*32-1], q[rows*nb-1], a2[(b0+rows*nb-1)/nestedBlock]
	return true
}

func nf4RowsChecked(y []float32, p []byte, q []uint8, a2 []float32, b0, nb int, xq []float32, code *[16]float32, dyn *[256]float32, off float32) {
	if checkRows(y, p, q, a2, b0, nb) {
		_ = xq[nb*nf4Block-1]
		var t [256]float32
		nf4RowsAVX512(y, p, q, a2, b0, nb, xq, code, dyn, off, &t)
	}
}

func nf4Rows2Checked(y0, y1 []float32, p []byte, q []uint8, a2 []float32, b0, nb int, x0, x1 []float32, code *[16]float32, dyn *[256]float32, off float32) {
	y1, x1 = y1[:len(y0)], x1[:nb*nf4Block]
	if checkRows(y0, p, q, a2, b0, nb) {
		_ = x0[nb*nf4Block-1]
		var t [256]float32
		nf4Rows2AVX512(y0, y1, p, q, a2, b0, nb, x0, x1, code, dyn, off, &t)
	} else {
		clear(y1)
	}
}

// nf4RowsQ8AVX512 implements nf4RowsQ8 with VPDPBUSD (AVX512-VNNI) and
// VPERMB (AVX512-VBMI); u8 is nf4U8. For
// row i, pair P of blocks j = 2P+h (h < 2, j < nb) and lanes l < 8:
//
//	d := xa[64P+32+8h+l]  // as int32
//	for u := range 4 {
//		k := 32h + 4l + u // byte of the pair's packed codes
//		b := p[(i*nb+2P)*32+k]
//		d += int32(u8[b>>4])*int32(int8(byte(xa[64P+k/4]>>(8*u)))) +
//			int32(u8[b&15])*int32(int8(byte(xa[64P+16+k/4]>>(8*u))))
//	}
//	sum += float32(d) * float32frombits(xa[64P+48+8h+l]) * scale(i*nb+j)
//
// with scale(b) = float32(dyn[q[b]]·a2[(b0+b)/256]) + off.
//
//go:noescape
func nf4RowsQ8AVX512(y []float32, p []byte, q []uint8, a2 []float32, b0, nb int, xa []uint32, u8 *[16]byte, dyn *[256]float32, off float32, t *[256]float32)

func nf4RowsQ8Checked(y []float32, p []byte, q []uint8, a2 []float32, b0, nb int, xa []uint32, dyn *[256]float32, off float32) {
	if checkRows(y, p, q, a2, b0, nb) {
		_ = xa[q8DecWords(nb*nf4Block)-1]
		var t [256]float32
		nf4RowsQ8AVX512(y, p, q, a2, b0, nb, xa, &nf4U8, dyn, off, &t)
	}
}

// nf4Rows2Q8AVX512 is nf4RowsQ8AVX512 for x0 into y0 and x1 into y1,
// unpacking each pair of blocks once.
//
//go:noescape
func nf4Rows2Q8AVX512(y0, y1 []float32, p []byte, q []uint8, a2 []float32, b0, nb int, x0, x1 []uint32, u8 *[16]byte, dyn *[256]float32, off float32, t *[256]float32)

func nf4Rows2Q8Checked(y0, y1 []float32, p []byte, q []uint8, a2 []float32, b0, nb int, x0, x1 []uint32, dyn *[256]float32, off float32) {
	W := q8DecWords(nb * nf4Block)
	y1, x1 = y1[:len(y0)], x1[:W]
	if checkRows(y0, p, q, a2, b0, nb) {
		_ = x0[W-1]
		var t [256]float32
		nf4Rows2Q8AVX512(y0, y1, p, q, a2, b0, nb, x0, x1, &nf4U8, dyn, off, &t)
	} else {
		clear(y1)
	}
}

//go:noescape
func encodeActsQ8AVX512(xa []uint32, x []float32) // encodeActsQ8Generic

// encodeActsQ8Checked zeroes the second half of a lone last block's pair,
// which the assembly does not write.
func encodeActsQ8Checked(xa []uint32, x []float32) {
	nb := len(x) / nf4Block
	xa = xa[:q8DecWords(len(x))]
	if nb%2 == 1 {
		last := xa[len(xa)-q8PairWords:]
		for w := 0; w < q8PairWords; w += 16 {
			clear(last[w+8 : w+16])
		}
	}
	encodeActsQ8AVX512(xa, x[:nb*nf4Block])
}

// bf16Dot2AVX512 sets out[a] = bf16DotGeneric(w, x[a*ldx:]) for a < 2,
// widening each weight once.
//
//go:noescape
func bf16Dot2AVX512(w []uint16, x []float32, ldx int, out *[2]float32)

//go:noescape
func nf4DecodeAVX512(dst []float32, p []byte, q []uint8, code *[16]float32, dyn *[256]float32, a2, off float32) // nf4DecodeGeneric

//go:noescape
func nf4DotAVX2(p []byte, q []uint8, x []float32, code *[16]float32, dyn *[256]float32, a2, off float32) float32 // nf4DotGeneric

//go:noescape
func nf4DecodeAVX2(dst []float32, p []byte, q []uint8, code *[16]float32, dyn *[256]float32, a2, off float32) // nf4DecodeGeneric

//go:noescape
func bf16DotAVX512(w []uint16, x []float32) float32 // bf16DotGeneric

//go:noescape
func bf16DecodeAVX512(dst []float32, w []uint16) // bf16DecodeGeneric

//go:noescape
func bf16DotAVX2(w []uint16, x []float32) float32 // bf16DotGeneric

//go:noescape
func bf16DecodeAVX2(dst []float32, w []uint16) // bf16DecodeGeneric

//go:noescape
func f16DotAVX2(w []uint16, x []float32) float32 // f16DotGeneric

//go:noescape
func f16DecodeAVX2(dst []float32, w []uint16) // f16DecodeGeneric

//go:noescape
func dot4x4AVX512(t *[16]float32, x []float32, ldx int, w []float32, ldw int, K int) // dot4x4Generic

// dot2x4AVX2 sets t[4a+b] = Σ_{k<K} x[a·ldx+k]·w[b·ldw+k] for a < 2, b < 4;
// K must be a multiple of 8.
//
//go:noescape
func dot2x4AVX2(t *[8]float32, x []float32, ldx int, w []float32, ldw int, K int)

// dot4x4AVX2 runs the 2×4 kernel on both halves of x over the first K&^7
// columns and finishes the rest in Go. 16 YMM registers hold only eight
// 2×4 accumulators next to the loads.
func dot4x4AVX2(t *[16]float32, x []float32, ldx int, w []float32, ldw int, K int) {
	_ = x[3*ldx+K-1]
	_ = w[3*ldw+K-1]
	k8 := K &^ 7
	dot2x4AVX2((*[8]float32)(t[0:8]), x, ldx, w, ldw, k8)
	dot2x4AVX2((*[8]float32)(t[8:16]), x[2*ldx:], ldx, w, ldw, k8)
	for k := k8; k < K; k++ {
		for a := range 4 {
			for b := range 4 {
				t[4*a+b] += x[a*ldx+k] * w[b*ldw+k]
			}
		}
	}
}

//go:noescape
func acc4x64AVX512(dx []float32, ldx int, dy []float32, ldy int, w []float32, ldw int, R int) // acc4x64Generic

// acc4x16AVX2 is acc4x64Generic for 16 columns: 4×16 accumulators are what
// the 16 YMM registers hold next to the loads.
//
//go:noescape
func acc4x16AVX2(dx []float32, ldx int, dy []float32, ldy int, w []float32, ldw int, R int)

// acc4x64AVX2 runs the 4×16 kernel on the four 16-column quarters.
func acc4x64AVX2(dx []float32, ldx int, dy []float32, ldy int, w []float32, ldw int, R int) {
	_ = dx[3*ldx+63]
	if R > 0 {
		_ = w[(R-1)*ldw+63]
		_ = dy[3*ldy+R-1]
	}
	for c := 0; c < 64; c += 16 {
		acc4x16AVX2(dx[c:], ldx, dy, ldy, w[c:], ldw, R)
	}
}

// q8Tile8VNNI and q8Tile4VNNI implement q8TileGeneric for m = 8 and 4
// with VPDPBUSD (AVX512-VNNI), from row 0 of xq, sx and corr.
//
//go:noescape
func q8Tile8VNNI(t *[q8TileRows * 16]float32, xq *byte, ldx int, sx *float32, corr *int32, np int, wu *byte, sw *float32, nb int)

//go:noescape
func q8Tile4VNNI(t *[q8TileRows * 16]float32, xq *byte, ldx int, sx *float32, corr *int32, np int, wu *byte, sw *float32, nb int)

// q8TileVNNI checks the slice lengths the assembly relies on.
func q8TileVNNI(t *[q8TileRows * 16]float32, acts *q8Acts, i, m int, wu []byte, sw []float32, nb int) {
	if nb <= 0 {
		*t = [q8TileRows * 16]float32{}
		return
	}
	C, np := nb*nf4Block, acts.np
	_, _, _ = acts.xq[(i+m)*C-1], acts.sx[(nb-1)*np+i+m-1], acts.corr[(nb-1)*np+i+m-1]
	_, _ = wu[nb*1024-1], sw[nb*16-1]
	f := q8Tile4VNNI
	if m == 8 {
		f = q8Tile8VNNI
	}
	f(t, &acts.xq[i*C], C, &acts.sx[i], &acts.corr[i], np, &wu[0], &sw[0], nb)
}

//go:noescape
func q8WidenVNNI(wu *byte, p *byte, rb int, nb int, u8 *[16]byte)

// q8WidenChecked runs q8WidenVNNI on whole panels.
func q8WidenChecked(wu, p []byte, rows, nb int) {
	if rows != q8Panel || nb <= 0 {
		q8WidenGeneric(wu, p, rows, nb)
		return
	}
	_, _ = wu[nb*1024-1], p[16*nb*32-1]
	q8WidenVNNI(&wu[0], &p[0], nb*32, nb, &nf4U8)
}

//go:noescape
func q8QuantVNNI(xq *byte, sx *float32, corr *int32, np int, x *float32, nb int)

// q8QuantChecked runs q8QuantVNNI on row a of acts.
func q8QuantChecked(acts *q8Acts, a int, x []float32) {
	nb := len(x) / nf4Block
	if nb == 0 {
		return
	}
	C, np := len(x), acts.np
	_, _, _ = acts.xq[(a+1)*C-1], acts.sx[(nb-1)*np+a], acts.corr[(nb-1)*np+a]
	q8QuantVNNI(&acts.xq[a*C], &acts.sx[a], &acts.corr[a], np, &x[0], nb)
}

var (
	hasAVX2   = cpu.X86.HasAVX2 && cpu.X86.HasFMA
	hasAVX512 = hasAVX2 && cpu.X86.HasAVX512F && cpu.X86.HasAVX512BW && cpu.X86.HasAVX512VL && cpu.X86.HasAVX512DQ
)

var (
	avx2Kernels = kernelSet{
		name:       "avx2",
		nf4Dot:     nf4DotAVX2,
		nf4Decode:  nf4DecodeAVX2,
		bf16Dot:    bf16DotAVX2,
		bf16Decode: bf16DecodeAVX2,
		f16Dot:     f16DotAVX2,
		f16Decode:  f16DecodeAVX2,
		dot4x4:     dot4x4AVX2,
		acc4x64:    acc4x64AVX2,
		q8Widen:    q8WidenGeneric,
		q8Quant:    (*q8Acts).quantize,
	}
	// float16 weights are rare (lm_head and embeddings ship as bf16); the
	// AVX-512 set keeps the AVX2 F16C kernels for them.
	avx512Kernels = kernelSet{
		name:         "avx512",
		nf4Dot:       nf4DotAVX512,
		nf4Rows:      nf4RowsChecked,
		nf4Rows2:     nf4Rows2Checked,
		nf4Rows4:     nf4Rows4Checked,
		nf4RowsQ8:    nf4RowsQ8Checked,
		nf4Rows2Q8:   nf4Rows2Q8Checked,
		encodeActsQ8: encodeActsQ8Checked,
		bf16Dot2:     bf16Dot2AVX512,
		nf4Decode:    nf4DecodeAVX512,
		bf16Dot:      bf16DotAVX512,
		bf16Decode:   bf16DecodeAVX512,
		f16Dot:       f16DotAVX2,
		f16Decode:    f16DecodeAVX2,
		dot4x4:       dot4x4AVX512,
		acc4x64:      acc4x64AVX512,
		q8Tile:       q8TileVNNI,
		q8Widen:      q8WidenChecked,
		q8Quant:      q8QuantChecked,
	}
)

func bestKernels() kernelSet {
	v := kernelVariants()
	return v[len(v)-1]
}

// kernelVariants lists the kernel sets this CPU can run, best last.
func kernelVariants() []kernelSet {
	v := []kernelSet{genericKernels}
	if hasAVX2 {
		v = append(v, avx2Kernels)
	}
	if hasAVX512 {
		ks := avx512Kernels
		if !cpu.X86.HasAVX512VNNI {
			ks.q8Tile, ks.nf4RowsQ8, ks.nf4Rows2Q8 = nil, nil, nil
		}
		if !cpu.X86.HasAVX512VNNI || !cpu.X86.HasAVX512VBMI {
			ks.q8Widen, ks.q8Quant = q8WidenGeneric, (*q8Acts).quantize
		}
		if !cpu.X86.HasAVX512VBMI {
			// The int8 row kernels unpack codes with VPERMB.
			ks.nf4RowsQ8, ks.nf4Rows2Q8 = nil, nil
		}
		v = append(v, ks)
	}
	return v
}
