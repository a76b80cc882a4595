package trainer

import (
	"github.com/loraplex/loraplex/inference/model"
	"github.com/loraplex/loraplex/inference/ops"
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
			ops.RMSNorm(c.h1[r*h:(r+1)*h], x[r*h:(r+1)*h], L.InNorm, eps)
		}
	})
	t.linear(p, li, c, model.Q, c.q, c.h1)
	t.linear(p, li, c, model.K, c.k, c.h1)
	t.linear(p, li, c, model.V, c.v, c.h1)
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
	po := 0
	for s, r0 := range t.starts {
		T := t.lens[s]
		ops.Attention(p, c.a[r0*qd:], c.probs[po:], c.q[r0*qd:], c.k[r0*kd:], c.v[r0*kd:], T, t.shape)
		po += cfg.Heads * T * T
	}
	t.linear(p, li, c, model.O, xout, c.a)
	p.For(n, rowGrain(2*h), func(lo, hi int) {
		for r := lo; r < hi; r++ {
			x2 := c.x2[r*h : (r+1)*h]
			copy(x2, x[r*h:(r+1)*h])
			vec.Add(x2, xout[r*h:(r+1)*h])
			ops.RMSNorm(c.h2[r*h:(r+1)*h], x2, L.PostNorm, eps)
		}
	})
	t.linear(p, li, c, model.Gate, c.gate, c.h2)
	t.linear(p, li, c, model.Up, c.up, c.h2)
	p.For(n, rowGrain(16*f), func(lo, hi int) {
		ops.SwiGLU(c.mlp[lo*f:hi*f], c.gate[lo*f:hi*f], c.up[lo*f:hi*f])
	})
	t.linear(p, li, c, model.Down, xout, c.mlp)
	vec.Add(xout[:n*h], c.x2[:n*h])
}

// backwardLayer turns dx from ∂L/∂(layer output) into ∂L/∂x in place,
// accumulating the adapter's gradients on the way. Unless the forward pass
// kept layer li's activations, it first recomputes them from the input x.
func (t *Trainer) backwardLayer(p *par.Pool, li int, x, dx []float32) {
	c, g := t.acts(li), &t.g
	if c == &t.c {
		t.forwardLayer(p, li, c, x, t.out)
	}
	cfg := t.m.Cfg
	L := &t.m.Layers[li]
	n, h, f := t.n, cfg.Hidden, cfg.Intermediate
	d, half := cfg.HeadDim, cfg.HeadDim/2
	qd, kd := cfg.Heads*d, cfg.KVHeads*d
	eps := float32(cfg.NormEps)

	// MLP: xout = x2 + down(swiglu(gate(h2), up(h2))).
	dmlp := zeroed(g.dmlp, n*f)
	t.linearBackward(p, li, c, model.Down, dmlp, dx, c.mlp)
	dgate, dup := zeroed(g.dgate, n*f), zeroed(g.dup, n*f)
	p.For(n, rowGrain(16*f), func(lo, hi int) {
		ops.SwiGLUBackward(dgate[lo*f:hi*f], dup[lo*f:hi*f], dmlp[lo*f:hi*f], c.gate[lo*f:hi*f], c.up[lo*f:hi*f])
	})
	dh := zeroed(g.dh, n*h)
	t.linearBackward(p, li, c, model.Gate, dh, dgate, c.h2)
	t.linearBackward(p, li, c, model.Up, dh, dup, c.h2)
	p.For(n, rowGrain(2*h), func(lo, hi int) {
		for r := lo; r < hi; r++ {
			ops.RMSNormBackward(dx[r*h:(r+1)*h], nil, dh[r*h:(r+1)*h], c.x2[r*h:(r+1)*h], L.PostNorm, eps)
		}
	})

	// Attention: x2 = x + o(attn(rope(q(h1)), rope(k(h1)), v(h1))).
	da := zeroed(g.da, n*qd)
	t.linearBackward(p, li, c, model.O, da, dx, c.a)
	dq, dk, dv := zeroed(g.dq, n*qd), zeroed(g.dk, n*kd), zeroed(g.dv, n*kd)
	po := 0
	for s, r0 := range t.starts {
		T := t.lens[s]
		ops.AttentionBackward(p, dq[r0*qd:], dk[r0*kd:], dv[r0*kd:], da[r0*qd:], c.probs[po:], c.q[r0*qd:], c.k[r0*kd:], c.v[r0*kd:], T, t.shape)
		po += cfg.Heads * T * T
	}
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
	dh = zeroed(g.dh, n*h)
	t.linearBackward(p, li, c, model.Q, dh, dq, c.h1)
	t.linearBackward(p, li, c, model.K, dh, dk, c.h1)
	t.linearBackward(p, li, c, model.V, dh, dv, c.h1)
	p.For(n, rowGrain(2*h), func(lo, hi int) {
		for r := lo; r < hi; r++ {
			ops.RMSNormBackward(dx[r*h:(r+1)*h], nil, dh[r*h:(r+1)*h], x[r*h:(r+1)*h], L.InNorm, eps)
		}
	})
}

func zeroed(b []float32, n int) []float32 {
	b = b[:n]
	clear(b)
	return b
}

// linear computes y = x·Wᵀ + LoRA (+ bias) for all rows, in the same order
// of operations as the inference forward pass, so both give identical
// logits.
func (t *Trainer) linear(p *par.Pool, li int, c *acts, mod model.Module, y, x []float32) {
	L := &t.m.Layers[li]
	w := L.W[mod]
	n, out := t.n, w.Rows()
	w.MulT(p, y, x, n)
	t.loraForward(p, li, c, mod, y, x)
	if b := L.Bias[mod]; b != nil {
		for r := 0; r < n; r++ {
			vec.Add(y[r*out:(r+1)*out], b)
		}
	}
}

// loraForward adds module mod's low-rank update to y.
func (t *Trainer) loraForward(p *par.Pool, li int, c *acts, mod model.Module, y, x []float32) {
	lr := t.lora(li, mod)
	if lr == nil {
		return
	}
	n, out, in := t.n, len(lr.B)/lr.R, len(lr.A)/lr.R
	if t.train {
		xd := c.xd[mod][:n*in]
		t.dropout(p, li, mod, xd, x[:n*in])
		x = xd
	}
	bt := grow(&t.g.bt, lr.R*out)
	ops.Transpose(bt, lr.B, out, lr.R)
	tt := c.t[mod]
	p.For(n, rowGrain(lr.R*(in+out)), func(lo, hi int) {
		ops.LoRAT(y[lo*out:], tt[lo*lr.R:], x[lo*in:], lr.A, bt, hi-lo, in, out, lr.R, lr.Scale)
	})
}

// linearBackward accumulates dx += dy·W and the LoRA gradients of module mod
// given its input x (the input before dropout).
func (t *Trainer) linearBackward(p *par.Pool, li int, c *acts, mod model.Module, dx, dy, x []float32) {
	w := t.m.Layers[li].W[mod]
	n, out, in := t.n, w.Rows(), w.Cols()
	w.MulGrad(p, dx, dy, n)
	lr := t.lora(li, mod)
	if lr == nil {
		return
	}
	dxl, xin := dx, x
	if t.train {
		x = c.xd[mod][:n*in]
		dxl = zeroed(t.g.dxd, n*in)
	}
	r := lr.R
	bt := grow(&t.g.bt, r*out)
	ops.Transpose(bt, lr.B, out, r)
	// Rows are split into one chunk per worker; each chunk accumulates its
	// own A and Bᵀ gradients, summed afterwards, so no two workers write
	// the same value.
	chunks := min(p.Workers(), n)
	step := (n + chunks - 1) / chunks
	for len(t.g.dt) < chunks {
		t.g.dt = append(t.g.dt, nil)
		t.g.chunkA = append(t.g.chunkA, nil)
		t.g.chunkB = append(t.g.chunkB, nil)
	}
	gA, tt := t.gA[li][mod], c.t[mod]
	p.For(chunks, 1, func(lo, hi int) {
		for ch := lo; ch < hi; ch++ {
			r0, r1 := ch*step, min((ch+1)*step, n)
			dA := gA
			if ch > 0 {
				dA = zeroed(grow(&t.g.chunkA[ch], len(gA)), len(gA))
			}
			dBt := zeroed(grow(&t.g.chunkB[ch], r*out), r*out)
			if r0 >= r1 {
				continue
			}
			ops.LoRABackward(dxl[r0*in:], dA, dBt, grow(&t.g.dt[ch], r), dy[r0*out:], x[r0*in:], tt[r0*r:], lr.A, bt, r1-r0, in, out, r, lr.Scale)
		}
	})
	dBt := t.g.chunkB[0]
	for ch := 1; ch < chunks; ch++ {
		vec.Add(gA, t.g.chunkA[ch])
		vec.Add(dBt, t.g.chunkB[ch])
	}
	gB := t.gB[li][mod]
	for j := 0; j < r; j++ {
		for o, v := range dBt[j*out : (j+1)*out] {
			gB[o*r+j] += v
		}
	}
	if t.train {
		t.dropoutGrad(p, li, mod, dx[:n*in], dxl, c.xd[mod][:n*in], xin[:n*in])
	}
}

func (t *Trainer) lora(li int, mod model.Module) *model.LoRA {
	if t.ad.LoRA == nil {
		return nil
	}
	return t.ad.LoRA[li][mod]
}

// dropout writes dst = src·mask/(1−p). The mask is a pure function of the
// seed, the batch key, the layer, the module and the element, so the
// recomputation in the backward pass and the gradient see the same mask.
// Each 64-bit hash yields four 16-bit uniforms (p is resolved to 1/65536).
func (t *Trainer) dropout(p *par.Pool, li int, mod model.Module, dst, src []float32) {
	keep := float32(1 / (1 - float64(t.cfg.Dropout)))
	threshold := uint64(float64(t.cfg.Dropout) * 65536)
	base := mix(t.cfg.Seed ^ mix(t.key^mix(uint64(li)<<8|uint64(mod))))
	p.For((len(src)+3)/4, 1<<12, func(lo, hi int) {
		for q := lo; q < hi; q++ {
			h := mix(base + uint64(q))
			for i := 4 * q; i < min(4*q+4, len(src)); i++ {
				v := src[i] * keep
				if h&0xffff < threshold {
					v = 0
				}
				dst[i] = v
				h >>= 16
			}
		}
	})
}

// dropoutGrad adds the gradient dxd of the dropped-out input xd to dx,
// the gradient of the input x: dx += dxd·mask/(1−p). The mask is read off
// xd (a kept value is non-zero unless its input was zero); only zero inputs
// need the hash again.
func (t *Trainer) dropoutGrad(p *par.Pool, li int, mod model.Module, dx, dxd, xd, x []float32) {
	keep := float32(1 / (1 - float64(t.cfg.Dropout)))
	threshold := uint64(float64(t.cfg.Dropout) * 65536)
	base := mix(t.cfg.Seed ^ mix(t.key^mix(uint64(li)<<8|uint64(mod))))
	p.For(len(dx), 1<<14, func(lo, hi int) {
		dx, dxd, xd, x := dx[lo:hi], dxd[lo:hi], xd[lo:hi], x[lo:hi]
		for i, g := range dxd {
			kept := xd[i] != 0
			if x[i] == 0 {
				j := lo + i
				kept = (mix(base+uint64(j/4))>>(16*(j%4)))&0xffff >= threshold
			}
			if kept {
				dx[i] += g * keep
			}
		}
	})
}

// mix is the splitmix64 finaliser: a cheap, well-spread hash of a counter.
func mix(z uint64) uint64 {
	z += 0x9e3779b97f4a7c15
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}
