//go:build noasm || !amd64

package ops

func loraDown16AVX512(t, x []float32, a []uint16, nb, in, v, r int) {
	panic("ops: no bf16 kernels")
}

func loraUp16AVX512(y, t []float32, bt []uint16, nb, out, v, r int) {
	panic("ops: no bf16 kernels")
}
