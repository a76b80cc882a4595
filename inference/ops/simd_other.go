//go:build noasm || !amd64

package ops

const rowKernels = false

func dotRowsAsm(s, q, k []float32, scale float32)        { panic("ops: no row kernels") }
func axpyRowsAsm(out, p, v []float32)                    { panic("ops: no row kernels") }
func expAsm(x []float32)                                 { panic("ops: no vector exp") }
func swigluAsm(out, gate, up []float32)                  { panic("ops: no vector exp") }
func dotBF16Asm(a []uint16, x []float32) float32         { panic("ops: no bf16 kernels") }
func axpyBF16Asm(alpha float32, a []uint16, y []float32) { panic("ops: no bf16 kernels") }
