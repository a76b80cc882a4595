package ops

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/loraplex/loraplex/quant/par"
)

// The references below are written independently in float64; the gradients
// are checked against central finite differences of those references.

func randVec(r *rand.Rand, n int, scale float64) []float64 {
	v := make([]float64, n)
	for i := range v {
		v[i] = (r.Float64()*2 - 1) * scale
	}
	return v
}

func f32(v []float64) []float32 {
	o := make([]float32, len(v))
	for i, x := range v {
		o[i] = float32(x)
	}
	return o
}

// numGrad differentiates L = Σ dy·f() with respect to every element of p.
func numGrad(p, dy []float64, f func() []float64) []float64 {
	const h = 1e-6
	g := make([]float64, len(p))
	loss := func() float64 {
		var s float64
		for i, y := range f() {
			s += dy[i] * y
		}
		return s
	}
	for i := range p {
		old := p[i]
		p[i] = old + h
		lp := loss()
		p[i] = old - h
		lm := loss()
		p[i] = old
		g[i] = (lp - lm) / (2 * h)
	}
	return g
}

func near(t *testing.T, what string, got []float32, want []float64, tol float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: len %d, want %d", what, len(got), len(want))
	}
	for i := range want {
		if d := math.Abs(float64(got[i]) - want[i]); d > tol*(1+math.Abs(want[i])) || math.IsNaN(d) {
			t.Fatalf("%s[%d] = %g, want %g (diff %g)", what, i, got[i], want[i], d)
		}
	}
}

func rms64(x, w []float64, eps float64) []float64 {
	var ss float64
	for _, v := range x {
		ss += v * v
	}
	r := 1 / math.Sqrt(ss/float64(len(x))+eps)
	y := make([]float64, len(x))
	for i, v := range x {
		y[i] = v * r * w[i]
	}
	return y
}

func TestRMSNorm(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, d := range []int{1, 7, 64} {
		x, w, dy := randVec(r, d, 2), randVec(r, d, 1.5), randVec(r, d, 1)
		const eps = 1e-5
		y := make([]float32, d)
		RMSNorm(y, f32(x), f32(w), eps)
		near(t, "y", y, rms64(x, w, eps), 1e-5)

		dx, dw := make([]float32, d), make([]float32, d)
		RMSNormBackward(dx, dw, f32(dy), f32(x), f32(w), eps)
		f := func() []float64 { return rms64(x, w, eps) }
		near(t, "dx", dx, numGrad(x, dy, f), 1e-4)
		near(t, "dw", dw, numGrad(w, dy, f), 1e-4)
	}
}

// rope64 takes the angle as transformers' LlamaRotaryEmbedding does: a
// float32 product of float32 inverse frequency and position.
func rope64(x []float64, pos int, inv []float64) []float64 {
	h := len(inv)
	y := make([]float64, len(x))
	for i, f := range inv {
		a := float64(float32(f) * float32(pos))
		c, s := math.Cos(a), math.Sin(a)
		// rotate_half(x) = cat(-x[h:], x[:h])
		y[i] = x[i]*c - x[i+h]*s
		y[i+h] = x[i+h]*c + x[i]*s
	}
	return y
}

func TestRope(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	const d = 16
	inv := make([]float64, d/2)
	for i := range inv {
		inv[i] = 1 / math.Pow(10000, float64(2*i)/d)
	}
	cos, sin := make([]float32, d/2), make([]float32, d/2)
	for _, pos := range []int{0, 1, 7, 300, 100000} {
		RopeAngles(cos, sin, inv, pos)
		x, dy := randVec(r, d, 1), randVec(r, d, 1)
		y := f32(x)
		Rope(y, cos, sin)
		near(t, "rope", y, rope64(x, pos, inv), 1e-5)

		g := f32(dy)
		RopeInverse(g, cos, sin)
		near(t, "rope grad", g, numGrad(x, dy, func() []float64 { return rope64(x, pos, inv) }), 1e-4)

		RopeInverse(y, cos, sin)
		near(t, "round trip", y, x, 1e-5)
	}
}

func TestSwiGLU(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	const n = 150 // crosses SwiGLU's 64-value chunks
	g, u, dy := randVec(r, n, 6), randVec(r, n, 2), randVec(r, n, 1)
	ref := func() []float64 {
		y := make([]float64, n)
		for i := range y {
			y[i] = g[i] / (1 + math.Exp(-g[i])) * u[i]
		}
		return y
	}
	out := make([]float32, n)
	SwiGLU(out, f32(g), f32(u))
	near(t, "swiglu", out, ref(), 1e-5)
	inPlace := f32(g)
	SwiGLU(inPlace, inPlace, f32(u))
	near(t, "swiglu in place", inPlace, ref(), 1e-5)
	dg, du := make([]float32, n), make([]float32, n)
	SwiGLUBackward(dg, du, f32(dy), f32(g), f32(u))
	near(t, "dgate", dg, numGrad(g, dy, ref), 1e-4)
	near(t, "dup", du, numGrad(u, dy, ref), 1e-4)
}

func softmax64(x []float64) []float64 {
	m := math.Inf(-1)
	for _, v := range x {
		m = max(m, v)
	}
	y := make([]float64, len(x))
	var s float64
	for i, v := range x {
		y[i] = math.Exp(v - m)
		s += y[i]
	}
	for i := range y {
		y[i] /= s
	}
	return y
}

func TestSoftmax(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	x, dy := randVec(r, 20, 5), randVec(r, 20, 1)
	x[3] = 80 // would overflow exp without the max shift
	y := f32(x)
	Softmax(y)
	near(t, "softmax", y, softmax64(x), 1e-5)
	dx := make([]float32, len(x))
	SoftmaxBackward(dx, y, f32(dy))
	near(t, "dx", dx, numGrad(x, dy, func() []float64 { return softmax64(x) }), 1e-4)
}

func attention64(q, k, v []float64, T int, sh AttnShape) []float64 {
	qd, kd, d := sh.Heads*sh.HeadDim, sh.KVHeads*sh.HeadDim, sh.HeadDim
	out := make([]float64, T*qd)
	for h := 0; h < sh.Heads; h++ {
		kh := h / (sh.Heads / sh.KVHeads)
		for t := 0; t < T; t++ {
			s := make([]float64, t+1)
			for j := range s {
				for i := 0; i < d; i++ {
					s[j] += q[t*qd+h*d+i] * k[j*kd+kh*d+i]
				}
				s[j] /= math.Sqrt(float64(d))
			}
			p := softmax64(s)
			for j, w := range p {
				for i := 0; i < d; i++ {
					out[t*qd+h*d+i] += w * v[j*kd+kh*d+i]
				}
			}
		}
	}
	return out
}

// attentionSeqs64 runs attention64 on consecutive sequences of lens rows.
func attentionSeqs64(q, k, v []float64, lens []int, sh AttnShape) []float64 {
	qd, kd := sh.Heads*sh.HeadDim, sh.KVHeads*sh.HeadDim
	var out []float64
	r := 0
	for _, T := range lens {
		out = append(out, attention64(q[r*qd:(r+T)*qd], k[r*kd:(r+T)*kd], v[r*kd:(r+T)*kd], T, sh)...)
		r += T
	}
	return out
}

// dirGrad is the derivative of L = Σ dy·f() along the direction u of p, by
// central differences; it checks a gradient g through Σ g·u without
// differentiating every element.
func dirGrad(p, u, dy []float64, f func() []float64) float64 {
	const h = 1e-5
	old := append([]float64(nil), p...)
	loss := func(sign float64) float64 {
		for i := range p {
			p[i] = old[i] + sign*h*u[i]
		}
		var s float64
		for i, y := range f() {
			s += dy[i] * y
		}
		return s
	}
	d := (loss(1) - loss(-1)) / (2 * h)
	copy(p, old)
	return d
}

func TestAttention(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	for _, sh := range []AttnShape{{Heads: 4, KVHeads: 2, HeadDim: 8}, {Heads: 3, KVHeads: 3, HeadDim: 4}, {Heads: 4, KVHeads: 1, HeadDim: 2}} {
		sh.Scale = float32(1 / math.Sqrt(float64(sh.HeadDim)))
		// Short sequences: every gradient element by finite differences.
		// Long ones cross the 64-row query blocks (a ragged last block
		// included) and are checked along random directions.
		for _, lens := range [][]int{{5}, {3, 1, 4}, {70, 130}} {
			rows := 0
			for _, T := range lens {
				rows += T
			}
			qd, kd := sh.Heads*sh.HeadDim, sh.KVHeads*sh.HeadDim
			q, k, v, dy := randVec(r, rows*qd, 1.5), randVec(r, rows*kd, 1.5), randVec(r, rows*kd, 1), randVec(r, rows*qd, 1)
			ref := func() []float64 { return attentionSeqs64(q, k, v, lens, sh) }
			for _, p := range []*par.Pool{par.Serial, par.New(3)} {
				ws := new(AttnScratch)
				out, probs := make([]float32, rows*qd), make([]float32, AttnProbsLen(lens, sh))
				Attention(p, ws, out, probs, f32(q), f32(k), f32(v), lens, sh)
				near(t, "attention", out, ref(), 1e-5)

				dq, dk, dv := make([]float32, len(q)), make([]float32, len(k)), make([]float32, len(v))
				AttentionBackward(p, ws, dq, dk, dv, f32(dy), probs, f32(q), f32(k), f32(v), lens, sh)
				if rows < 16 {
					near(t, "dq", dq, numGrad(q, dy, ref), 1e-4)
					near(t, "dk", dk, numGrad(k, dy, ref), 1e-4)
					near(t, "dv", dv, numGrad(v, dy, ref), 1e-4)
					continue
				}
				for _, c := range []struct {
					name string
					x    []float64
					g    []float32
				}{{"dq", q, dq}, {"dk", k, dk}, {"dv", v, dv}} {
					u := randVec(r, len(c.x), 1)
					var got float64
					for i, g := range c.g {
						got += float64(g) * u[i]
					}
					near(t, c.name+" along a direction", []float32{float32(got)}, []float64{dirGrad(c.x, u, dy, ref)}, 1e-4)
				}
			}
		}
	}
}

func TestCrossEntropy(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	const n, vocab = 4, 9
	logits := randVec(r, n*vocab, 4)
	targets := []int32{3, IgnoreIndex, 8, 0}
	ref := func() []float64 {
		var s float64
		for i, tg := range targets {
			if tg < 0 {
				continue
			}
			p := softmax64(logits[i*vocab : (i+1)*vocab])
			s -= math.Log(p[tg])
		}
		return []float64{s / 3}
	}
	d := make([]float32, n*vocab)
	loss, count := CrossEntropy(d, f32(logits), vocab, targets)
	if count != 3 {
		t.Fatalf("count %d, want 3", count)
	}
	near(t, "loss", []float32{loss}, ref(), 1e-6)
	near(t, "dlogits", d, numGrad(logits, []float64{1}, ref), 1e-4)
	for j := 0; j < vocab; j++ {
		if d[vocab+j] != 0 {
			t.Fatalf("ignored row has gradient %g at %d", d[vocab+j], j)
		}
	}
	if l, c := CrossEntropy(nil, f32(logits), vocab, []int32{-1, -100, -1, -1}); l != 0 || c != 0 {
		t.Fatalf("all ignored: loss %g count %d, want 0 0", l, c)
	}
}

func TestLoRA(t *testing.T) {
	r := rand.New(rand.NewPCG(13, 14))
	const n, in, out, rank, scale = 3, 10, 7, 4, 2.0
	x, a, b, y0, dy := randVec(r, n*in, 1), randVec(r, rank*in, 1), randVec(r, out*rank, 1), randVec(r, n*out, 1), randVec(r, n*out, 1)
	ref := func() []float64 {
		y := append([]float64(nil), y0...)
		for i := 0; i < n; i++ {
			for o := 0; o < out; o++ {
				for j := 0; j < rank; j++ {
					var t float64
					for c := 0; c < in; c++ {
						t += x[i*in+c] * a[j*in+c]
					}
					y[i*out+o] += scale * b[o*rank+j] * t
				}
			}
		}
		return y
	}
	bt := make([]float32, rank*out)
	Transpose(bt, f32(b), out, rank)
	y, tt := f32(y0), make([]float32, n*rank)
	LoRA(y, tt, f32(x), f32(a), f32(b), n, in, out, rank, scale)
	near(t, "lora", y, ref(), 1e-5)
	y = f32(y0)
	LoRAT(y, tt, f32(x), f32(a), bt, n, in, out, rank, scale)
	near(t, "lora transposed", y, ref(), 1e-5)

	for _, p := range []*par.Pool{par.Serial, par.New(3)} {
		y, tb := f32(y0), make([]float32, n*rank)
		LoRABatch(p, y, tb, make([]float32, n*rank), f32(x), f32(a), bt, n, in, out, rank, scale)
		near(t, "lora batch", y, ref(), 1e-5)

		dx, da, dbt := make([]float32, n*in), make([]float32, rank*in), make([]float32, rank*out)
		LoRABackward(p, dx, da, dbt, make([]float32, 3*n*rank), f32(dy), f32(x), tb, f32(a), bt, n, in, out, rank, scale)
		near(t, "dx", dx, numGrad(x, dy, ref), 1e-4)
		near(t, "da", da, numGrad(a, dy, ref), 1e-4)
		db := make([]float32, out*rank)
		Transpose(db, dbt, rank, out)
		near(t, "db", db, numGrad(b, dy, ref), 1e-4)
	}
}

func TestExpf(t *testing.T) {
	worst := 0.0
	for x := -87.0; x <= 88.5; x += 0.00137 {
		got, want := float64(expf(float32(x))), math.Exp(float64(float32(x)))
		worst = max(worst, math.Abs(got-want)/want)
	}
	if worst > 3e-7 {
		t.Fatalf("expf relative error %g", worst)
	}
	for _, tc := range []struct{ x, want float32 }{{0, 1}, {-100, 0}, {-1e30, 0}} {
		if got := expf(tc.x); got != tc.want {
			t.Errorf("expf(%g) = %g, want %g", tc.x, got, tc.want)
		}
	}
	if !math.IsInf(float64(expf(100)), 1) || !math.IsNaN(float64(expf(float32(math.NaN())))) {
		t.Error("expf: overflow must give +Inf and NaN must stay NaN")
	}
}
