package ops

import "math"

// expf is e^x in float32 arithmetic, about three times faster than
// math.Exp and within 2 ulp of it: exp dominates SwiGLU and softmax. It
// splits x = n·ln2 + r with |r| ≤ ln2/2 (ln2 in two parts so r stays exact)
// and evaluates a degree-6 minimax polynomial for e^r (the Cephes expf
// coefficients), then scales by 2^n through the exponent bits.
func expf(x float32) float32 {
	switch {
	case x != x:
		return x
	case x > 88.72283:
		return float32(math.Inf(1))
	case x < -87.33654:
		return 0 // below the smallest normal float32
	}
	const (
		log2e = 1.44269504088896341
		c1    = 0.693359375
		c2    = -2.12194440e-4
	)
	// Adding 1.5·2^23 rounds to an integer in the float's own mantissa.
	const magic = 12582912
	n := (x*log2e + magic) - magic
	r := x - n*c1 - n*c2
	p := float32(1.9875691500e-4)
	p = p*r + 1.3981999507e-3
	p = p*r + 8.3334519073e-3
	p = p*r + 4.1665795894e-2
	p = p*r + 1.6666665459e-1
	p = p*r + 5.0000001201e-1
	p = p*r*r + r + 1
	e := int32(n)
	if e == 128 { // 2^128 is not a float32; x ∈ (88.38, 88.72] still is finite
		return 2 * p * math.Float32frombits(uint32(e+126)<<23)
	}
	return p * math.Float32frombits(uint32(e+127)<<23)
}
