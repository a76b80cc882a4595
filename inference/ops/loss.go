package ops

import (
	"math"

	"github.com/loraplex/loraplex/quant/vec"
)

// IgnoreIndex marks a target that contributes nothing to the loss, as -100
// does in PyTorch; any negative target is ignored.
const IgnoreIndex = -100

// CrossEntropy returns the mean negative log-likelihood of targets under
// softmax(logits) over the rows whose target is not negative, and how many
// rows counted. logits is len(targets)×vocab. When dlogits is not nil it
// receives the gradient of that mean: (softmax − onehot)/count on counted
// rows and 0 on ignored ones. Unlike the backward functions it overwrites
// dlogits rather than accumulating into it: each exponential is computed
// once, into dlogits, and then normalised in place. With no counted row the
// loss is 0.
func CrossEntropy(dlogits, logits []float32, vocab int, targets []int32) (loss float32, count int) {
	for _, t := range targets {
		if t >= 0 {
			count++
		}
	}
	if dlogits != nil {
		for i, t := range targets {
			if t < 0 {
				clear(dlogits[i*vocab : (i+1)*vocab])
			}
		}
	}
	if count == 0 {
		return 0, 0
	}
	var sum float64
	inv := 1 / float64(count)
	for i, t := range targets {
		if t < 0 {
			continue
		}
		row := logits[i*vocab : (i+1)*vocab]
		m := row[vec.MaxIndex(row)]
		var z float64
		if dlogits == nil {
			for _, v := range row {
				z += math.Exp(float64(v - m))
			}
		} else {
			// float32 exponentials through the vector kernel, summed in
			// float64: the exact path costs a large share of a training
			// step at a vocabulary of 32000.
			g := dlogits[i*vocab : (i+1)*vocab]
			for j, v := range row {
				g[j] = v - m
			}
			expSlice(g)
			z = sum64(g)
			vec.Scale(float32(inv/z), g)
			g[t] -= float32(inv)
		}
		sum += float64(m) + math.Log(z) - float64(row[t])
	}
	return float32(sum / float64(count)), count
}

// sum64 returns Σ x in float64, over four independent chains.
func sum64(x []float32) float64 {
	var s [4]float64
	i := 0
	for ; i+4 <= len(x); i += 4 {
		q := x[i : i+4 : i+4]
		s[0] += float64(q[0])
		s[1] += float64(q[1])
		s[2] += float64(q[2])
		s[3] += float64(q[3])
	}
	for ; i < len(x); i++ {
		s[0] += float64(x[i])
	}
	return (s[0] + s[1]) + (s[2] + s[3])
}
