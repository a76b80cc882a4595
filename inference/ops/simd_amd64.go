//go:build !noasm

package ops

import "golang.org/x/sys/cpu"

// rowKernels reports whether the AVX-512 kernels (row products, exp,
// SwiGLU) can run.
var rowKernels = cpu.X86.HasAVX512F && cpu.X86.HasAVX512DQ && cpu.X86.HasAVX512BW && cpu.X86.HasFMA

// expAVX512 implements expSlice for len(x) a multiple of 16, with fused
// multiply-adds, so it may differ from the Go loop in the last bit.
//
//go:noescape
func expAVX512(x []float32)

// swigluAVX512 implements SwiGLU for len(gate) a multiple of 16 through
// expAVX512's exp.
//
//go:noescape
func swigluAVX512(out, gate, up []float32)

// dotRowsAVX512 implements DotRows for len(q) a multiple of 16 and
// len(k) = len(s)·len(q).
//
//go:noescape
func dotRowsAVX512(s, q, k []float32, scale float32)

// axpyRowsAVX512 implements AxpyRows for len(out) a multiple of 16 and
// len(v) = len(p)·len(out).
//
//go:noescape
func axpyRowsAVX512(out, p, v []float32)

// dotBF16AVX512 implements dotBF16 for len(a) a multiple of 16.
//
//go:noescape
func dotBF16AVX512(a []uint16, x []float32) float32

// axpyBF16AVX512 implements axpyBF16 for len(a) a multiple of 16.
//
//go:noescape
func axpyBF16AVX512(alpha float32, a []uint16, y []float32)

func dotBF16Asm(a []uint16, x []float32) float32         { return dotBF16AVX512(a, x) }
func axpyBF16Asm(alpha float32, a []uint16, y []float32) { axpyBF16AVX512(alpha, a, y) }
func dotRowsAsm(s, q, k []float32, scale float32)        { dotRowsAVX512(s, q, k, scale) }
func axpyRowsAsm(out, p, v []float32)                    { axpyRowsAVX512(out, p, v) }
func expAsm(x []float32)                                 { expAVX512(x) }
func swigluAsm(out, gate, up []float32)                  { swigluAVX512(out, gate, up) }
