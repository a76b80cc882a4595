package ops

import "math"

// RopeAngles fills cos and sin (length HeadDim/2 each) with the rotary angles
// of position pos for the given inverse frequencies (config.InvFreq()).
// Callers compute them once per row and reuse them for every head and layer.
//
// The angle is rounded the way Hugging Face (and vLLM) compute it, as the
// float32 product of a float32 frequency and a float32 position: at long
// positions that rounding moves the angle by up to ~1e-3 radians, and models
// were trained with it. Its cosine and sine are then taken in float64.
func RopeAngles(cos, sin []float32, invFreq []float64, pos int) {
	cos, sin = cos[:len(invFreq)], sin[:len(invFreq)]
	p := float32(pos)
	for i, f := range invFreq {
		s, c := math.Sincos(float64(float32(f) * p))
		cos[i], sin[i] = float32(c), float32(s)
	}
}

// Rope rotates one head vector x (length 2·len(cos)) in place in Hugging
// Face's rotate_half layout, where element i pairs with element i+HeadDim/2:
// x' = x·cos + rotate_half(x)·sin.
func Rope(x, cos, sin []float32) { rotate(x, cos, sin, 1) }

// RopeInverse undoes Rope. The rotation is orthogonal, so this is also its
// backward: the gradient with respect to Rope's input is RopeInverse applied
// to the gradient with respect to its output (in place).
func RopeInverse(x, cos, sin []float32) { rotate(x, cos, sin, -1) }

func rotate(x, cos, sin []float32, sign float32) {
	h := len(cos)
	lo, hi := x[:h], x[h:2*h]
	sin = sin[:h]
	for i, c := range cos {
		a, b := lo[i], hi[i]
		s := sign * sin[i]
		lo[i] = a*c - b*s
		hi[i] = b*c + a*s
	}
}
