package ops

import (
	"math"

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

// LoRABackward accumulates dx, da and dbt (the gradient of Bᵀ, r×out) for
// LoRA or LoRAT given dy, bt = Bᵀ and the t that the forward produced. dt is
// r-long scratch. dx may be nil when the input gradient is not needed.
func LoRABackward(dx, da, dbt, dt, dy, x, t, a, bt []float32, n, in, out, r int, scale float32) {
	dt = dt[:r]
	for i := 0; i < n; i++ {
		dyi, ti, xi := dy[i*out:(i+1)*out], t[i*r:(i+1)*r], x[i*in:(i+1)*in]
		for j := range dt {
			dt[j] = scale * dot(dyi, bt[j*out:(j+1)*out]) // dt = scale·dy·B
			axpy(scale*ti[j], dyi, dbt[j*out:(j+1)*out])  // dBᵀ += scale·tᵀ·dy
			axpy(dt[j], xi, da[j*in:(j+1)*in])            // dA += dtᵀ·x
			if dx != nil {
				axpy(dt[j], a[j*in:(j+1)*in], dx[i*in:(i+1)*in]) // dx += dt·A
			}
		}
	}
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
