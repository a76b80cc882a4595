package ops

import "math"

// LoRAT16 is LoRAT with A (r×in) and Bᵀ (r×out) stored as bfloat16 bits
// (see ToBF16): half the bytes to stream per row, which is what a decode
// step with many different adapters is bound by. The products and sums are
// float32.
func LoRAT16(y, t, x []float32, a, bt []uint16, n, in, out, r int, scale float32) {
	for i := 0; i < n; i++ {
		xi, ti, yi := x[i*in:(i+1)*in], t[i*r:(i+1)*r], y[i*out:(i+1)*out]
		for j := range ti {
			ti[j] = dotBF16(a[j*in:(j+1)*in], xi)
			axpyBF16(scale*ti[j], bt[j*out:(j+1)*out], yi)
		}
	}
}

// ToBF16 rounds every value of src to bfloat16, to nearest with ties to
// even as PyTorch does, and writes the bits to dst. NaN stays NaN.
func ToBF16(dst []uint16, src []float32) {
	dst = dst[:len(src)]
	for i, v := range src {
		b := math.Float32bits(v)
		if v != v {
			dst[i] = uint16(b>>16) | 0x40 // keep it a NaN after truncation
			continue
		}
		dst[i] = uint16((b + 0x7fff + (b>>16)&1) >> 16)
	}
}

func bf16ToF32(h uint16) float32 { return math.Float32frombits(uint32(h) << 16) }

// dotBF16 returns Σ a[k]·x[k] with a in bfloat16 bits.
func dotBF16(a []uint16, x []float32) float32 {
	x = x[:len(a)]
	var s float32
	if n := len(a) &^ 15; rowKernels && n > 0 {
		s = dotBF16Asm(a[:n], x[:n])
		a, x = a[n:], x[n:]
	}
	for k, h := range a {
		s += bf16ToF32(h) * x[k]
	}
	return s
}

// axpyBF16 adds alpha·a to y with a in bfloat16 bits.
func axpyBF16(alpha float32, a []uint16, y []float32) {
	y = y[:len(a)]
	if n := len(a) &^ 15; rowKernels && n > 0 {
		axpyBF16Asm(alpha, a[:n], y[:n])
		a, y = a[n:], y[n:]
	}
	for k, h := range a {
		y[k] += alpha * bf16ToF32(h)
	}
}
