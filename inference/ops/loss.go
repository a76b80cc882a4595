package ops

import "math"

// IgnoreIndex marks a target that contributes nothing to the loss, as -100
// does in PyTorch; any negative target is ignored.
const IgnoreIndex = -100

// CrossEntropy returns the mean negative log-likelihood of targets under
// softmax(logits) over the rows whose target is not negative, and how many
// rows counted. logits is len(targets)×vocab. When dlogits is not nil it
// accumulates the gradient of that mean: (softmax − onehot)/count per counted
// row. With no counted row the loss is 0.
func CrossEntropy(dlogits, logits []float32, vocab int, targets []int32) (loss float32, count int) {
	for _, t := range targets {
		if t >= 0 {
			count++
		}
	}
	if count == 0 {
		return 0, 0
	}
	var sum float64
	inv := 1 / float32(count)
	for i, t := range targets {
		if t < 0 {
			continue
		}
		row := logits[i*vocab : (i+1)*vocab]
		m := row[0]
		for _, v := range row[1:] {
			m = max(m, v)
		}
		var z float64
		for _, v := range row {
			z += math.Exp(float64(v - m))
		}
		lse := float64(m) + math.Log(z)
		sum += lse - float64(row[t])
		if dlogits != nil {
			g := dlogits[i*vocab : (i+1)*vocab]
			for j, v := range row {
				g[j] += float32(math.Exp(float64(v)-lse)) * inv
			}
			g[t] -= inv
		}
	}
	return float32(sum / float64(count)), count
}
