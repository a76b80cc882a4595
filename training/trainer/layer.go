package trainer

import (
	"github.com/loraplex/loraplex/inference/model"
	"github.com/loraplex/loraplex/inference/ops"
	"github.com/loraplex/loraplex/quant"
	"github.com/loraplex/loraplex/quant/par"
	"github.com/loraplex/loraplex/quant/vec"
)

// rowGrain keeps per-row loops of small steps on one goroutine.
func rowGrain(width int) int { return max(1, 1<<14/max(width, 1)) }

// forwardLayer computes layer li's output xout from its input x, keeping
// every activation the backward pass needs in c.
func (t *Trainer) forwardLayer(p *par.Pool, li int, c *acts, x, xout []float32) {
	cfg := t.m.Cfg
	L := &t.m.Layers[li]
	n, h, f := t.n, cfg.Hidden, cfg.Intermediate
	d, half := cfg.HeadDim, cfg.HeadDim/2
	qd, kd := cfg.Heads*d, cfg.KVHeads*d
	eps := float32(cfg.NormEps)

	p.For(n, rowGrain(h), func(lo, hi int) {
		for r := lo; r < hi; r++ {
			ops.RMSNorm(t.h1[r*h:(r+1)*h], x[r*h:(r+1)*h], L.InNorm, eps)
		}
	})
	t.linear(p, li, c, model.Q, c.q, t.h1)
	t.linear(p, li, c, model.K, c.k, t.h1)
	t.linear(p, li, c, model.V, c.v, t.h1)
	p.For(n, rowGrain(qd+kd), func(lo, hi int) {
		for r := lo; r < hi; r++ {
			pos := t.pos[r]
			cs, sn := t.cos[pos*half:(pos+1)*half], t.sin[pos*half:(pos+1)*half]
			for hd := 0; hd < cfg.Heads; hd++ {
				ops.Rope(c.q[r*qd+hd*d:r*qd+(hd+1)*d], cs, sn)
			}
			for hd := 0; hd < cfg.KVHeads; hd++ {
				ops.Rope(c.k[r*kd+hd*d:r*kd+(hd+1)*d], cs, sn)
			}
		}
	})
	ops.Attention(p, &t.attn, c.a, c.probs, c.q, c.k, c.v, t.lens, t.shape)
	t.linear(p, li, c, model.O, xout, c.a)
	p.For(n, rowGrain(2*h), func(lo, hi int) {
		for r := lo; r < hi; r++ {
			x2 := c.x2[r*h : (r+1)*h]
			copy(x2, x[r*h:(r+1)*h])
			vec.Add(x2, xout[r*h:(r+1)*h])
			ops.RMSNorm(t.h2[r*h:(r+1)*h], x2, L.PostNorm, eps)
		}
	})
	t.linear(p, li, c, model.Gate, c.gate, t.h2)
	t.linear(p, li, c, model.Up, c.up, t.h2)
	p.For(n, rowGrain(16*f), func(lo, hi int) {
		ops.SwiGLU(t.mlp[lo*f:hi*f], c.gate[lo*f:hi*f], c.up[lo*f:hi*f])
	})
	t.linear(p, li, c, model.Down, xout, t.mlp)
	vec.Add(xout[:n*h], c.x2[:n*h])
}

// backwardLayer turns dx from ∂L/∂(layer output) into ∂L/∂x in place,
// accumulating the adapter's gradients on the way. Unless the forward pass
// kept layer li's activations, it first recomputes them from the input x;
// if it kept them, it recomputes only the normed inputs and the SwiGLU
// output, which are cheap elementwise functions of kept values and are
// not kept per layer (about a quarter of a layer's activations).
func (t *Trainer) backwardLayer(p *par.Pool, li int, x, dx []float32) {
	c, g := t.acts(li), &t.g
	cfg := t.m.Cfg
	L := &t.m.Layers[li]
	n, h, f := t.n, cfg.Hidden, cfg.Intermediate
	d, half := cfg.HeadDim, cfg.HeadDim/2
	qd, kd := cfg.Heads*d, cfg.KVHeads*d
	eps := float32(cfg.NormEps)
	if c == &t.c {
		t.forwardLayer(p, li, c, x, t.out)
	} else {
		p.For(n, rowGrain(4*h), func(lo, hi int) {
			for r := lo; r < hi; r++ {
				ops.RMSNorm(t.h1[r*h:(r+1)*h], x[r*h:(r+1)*h], L.InNorm, eps)
				ops.RMSNorm(t.h2[r*h:(r+1)*h], c.x2[r*h:(r+1)*h], L.PostNorm, eps)
			}
		})
		p.For(n, rowGrain(16*f), func(lo, hi int) {
			ops.SwiGLU(t.mlp[lo*f:hi*f], c.gate[lo*f:hi*f], c.up[lo*f:hi*f])
		})
	}

	// MLP: xout = x2 + down(swiglu(gate(h2), up(h2))).
	dmlp := zeroed(p, g.dmlp, n*f)
	t.linearBackward(p, li, c, model.Down, dmlp, dx, t.mlp)
	dgate, dup := zeroed(p, g.dgate, n*f), zeroed(p, g.dup, n*f)
	p.For(n, rowGrain(16*f), func(lo, hi int) {
		ops.SwiGLUBackward(dgate[lo*f:hi*f], dup[lo*f:hi*f], dmlp[lo*f:hi*f], c.gate[lo*f:hi*f], c.up[lo*f:hi*f])
	})
	dh := zeroed(p, g.dh, n*h)
	t.linearBackward(p, li, c, model.Gate, dh, dgate, t.h2)
	t.linearBackward(p, li, c, model.Up, dh, dup, t.h2)
	p.For(n, rowGrain(2*h), func(lo, hi int) {
		for r := lo; r < hi; r++ {
			ops.RMSNormBackward(dx[r*h:(r+1)*h], nil, dh[r*h:(r+1)*h], c.x2[r*h:(r+1)*h], L.PostNorm, eps)
		}
	})

	// Attention: x2 = x + o(attn(rope(q(h1)), rope(k(h1)), v(h1))).
	da := zeroed(p, g.da, n*qd)
	t.linearBackward(p, li, c, model.O, da, dx, c.a)
	dq, dk, dv := zeroed(p, g.dq, n*qd), zeroed(p, g.dk, n*kd), zeroed(p, g.dv, n*kd)
	ops.AttentionBackward(p, &t.attn, dq, dk, dv, da, c.probs, c.q, c.k, c.v, t.lens, t.shape)
	p.For(n, rowGrain(qd+kd), func(lo, hi int) {
		for r := lo; r < hi; r++ {
			pos := t.pos[r]
			cs, sn := t.cos[pos*half:(pos+1)*half], t.sin[pos*half:(pos+1)*half]
			for hd := 0; hd < cfg.Heads; hd++ {
				ops.RopeInverse(dq[r*qd+hd*d:r*qd+(hd+1)*d], cs, sn)
			}
			for hd := 0; hd < cfg.KVHeads; hd++ {
				ops.RopeInverse(dk[r*kd+hd*d:r*kd+(hd+1)*d], cs, sn)
			}
		}
	})
	dh = zeroed(p, g.dh, n*h)
	t.linearBackward(p, li, c, model.Q, dh, dq, t.h1)
	t.linearBackward(p, li, c, model.K, dh, dk, t.h1)
	t.linearBackward(p, li, c, model.V, dh, dv, t.h1)
	p.For(n, rowGrain(2*h), func(lo, hi int) {
		for r := lo; r < hi; r++ {
			ops.RMSNormBackward(dx[r*h:(r+1)*h], nil, dh[r*h:(r+1)*h], x[r*h:(r+1)*h], L.InNorm, eps)
		}
	})
}

// zeroed clears b[:n] on p's workers and returns it.
func zeroed(p *par.Pool, b []float32, n int) []float32 {
	b = b[:n]
	p.For(n, 1<<16, func(lo, hi int) { clear(b[lo:hi]) })
	return b
}

// linear computes y = x·Wᵀ + LoRA (+ bias) for all rows, in the same order
// of operations as the inference forward pass; only the LoRA products sum
// in another order (see TestLogitsMatchInference).
func (t *Trainer) linear(p *par.Pool, li int, c *acts, mod model.Module, y, x []float32) {
	L := &t.m.Layers[li]
	w := L.W[mod]
	n, out := t.n, w.Rows()
	t.mulT(p, w, y, x, n)
	t.loraForward(p, li, c, mod, y, x)
	if b := L.Bias[mod]; b != nil {
		for r := 0; r < n; r++ {
			vec.Add(y[r*out:(r+1)*out], b)
		}
	}
}

// mulT is w.MulT in the configured compute dtype.
func (t *Trainer) mulT(p *par.Pool, w quant.Matrix, y, x []float32, n int) {
	if t.cfg.ComputeDType == ComputeBFloat16 {
		quant.MulTBF16(w, p, y, x, n)
		return
	}
	w.MulT(p, y, x, n)
}

// mulGrad is w.MulGrad in the configured compute dtype.
func (t *Trainer) mulGrad(p *par.Pool, w quant.Matrix, dx, dy []float32, n int) {
	if t.cfg.ComputeDType == ComputeBFloat16 {
		quant.MulGradBF16(w, p, dx, dy, n)
		return
	}
	w.MulGrad(p, dx, dy, n)
}

// loraForward adds module mod's low-rank update to y.
func (t *Trainer) loraForward(p *par.Pool, li int, c *acts, mod model.Module, y, x []float32) {
	lr := t.lora(li, mod)
	if lr == nil {
		return
	}
	n, out, in := t.n, len(lr.B)/lr.R, len(lr.A)/lr.R
	if t.train {
		xd := t.xd[:n*in]
		t.dropout(p, li, mod, xd, x[:n*in])
		x = xd
	}
	bt := grow(&t.g.bt, lr.R*out)
	ops.Transpose(bt, lr.B, out, lr.R)
	ops.LoRABatch(p, y, c.t[mod], grow(&t.g.lora, 3*n*lr.R), x, lr.A, bt, n, in, out, lr.R, lr.Scale)
}

// linearBackward accumulates dx += dy·W and the LoRA gradients of module mod
// given its input x (the input before dropout).
func (t *Trainer) linearBackward(p *par.Pool, li int, c *acts, mod model.Module, dx, dy, x []float32) {
	w := t.m.Layers[li].W[mod]
	n, out, in := t.n, w.Rows(), w.Cols()
	t.mulGrad(p, w, dx, dy, n)
	lr := t.lora(li, mod)
	if lr == nil {
		return
	}
	dxl, xin := dx, x
	if t.train {
		// The dropped-out input is recomputed rather than kept: the mask
		// is a pure function of its position, and keeping it would cost
		// as much memory as all the layer's other activations.
		x = t.xd[:n*in]
		t.dropout(p, li, mod, x, xin[:n*in])
		dxl = zeroed(p, t.g.dxd, n*in)
	}
	r := lr.R
	bt := grow(&t.g.bt, r*out)
	ops.Transpose(bt, lr.B, out, r)
	dBt := zeroed(par.Serial, grow(&t.g.dbt, r*out), r*out)
	ops.LoRABackward(p, dxl, t.gA[li][mod], dBt, grow(&t.g.lora, 3*n*r), dy, x, c.t[mod], lr.A, bt, n, in, out, r, lr.Scale)
	gB := t.gB[li][mod]
	for j := 0; j < r; j++ {
		for o, v := range dBt[j*out : (j+1)*out] {
			gB[o*r+j] += v
		}
	}
	if t.train {
		t.dropoutGrad(p, dx[:n*in], dxl)
	}
}

func (t *Trainer) lora(li int, mod model.Module) *model.LoRA {
	if t.ad.LoRA == nil {
		return nil
	}
	return t.ad.LoRA[li][mod]
}

// dropout writes dst = src·mask/(1−p), leaving mask/(1−p) in t.mask for
// dropoutGrad. The mask is a pure function of the seed, the batch key, the
// layer, the module and the element, so the recomputation in the backward
// pass and the gradient see the same mask. Each 64-bit hash yields four
// 16-bit uniforms (p is resolved to 1/65536); the products run as vectors.
func (t *Trainer) dropout(p *par.Pool, li int, mod model.Module, dst, src []float32) {
	keep := float32(1 / (1 - float64(t.cfg.Dropout)))
	threshold := uint64(float64(t.cfg.Dropout) * 65536)
	base := mix(t.cfg.Seed ^ mix(t.key^mix(uint64(li)<<8|uint64(mod))))
	// factor[1] applies where the uniform u is below the threshold: the
	// sign bit of u − threshold picks it without a branch.
	factor := [2]float32{keep, 0}
	mask := grow(&t.mask, len(src))
	p.For((len(src)+3)/4, 1<<12, func(lo, hi int) {
		for q := lo; q < hi; q++ {
			h := mix(base + uint64(q))
			if i := 4 * q; i+4 <= len(mask) {
				m := mask[i : i+4 : i+4]
				m[0] = factor[(h&0xffff-threshold)>>63]
				m[1] = factor[(h>>16&0xffff-threshold)>>63]
				m[2] = factor[(h>>32&0xffff-threshold)>>63]
				m[3] = factor[(h>>48-threshold)>>63]
				continue
			}
			for i := 4 * q; i < len(mask); i++ {
				mask[i] = factor[(h&0xffff-threshold)>>63]
				h >>= 16
			}
		}
		lo, hi = 4*lo, min(len(src), 4*hi)
		copy(dst[lo:hi], src[lo:hi])
		vec.Mul(dst[lo:hi], mask[lo:hi])
	})
}

// dropoutGrad adds the gradient dxd of the dropped-out input to dx, the
// gradient of the input: dx += dxd·mask/(1−p), with the mask of the last
// dropout call (the same layer and module). dxd is scratch.
func (t *Trainer) dropoutGrad(p *par.Pool, dx, dxd []float32) {
	mask := t.mask[:len(dxd)]
	p.For(len(dxd), 1<<14, func(lo, hi int) {
		vec.Mul(dxd[lo:hi], mask[lo:hi])
		vec.Add(dx[lo:hi], dxd[lo:hi])
	})
}

// mix is the splitmix64 finaliser: a cheap, well-spread hash of a counter.
func mix(z uint64) uint64 {
	z += 0x9e3779b97f4a7c15
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}
