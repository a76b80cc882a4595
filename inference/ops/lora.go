package ops

import (
	"math"

	"github.com/loraplex/loraplex/quant"
	"github.com/loraplex/loraplex/quant/par"
	"github.com/loraplex/loraplex/quant/vec"
)

// LoRA adds the unmerged low-rank update scale·(x·Aᵀ)·Bᵀ to y for n rows.
// x is n×in, y is n×out, a is r×in (PEFT lora_A), b is out×r (lora_B). t
// (n×r) receives x·Aᵀ, which LoRABackward needs. It reads B once per row,
// which suits decoding; LoRAT suits many rows.
func LoRA(y, t, x, a, b []float32, n, in, out, r int, scale float32) {
	for i := 0; i < n; i++ {
		xi, ti, yi := x[i*in:(i+1)*in], t[i*r:(i+1)*r], y[i*out:(i+1)*out]
		for j := range ti {
			ti[j] = dot(xi, a[j*in:(j+1)*in])
		}
		for o := range yi {
			yi[o] += scale * dot(ti, b[o*r:(o+1)*r])
		}
	}
}

// LoRAT is LoRA with B given transposed as bt (r×out, see Transpose), which
// turns the second product into r vector updates per row: faster once the
// transpose is shared by several rows.
func LoRAT(y, t, x, a, bt []float32, n, in, out, r int, scale float32) {
	for i := 0; i < n; i++ {
		xi, ti, yi := x[i*in:(i+1)*in], t[i*r:(i+1)*r], y[i*out:(i+1)*out]
		for j := range ti {
			ti[j] = dot(xi, a[j*in:(j+1)*in])
			axpy(scale*ti[j], bt[j*out:(j+1)*out], yi)
		}
	}
}

// LoRABatch is LoRAT for many rows at once, as two matrix products on the
// quant kernels split over p: t = x·Aᵀ, then y += (scale·t)·Bᵀ. ts (n×r)
// is scratch. It sums in another order than LoRAT.
func LoRABatch(p *par.Pool, y, t, ts, x, a, bt []float32, n, in, out, r int, scale float32) {
	t, ts = t[:n*r], ts[:n*r]
	quant.NewF32(r, in, a).MulT(p, t, x, n)
	for i, v := range t {
		ts[i] = scale * v
	}
	quant.NewF32(r, out, bt).MulGrad(p, y, ts, n)
}

// LoRABackward accumulates dx, da and dbt (the gradient of Bᵀ, r×out) for
// LoRA, LoRAT or LoRABatch over n rows given dy, bt = Bᵀ and the t that
// the forward pass produced, as four matrix products on the quant kernels
// split over p:
//
//	dt = scale·dy·B, dx += dt·A, dA += dtᵀ·x, dBᵀ += scale·tᵀ·dy.
//
// scratch holds at least 3·n·r values. dx may be nil when the input
// gradient is not needed.
func LoRABackward(p *par.Pool, dx, da, dbt, scratch, dy, x, t, a, bt []float32, n, in, out, r int, scale float32) {
	dt, dtT, tT := scratch[:n*r], scratch[n*r:2*n*r], scratch[2*n*r:3*n*r]
	quant.NewF32(r, out, bt).MulT(p, dt, dy, n)
	for i, v := range dt {
		dt[i] = scale * v
	}
	if dx != nil {
		quant.NewF32(r, in, a).MulGrad(p, dx, dt, n)
	}
	Transpose(dtT, dt, n, r)
	quant.NewF32(n, in, x).MulGrad(p, da, dtT, r)
	Transpose(tT, t, n, r)
	for i, v := range tT {
		tT[i] = scale * v
	}
	quant.NewF32(n, out, dy).MulGrad(p, dbt, tT, r)
}

// Transpose writes the cols×rows transpose of the rows×cols matrix src to dst.
func Transpose(dst, src []float32, rows, cols int) {
	dst, src = dst[:rows*cols], src[:rows*cols]
	for i := 0; i < rows; i++ {
		for j, v := range src[i*cols : (i+1)*cols] {
			dst[j*rows+i] = v
		}
	}
}

// DoRAScale computes DoRA's magnitude rescale (PEFT's mag_norm_scale) for
// outputs [lo, hi): dst[o] = mag[o] / ‖W[o,:] + scale·B[o,:]·A‖₂, the
// magnitude over the norm of the adapted weight's row. row(w, o) writes base
// row o (in values, dequantized where the base is quantized) into w, which
// is in-long scratch. A zero-norm row gives ±Inf or NaN, for the caller to
// reject. The result is constant for a given base, so it is computed once.
func DoRAScale(dst, mag, a, b, w []float32, row func(dst []float32, o int), lo, hi, in, r int, scale float32) {
	w = w[:in]
	for o := lo; o < hi; o++ {
		row(w, o)
		for j, bj := range b[o*r : (o+1)*r] {
			axpy(scale*bj, a[j*in:(j+1)*in], w)
		}
		dst[o] = mag[o] / float32(math.Sqrt(float64(vec.SumSq(w))))
	}
}
