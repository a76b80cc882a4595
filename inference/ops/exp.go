package ops

import "math"

// expSlice replaces every x[i] with e^x[i] in float32 arithmetic, within
// 2 ulp of math.Exp and several times faster: exp dominates SwiGLU and
// softmax. It splits x = n·ln2 + r with |r| ≤ ln2/2 (ln2 in two parts so r
// stays exact), evaluates a degree-6 minimax polynomial for e^r (the Cephes
// expf coefficients) and scales by 2^n through the exponent bits. It works
// on a slice so the loop body is not a call per element. Where the CPU
// has AVX-512, whole groups of 16 run as vectors (expAVX512) with fused
// multiply-adds, which may round the last bit differently.
func expSlice(x []float32) {
	if n := len(x) &^ 15; rowKernels && n > 0 {
		expAsm(x[:n])
		x = x[n:]
	}
	const (
		log2e = 1.44269504088896341
		c1    = 0.693359375
		c2    = -2.12194440e-4
		// Adding 1.5·2^23 rounds to an integer in the float's own mantissa.
		magic = 12582912
	)
	for i, v := range x {
		switch {
		case v != v:
			continue
		case v > 88.72283:
			x[i] = float32(math.Inf(1))
			continue
		case v < -87.33654:
			x[i] = 0 // below the smallest normal float32
			continue
		}
		n := (v*log2e + magic) - magic
		r := v - n*c1 - n*c2
		p := float32(1.9875691500e-4)
		p = p*r + 1.3981999507e-3
		p = p*r + 8.3334519073e-3
		p = p*r + 4.1665795894e-2
		p = p*r + 1.6666665459e-1
		p = p*r + 5.0000001201e-1
		p = p*r*r + r + 1
		e := int32(n)
		if e == 128 { // 2^128 is not a float32; x ∈ (88.38, 88.72] still is finite
			x[i] = 2 * p * math.Float32frombits(uint32(e+126)<<23)
			continue
		}
		x[i] = p * math.Float32frombits(uint32(e+127)<<23)
	}
}

// expf is expSlice for one value.
func expf(x float32) float32 {
	v := [1]float32{x}
	expSlice(v[:])
	return v[0]
}
