//go:build !noasm

package quant

import "golang.org/x/sys/cpu"

// bf16Acc4x64AVX512 implements bf16Acc4x64Generic with VDPBF16PS.
//
//go:noescape
func bf16Acc4x64AVX512(d []float32, ldd int, a []uint32, lda int, b []uint32, ldb int, P int)

// bf16CvtAVX512 implements bf16CvtGeneric with VCVTNE2PS2BF16 for
// len(dst) a multiple of 16.
//
//go:noescape
func bf16CvtAVX512(dst []uint32, src []float32)

// bf16CvtPairsAVX512 implements bf16CvtPairsGeneric for len(dst) a
// multiple of 16: VCVTNE2PS2BF16 puts a's 16 values below b's, and VPERMW
// with idx interleaves them.
//
//go:noescape
func bf16CvtPairsAVX512(dst []uint32, a, b []float32, idx *[32]uint16)

// prefetchLines asks for the n cache lines from p on; it never faults.
//
//go:noescape
func prefetchLines(p *byte, n int)

// prefetchStrip asks for W[r, c0:c1] of an NF4 matrix: MulGradBF16 reads
// its rows in strips of 128 bytes a row apart, which the hardware
// prefetchers do not follow.
func prefetchStrip(s source, r, c0, c1 int) {
	if q, ok := s.(*NF4); ok && r < q.rows {
		lo := (r*q.cols + c0) / 2
		prefetchLines(&q.packed[lo], ((r*q.cols+c1+1)/2-lo+63)/64)
	}
}

// bf16Interleave sends word 2c to c and word 2c+1 to 16+c.
var bf16Interleave = func() (t [32]uint16) {
	for c := range 16 {
		t[2*c], t[2*c+1] = uint16(c), uint16(16+c)
	}
	return t
}()

var bf16AVX512 = bf16KernelSet{
	name: "avx512bf16",
	cvt: func(dst []uint32, src []float32) {
		if len(dst) == 0 {
			return
		}
		_ = src[2*len(dst)-1]
		bf16CvtAVX512(dst[:len(dst)&^15], src)
	},
	cvtPairs: func(dst []uint32, a, b []float32) {
		if len(dst) == 0 {
			return
		}
		_, _ = a[len(dst)-1], b[len(dst)-1]
		bf16CvtPairsAVX512(dst[:len(dst)&^15], a, b, &bf16Interleave)
	},
	acc4x64: func(d []float32, ldd int, a []uint32, lda int, b []uint32, ldb int, P int) {
		_ = d[3*ldd+63]
		if P > 0 {
			_, _ = a[3*lda+P-1], b[(P-1)*ldb+63]
		}
		bf16Acc4x64AVX512(d, ldd, a, lda, b, ldb, P)
	},
}

func bestBF16Kernels() bf16KernelSet {
	v := bf16Variants()
	return v[len(v)-1]
}

// bf16Variants lists the bfloat16 kernel sets this CPU can run, best last.
func bf16Variants() []bf16KernelSet {
	if hasAVX512 && cpu.X86.HasAVX512BF16 {
		return []bf16KernelSet{bf16Generic, bf16AVX512}
	}
	return []bf16KernelSet{bf16Generic}
}
