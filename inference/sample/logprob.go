package sample

import "math"

// TokenLogprob is one token with its log-probability.
type TokenLogprob struct {
	ID      int32
	Logprob float32
}

// LogSumExp returns log Σ exp(x[i]), accumulated in float64 around the
// maximum so that large logits neither overflow nor lose precision. A token's
// log-probability is then x[id] - LogSumExp(x).
func LogSumExp(x []float32) float32 {
	if len(x) == 0 {
		return float32(math.Inf(-1))
	}
	mx := float64(x[Argmax(x)])
	if math.IsInf(mx, 0) || math.IsNaN(mx) {
		return float32(mx)
	}
	var sum float64
	for _, v := range x {
		sum += math.Exp(float64(v) - mx)
	}
	return float32(mx + math.Log(sum))
}

// Logprob returns log softmax(x)[id] given lse = LogSumExp(x).
func Logprob(x []float32, lse float32, id int32) float32 {
	return x[id] - lse
}

// TopLogprobs appends the n most likely tokens of x to dst, most likely
// first (ties to the lower id), given lse = LogSumExp(x). It allocates
// nothing when dst has room for n more entries.
func TopLogprobs(dst []TokenLogprob, x []float32, lse float32, n int) []TokenLogprob {
	n = min(n, len(x))
	if n <= 0 {
		return dst
	}
	base := len(dst)
	top := dst
	// Keep top[base:] sorted descending by logit; insert when a value
	// beats the current n-th.
	for i, v := range x {
		k := len(top) - base
		if k == n && !(v > top[len(top)-1].Logprob) {
			continue
		}
		if k < n {
			top = append(top, TokenLogprob{})
		}
		j := len(top) - 1
		for j > base && v > top[j-1].Logprob {
			top[j] = top[j-1]
			j--
		}
		top[j] = TokenLogprob{ID: int32(i), Logprob: v}
	}
	for j := base; j < len(top); j++ {
		top[j].Logprob -= lse
	}
	return top
}
