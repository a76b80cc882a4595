//go:build !noasm

package vec

import "golang.org/x/sys/cpu"

// The assembly kernels implement the Go loops named in their comments.
//
//go:noescape
func dotAVX2(a, b []float32) float32 // dotGeneric

//go:noescape
func sumSqAVX2(x []float32) float32 // sumSqGeneric

//go:noescape
func axpyAVX2(alpha float32, x, y []float32) // axpyGeneric

//go:noescape
func scaleAVX2(alpha float32, x []float32) // scaleGeneric

//go:noescape
func addAVX2(dst, x []float32) // addGeneric

//go:noescape
func mulAVX2(dst, x []float32) // mulGeneric

//go:noescape
func dotAVX512(a, b []float32) float32 // dotGeneric

//go:noescape
func sumSqAVX512(x []float32) float32 // sumSqGeneric

//go:noescape
func axpyAVX512(alpha float32, x, y []float32) // axpyGeneric

//go:noescape
func maxAVX2(x []float32) float32

//go:noescape
func indexAVX2(x []float32, v float32) int

// maxIndexAVX2 implements maxIndexGeneric in two vector passes: the largest
// non-NaN value, then the first index holding it.
func maxIndexAVX2(x []float32) int { return indexAVX2(x, maxAVX2(x)) }

var (
	hasAVX2   = cpu.X86.HasAVX2 && cpu.X86.HasFMA
	hasAVX512 = hasAVX2 && cpu.X86.HasAVX512F && cpu.X86.HasAVX512BW && cpu.X86.HasAVX512VL
)

var (
	avx2 = kernels{
		name: "avx2", dot: dotAVX2, axpy: axpyAVX2, scale: scaleAVX2,
		add: addAVX2, mul: mulAVX2, sumSq: sumSqAVX2, maxIndex: maxIndexAVX2,
	}
	// Element-wise Scale, Add and Mul are bound by memory, not by vector
	// width; the AVX-512 set keeps their AVX2 versions.
	avx512 = kernels{
		name: "avx512", dot: dotAVX512, axpy: axpyAVX512, scale: scaleAVX2,
		add: addAVX2, mul: mulAVX2, sumSq: sumSqAVX512, maxIndex: maxIndexAVX2,
	}
)

func best() kernels {
	v := variants()
	return v[len(v)-1]
}

// variants lists the kernel sets this CPU can run, best last.
func variants() []kernels {
	v := []kernels{generic}
	if hasAVX2 {
		v = append(v, avx2)
	}
	if hasAVX512 {
		v = append(v, avx512)
	}
	return v
}
