package sample

import (
	"cmp"
	"math"
	"math/rand/v2"
	"slices"
)

// Sampler draws tokens for one sequence. It is not safe for concurrent use.
type Sampler struct {
	p         Params
	rng       *rand.Rand
	promptLen int

	// Scratch reused across calls, grown to the vocabulary size once.
	logits []float32               // adjusted logits
	probs  []float64               // unnormalised probabilities after temperature
	idx    []int32                 // candidate token ids
	counts []int32                 // per-token occurrence counts, all zero between calls
	mass   [nucleusBuckets]float64 // top-p mass per distance bin
}

// New returns a sampler for p. With p.Seed set, two samplers given the same
// logits draw the same tokens; otherwise the seed is random.
func New(p Params) *Sampler {
	seed := rand.Uint64()
	if p.Seed != nil {
		seed = uint64(*p.Seed)
	}
	// The second PCG word is a fixed odd constant so that seed alone picks the stream.
	return &Sampler{p: p, rng: rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15))}
}

// SetPromptLen tells the sampler that the first n tokens of every history
// passed to Sample are the prompt: the repetition penalty covers them, the
// presence and frequency penalties only cover what follows.
func (s *Sampler) SetPromptLen(n int) { s.promptLen = n }

// Sample picks the next token from one row of logits (one per vocabulary
// entry; not modified). history is the prompt followed by the tokens
// generated so far (see SetPromptLen); it feeds the penalties. Ids in
// history outside the vocabulary are ignored.
func (s *Sampler) Sample(logits []float32, history []int32) int32 {
	v := len(logits)
	if v == 0 {
		return 0
	}
	s.grow(v)
	x := s.logits[:v]
	copy(x, logits)
	s.adjust(x, history)
	if s.p.Greedy() {
		return Argmax(x)
	}
	return s.draw(x)
}

func (s *Sampler) grow(v int) {
	if cap(s.logits) < v {
		s.logits = make([]float32, v)
		s.probs = make([]float64, v)
		s.idx = make([]int32, v)
		s.counts = make([]int32, v)
	}
}

// adjust applies logit bias, then the repetition penalty, then presence and
// frequency penalties, the order vLLM uses.
func (s *Sampler) adjust(x []float32, history []int32) {
	for id, b := range s.p.LogitBias {
		if int(id) < len(x) && id >= 0 {
			x[id] += b
		}
	}
	v := int32(len(x))
	if r := s.p.RepetitionPenalty; r > 0 && r != 1 {
		for _, t := range history {
			if t < 0 || t >= v || s.counts[t] != 0 {
				continue
			}
			s.counts[t] = 1
			if x[t] > 0 {
				x[t] /= r
			} else {
				x[t] *= r
			}
		}
		s.clearCounts(history)
	}
	pres, freq := s.p.PresencePenalty, s.p.FrequencyPenalty
	if pres == 0 && freq == 0 {
		return
	}
	gen := history[min(s.promptLen, len(history)):]
	for _, t := range gen {
		if t >= 0 && t < v {
			s.counts[t]++
		}
	}
	for _, t := range gen {
		if t < 0 || t >= v || s.counts[t] == 0 {
			continue
		}
		x[t] -= pres + freq*float32(s.counts[t])
		s.counts[t] = 0 // later occurrences of t are already accounted for
	}
}

func (s *Sampler) clearCounts(history []int32) {
	for _, t := range history {
		if t >= 0 && int(t) < len(s.counts) {
			s.counts[t] = 0
		}
	}
}

// draw samples from softmax(x/T) restricted by top-k, then top-p, then
// min-p, the order of Hugging Face's warpers: top-p measures mass within the
// top-k set; min-p compares with the most likely token.
func (s *Sampler) draw(x []float32) int32 {
	best := Argmax(x)
	if mx := float64(x[best]); math.IsInf(mx, 0) || math.IsNaN(mx) {
		return best
	}
	cand, p := s.candidates(x, float64(x[best]))
	var total float64
	for _, i := range cand {
		total += p[i]
	}
	u := s.rng.Float64() * total
	for _, i := range cand {
		u -= p[i]
		if u < 0 {
			return i
		}
	}
	return cand[len(cand)-1] // rounding left u ≥ 0 after the last candidate
}

// candidates returns the tokens that survive the filters, and the
// unnormalised probabilities exp((x-mx)/T) they are drawn with.
func (s *Sampler) candidates(x []float32, mx float64) ([]int32, []float64) {
	invT := 1 / float64(s.p.Temperature)
	p := s.probs[:len(x)]
	// Top-k goes first, on the logits, so only k exponentials are needed.
	cand := s.idx[:0]
	if k := s.p.TopK; k > 0 && k < len(x) {
		cand = topK(cand, x, k)
	} else {
		for i := range x {
			cand = append(cand, int32(i))
		}
	}
	kept := cand[:0]
	for _, i := range cand {
		// Computing in float64 from the shifted logit keeps a tiny
		// temperature from overflowing to Inf.
		e := math.Exp((float64(x[i]) - mx) * invT)
		p[i] = e
		if e > 0 {
			kept = append(kept, i)
		}
	}
	cand = kept
	byProb := func(a, b int32) int {
		if c := cmp.Compare(p[b], p[a]); c != 0 {
			return c
		}
		return cmp.Compare(a, b)
	}
	if tp := float64(s.p.TopP); tp > 0 && tp < 1 {
		cand = s.nucleus(cand, p, tp, x, mx, invT, byProb)
	}
	// p is relative to the best token (p[best] == 1), which every filter keeps.
	if m := float64(s.p.MinP); m > 0 {
		cand = filter(cand, p, m)
	}
	return cand, p
}

// filter keeps the candidates whose probability is at least floor.
func filter(cand []int32, p []float64, floor float64) []int32 {
	out := cand[:0]
	for _, i := range cand {
		if p[i] >= floor {
			out = append(out, i)
		}
	}
	return out
}

// topK appends to dst the ids of the k largest logits (ties to the lower
// id; NaN never qualifies), in no particular order. A k-entry min-heap keeps
// it to one comparison for most of the vocabulary.
func topK(dst []int32, x []float32, k int) []int32 {
	h := dst[:0]
	// worse reports whether a ranks below b.
	worse := func(a, b int32) bool { return x[a] < x[b] || x[a] == x[b] && a > b }
	down := func(i int) {
		for {
			c := 2*i + 1
			if c >= len(h) {
				return
			}
			if c+1 < len(h) && worse(h[c+1], h[c]) {
				c++
			}
			if !worse(h[c], h[i]) {
				return
			}
			h[i], h[c] = h[c], h[i]
			i = c
		}
	}
	for i, v := range x {
		if v != v {
			continue
		}
		id := int32(i)
		if len(h) < k {
			h = append(h, id)
			for j := len(h) - 1; j > 0; {
				parent := (j - 1) / 2
				if !worse(h[j], h[parent]) {
					break
				}
				h[j], h[parent] = h[parent], h[j]
				j = parent
			}
			continue
		}
		if v > x[h[0]] {
			h[0] = id
			down(0)
		}
	}
	return h
}

// Nucleus buckets: candidates are binned by their scaled distance from the
// best logit, d = (max-x)/T, in steps of 1/bucketsPerNat, so the bin where
// the cumulative mass crosses top-p is found without sorting; only that bin
// is sorted. Distances beyond the last bin (probability below e^-64 of the
// best) share it.
const (
	nucleusBuckets = 1024
	bucketsPerNat  = 16
	// Below this many candidates a plain sort is cheaper than binning.
	nucleusSortMax = 256
)

// nucleus keeps the shortest run of most likely candidates whose mass
// reaches tp of the candidates' total: a candidate stays when the mass of
// those ranked before it is below tp·total.
func (s *Sampler) nucleus(cand []int32, p []float64, tp float64, x []float32, mx, invT float64, byProb func(a, b int32) int) []int32 {
	var total float64
	for _, i := range cand {
		total += p[i]
	}
	need := tp * total
	keepPrefix := func(sorted []int32, cum float64) int {
		for k, i := range sorted {
			if cum >= need {
				return k
			}
			cum += p[i]
		}
		return len(sorted)
	}
	if len(cand) <= nucleusSortMax {
		slices.SortFunc(cand, byProb)
		return cand[:keepPrefix(cand, 0)]
	}
	bucket := func(i int32) int {
		return min(int((mx-float64(x[i]))*invT*bucketsPerNat), nucleusBuckets-1)
	}
	mass := &s.mass
	clear(mass[:])
	for _, i := range cand {
		mass[bucket(i)] += p[i]
	}
	// Every candidate in a bin before the crossing bin is ranked before
	// every one in it, and every one after it has at least need before it.
	var cum float64
	cross := 0
	for ; cross < nucleusBuckets-1 && cum+mass[cross] < need; cross++ {
		cum += mass[cross]
	}
	head := 0
	for k, i := range cand {
		if bucket(i) < cross {
			cand[head], cand[k] = cand[k], cand[head]
			head++
		}
	}
	end := head
	for k := head; k < len(cand); k++ {
		if bucket(cand[k]) == cross {
			cand[end], cand[k] = cand[k], cand[end]
			end++
		}
	}
	bin := cand[head:end]
	slices.SortFunc(bin, byProb)
	return cand[:head+keepPrefix(bin, cum)]
}

// Argmax returns the index of the largest value, the lowest on ties; NaN
// never wins.
func Argmax(x []float32) int32 {
	best := 0
	for i, v := range x {
		if v > x[best] || (x[best] != x[best] && v == v) {
			best = i
		}
	}
	return int32(best)
}
