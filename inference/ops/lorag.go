package ops

// loraBlock is how many rows of one adapter group the group kernels take
// at once: each A and Bᵀ value loaded serves that many rows, and 4 rows × 2
// vectors of accumulators fill the fused multiply-add pipelines.
const loraBlock = 4

// LoRAGroup16 is LoRAT16 for n rows that share one adapter, as two small
// matrix products per block of up to four rows: T = x·Aᵀ, then y += T·Bᵀ,
// with A and Bᵀ (bfloat16 bits) streamed once per block instead of once per
// row and each output vector kept in a register across the whole rank. A
// lone row (the last of a group, or a group of one) takes LoRAT16, which
// streams them once for it without the block's spare lanes. t (n×r) is
// scratch. It sums in another order than LoRAT16.
func LoRAGroup16(y, t, x []float32, a, bt []uint16, n, in, out, r int, scale float32) {
	a, bt = a[:r*in], bt[:r*out]
	for lo := 0; lo < n; lo += loraBlock {
		nb := min(loraBlock, n-lo)
		yb, tb, xb := y[lo*out:(lo+nb)*out], t[lo*r:(lo+nb)*r], x[lo*in:(lo+nb)*in]
		if nb == 1 {
			LoRAT16(yb, tb, xb, a, bt, 1, in, out, r, scale)
			continue
		}
		loraDown16(tb, xb, a, nb, in, r)
		for i := range tb {
			tb[i] *= scale
		}
		loraUp16(yb, tb, bt, nb, out, r)
	}
}

// LoRAGroup is LoRAGroup16 with float32 A (r×in) and Bᵀ (r×out): the rows
// of a block take turns on each row of A and Bᵀ while it is in cache.
func LoRAGroup(y, t, x, a, bt []float32, n, in, out, r int, scale float32) {
	a, bt = a[:r*in], bt[:r*out]
	for lo := 0; lo < n; lo += loraBlock {
		nb := min(loraBlock, n-lo)
		for j := range r {
			aj := a[j*in : (j+1)*in]
			for i := lo; i < lo+nb; i++ {
				t[i*r+j] = scale * dot(x[i*in:(i+1)*in], aj)
			}
		}
		for j := range r {
			bj := bt[j*out : (j+1)*out]
			for i := lo; i < lo+nb; i++ {
				axpy(t[i*r+j], bj, y[i*out:(i+1)*out])
			}
		}
	}
}

// loraDown16 sets t[i·r+j] = Σ_k a[j·in+k]·x[i·in+k] for nb ≤ 4 rows.
func loraDown16(t, x []float32, a []uint16, nb, in, r int) {
	k0 := 0
	if v := in &^ 15; rowKernels && v > 0 {
		loraDown16AVX512(t, x, a, nb, in, v, r)
		k0 = v
	} else {
		clear(t[:nb*r])
	}
	loraDown16Go(t, x, a, nb, in, k0, r)
}

// loraDown16Go adds the columns [k0, in) of loraDown16's sums to t.
func loraDown16Go(t, x []float32, a []uint16, nb, in, k0, r int) {
	for j := range r {
		aj := a[j*in+k0 : (j+1)*in]
		for i := range nb {
			xi := x[i*in+k0 : (i+1)*in]
			var s float32
			for k, h := range aj {
				s += bf16ToF32(h) * xi[k]
			}
			t[i*r+j] += s
		}
	}
}

// loraUp16 adds Σ_j t[i·r+j]·bt[j·out+o] to y[i·out+o] for nb ≤ 4 rows.
func loraUp16(y, t []float32, bt []uint16, nb, out, r int) {
	o0 := 0
	if v := out &^ 15; rowKernels && v > 0 {
		loraUp16AVX512(y, t, bt, nb, out, v, r)
		o0 = v
	}
	loraUp16Go(y, t, bt, nb, out, o0, r)
}

// loraUp16Go is loraUp16 for the outputs [o0, out).
func loraUp16Go(y, t []float32, bt []uint16, nb, out, o0, r int) {
	for i := range nb {
		yi, ti := y[i*out+o0:(i+1)*out], t[i*r:(i+1)*r]
		for j, tj := range ti {
			for o, h := range bt[j*out+o0 : (j+1)*out] {
				yi[o] += tj * bf16ToF32(h)
			}
		}
	}
}
