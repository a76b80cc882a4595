package ops

// DotRows writes s[t] = scale · q·k_t for the n contiguous key rows
// k_t = k[t·len(q):][:len(q)]: the scores of one query against one block
// of a paged KV cache. Where the CPU allows and len(q) is a multiple of 16
// it runs as one vector kernel call for the whole block, not one call per
// key, which is what decoding spends its attention time on.
func DotRows(s, q, k []float32, n int, scale float32) {
	d := len(q)
	if n <= 0 {
		return
	}
	s, k = s[:n], k[:n*d]
	if rowKernels && d%16 == 0 && d > 0 {
		dotRowsAsm(s, q, k, scale)
		return
	}
	for t := range s {
		s[t] = scale * dot(q, k[t*d:(t+1)*d])
	}
}

// AxpyRows accumulates out += Σ_t p[t]·v_t over the n contiguous value rows
// v_t = v[t·len(out):][:len(out)]: one block's share of an attention
// output. Like DotRows it is one kernel call per block.
func AxpyRows(out, p, v []float32, n int) {
	d := len(out)
	if n <= 0 {
		return
	}
	p, v = p[:n], v[:n*d]
	if rowKernels && d%16 == 0 && d > 0 {
		axpyRowsAsm(out, p, v)
		return
	}
	for t, w := range p {
		axpy(w, v[t*d:(t+1)*d], out)
	}
}
