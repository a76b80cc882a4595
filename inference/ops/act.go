package ops

// SiLU is x·sigmoid(x).
func SiLU(x float32) float32 { return x / (1 + expf(-x)) }

// SwiGLU writes out = silu(gate) · up element-wise (the Llama MLP's gated
// activation). out may alias gate or up.
func SwiGLU(out, gate, up []float32) {
	up = up[:len(gate)]
	out = out[:len(gate)]
	if n := len(gate) &^ 15; rowKernels && n > 0 {
		swigluAsm(out[:n], gate[:n], up[:n])
		out, gate, up = out[n:], gate[n:], up[n:]
	}
	// e^-g goes through a stack buffer so out may alias gate.
	var e [64]float32
	for lo := 0; lo < len(gate); lo += len(e) {
		g := gate[lo:min(lo+len(e), len(gate))]
		t := e[:len(g)]
		for i, v := range g {
			t[i] = -v
		}
		expSlice(t)
		for i, v := range g {
			out[lo+i] = v / (1 + t[i]) * up[lo+i]
		}
	}
}

// SwiGLUBackward accumulates dgate and dup given dout for out = silu(gate)·up.
func SwiGLUBackward(dgate, dup, dout, gate, up []float32) {
	n := len(gate)
	dgate, dup, dout, up = dgate[:n], dup[:n], dout[:n], up[:n]
	// e^-g is computed in chunks, like SwiGLU, so the exponential runs
	// as one loop rather than one call per element.
	var e [64]float32
	for lo := 0; lo < n; lo += len(e) {
		g := gate[lo:min(lo+len(e), n)]
		t := e[:len(g)]
		for i, v := range g {
			t[i] = -v
		}
		expSlice(t)
		for i, v := range g {
			s := 1 / (1 + t[i])
			silu := v * s
			j := lo + i
			dup[j] += dout[j] * silu
			// d silu/dg = s + g·s·(1−s)
			dgate[j] += dout[j] * up[j] * (s + v*s*(1-s))
		}
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
	for i, v := range x {
		x[i] = v - m
	}
	expSlice(x)
	var sum float32
	for _, e := range x {
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
