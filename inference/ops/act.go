package ops

// SiLU is x·sigmoid(x).
func SiLU(x float32) float32 { return x / (1 + expf(-x)) }

// SwiGLU writes out = silu(gate) · up element-wise (the Llama MLP's gated
// activation). out may alias gate or up.
func SwiGLU(out, gate, up []float32) {
	up = up[:len(gate)]
	out = out[:len(gate)]
	for i, g := range gate {
		out[i] = SiLU(g) * up[i]
	}
}

// SwiGLUBackward accumulates dgate and dup given dout for out = silu(gate)·up.
func SwiGLUBackward(dgate, dup, dout, gate, up []float32) {
	n := len(gate)
	dgate, dup, dout, up = dgate[:n], dup[:n], dout[:n], up[:n]
	for i, g := range gate {
		s := 1 / (1 + expf(-g))
		silu := g * s
		dup[i] += dout[i] * silu
		// d silu/dg = s + g·s·(1−s)
		dgate[i] += dout[i] * up[i] * (s + g*s*(1-s))
	}
}

// Softmax replaces x with softmax(x), subtracting the maximum first so large
// logits do not overflow.
func Softmax(x []float32) {
	if len(x) == 0 {
		return
	}
	m := x[0]
	for _, v := range x[1:] {
		m = max(m, v)
	}
	var sum float32
	for i, v := range x {
		e := expf(v - m)
		x[i] = e
		sum += e
	}
	inv := 1 / sum
	for i := range x {
		x[i] *= inv
	}
}

// SoftmaxBackward accumulates dx given y = softmax(x) and dy:
// dx_i += y_i (dy_i − Σ_j y_j dy_j).
func SoftmaxBackward(dx, y, dy []float32) {
	n := len(y)
	dx, dy = dx[:n], dy[:n]
	s := dot(y, dy)
	for i, v := range y {
		dx[i] += v * (dy[i] - s)
	}
}
