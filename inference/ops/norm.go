package ops

import (
	"math"

	"github.com/loraplex/loraplex/quant/vec"
)

// RMSNorm writes y = x · rsqrt(mean(x²) + eps) · w for one row, computing in
// float32 as Hugging Face's LlamaRMSNorm does. y may alias x.
func RMSNorm(y, x, w []float32, eps float32) {
	d := len(w)
	x, y = x[:d], y[:d]
	r := rmsScale(x, eps)
	for i, v := range x {
		y[i] = v * r * w[i]
	}
}

// rmsScale is rsqrt(mean(x²) + eps).
func rmsScale(x []float32, eps float32) float32 {
	ss := vec.SumSq(x)
	return float32(1 / math.Sqrt(float64(ss/float32(len(x))+eps)))
}

// RMSNormBackward accumulates the gradients of RMSNorm for one row:
// dx += ∂L/∂x and dw += ∂L/∂w given dy = ∂L/∂y. dw may be nil when the norm
// weight is frozen.
func RMSNormBackward(dx, dw, dy, x, w []float32, eps float32) {
	d := len(w)
	x, dy, dx = x[:d], dy[:d], dx[:d]
	r := rmsScale(x, eps)
	// y_i = x_i r w_i with r = (Σx²/d + eps)^(-1/2), so
	// ∂L/∂x_i = r w_i dy_i − x_i r³/d · Σ_j dy_j w_j x_j.
	var s float32
	for i, v := range x {
		s += dy[i] * w[i] * v
	}
	c := r * r * r * s / float32(d)
	for i, v := range x {
		dx[i] += r*w[i]*dy[i] - v*c
	}
	if dw != nil {
		dw = dw[:d]
		for i, v := range x {
			dw[i] += dy[i] * v * r
		}
	}
}
