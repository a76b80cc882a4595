package sample

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

func lnProbs(ps ...float64) []float32 {
	x := make([]float32, len(ps))
	for i, p := range ps {
		x[i] = float32(math.Log(p))
	}
	return x
}

func TestGreedy(t *testing.T) {
	nan := float32(math.NaN())
	for _, c := range []struct {
		name   string
		logits []float32
		p      Params
		want   int32
	}{
		{"argmax", []float32{1, 3, 2}, Params{}, 1},
		{"tie to lowest id", []float32{2, 5, 5, 1}, Params{}, 1},
		{"nan never wins", []float32{nan, -1, -2}, Params{}, 1},
		{"bias promotes", []float32{1, 3, 2}, Params{LogitBias: map[int32]float32{0: 5}}, 0},
		{"bias bans", []float32{1, 3, 2}, Params{LogitBias: map[int32]float32{1: -100}}, 2},
		// Filters never drop the best token, so they do not change greedy.
		{"filters ignored", []float32{1, 3, 2}, Params{TopK: 1, TopP: 0.1, MinP: 0.9}, 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := New(c.p).Sample(c.logits, nil); got != c.want {
				t.Errorf("Sample = %d, want %d", got, c.want)
			}
		})
	}
}

// TestAdjust checks the penalties against values worked out by hand.
func TestAdjust(t *testing.T) {
	for _, c := range []struct {
		name      string
		p         Params
		promptLen int
		history   []int32
		logits    []float32
		want      []float32
	}{
		{
			name:    "repetition divides positive, multiplies negative, once per distinct token",
			p:       Params{RepetitionPenalty: 2},
			history: []int32{0, 1, 0, 1, 7, -3}, // out-of-vocabulary ids are ignored
			logits:  []float32{2, -1, 1.5, 0.5},
			want:    []float32{1, -2, 1.5, 0.5},
		},
		{
			name:      "presence and frequency count generated tokens only",
			p:         Params{PresencePenalty: 0.25, FrequencyPenalty: 0.5},
			promptLen: 2,
			history:   []int32{0, 2, 1, 1, 2},
			logits:    []float32{3, 2.5, 1, 0},
			// token 1: twice → 2.5 - 0.25 - 1; token 2: once → 1 - 0.25 - 0.5; token 0 only in the prompt.
			want: []float32{3, 1.25, 0.25, 0},
		},
		{
			name:      "negative penalties encourage repeats",
			p:         Params{PresencePenalty: -1, FrequencyPenalty: -0.5},
			promptLen: 0,
			history:   []int32{3, 3, 3},
			logits:    []float32{0, 0, 0, 0},
			want:      []float32{0, 0, 0, 2.5},
		},
		{
			name:      "bias then repetition then frequency",
			p:         Params{LogitBias: map[int32]float32{1: 3}, RepetitionPenalty: 4, FrequencyPenalty: 1},
			promptLen: 1,
			history:   []int32{2, 1},
			logits:    []float32{0, 1, -1},
			// token 1: (1+3)/4 - 1 = 0; token 2: -1·4 = -4 (prompt only, no frequency).
			want: []float32{0, 0, -4},
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := New(c.p)
			s.SetPromptLen(c.promptLen)
			s.grow(len(c.logits))
			x := slices.Clone(c.logits)
			s.adjust(x, c.history)
			if !slices.Equal(x, c.want) {
				t.Errorf("adjusted logits = %v, want %v", x, c.want)
			}
			// Scratch counts must be clean for the next call.
			if slices.ContainsFunc(s.counts, func(c int32) bool { return c != 0 }) {
				t.Errorf("counts not reset: %v", s.counts)
			}
		})
	}
}

// TestDistribution draws many tokens with a fixed seed and compares the
// frequencies with hand-computed probabilities by Pearson's chi-square.
func TestDistribution(t *testing.T) {
	base := lnProbs(0.1, 0.2, 0.3, 0.4)
	s2 := 1 + math.Sqrt2 + math.Sqrt(3) + 2
	for _, c := range []struct {
		name string
		p    Params
		want []float64
	}{
		{"T=1", Params{Temperature: 1}, []float64{0.1, 0.2, 0.3, 0.4}},
		{"T=0.5 squares", Params{Temperature: 0.5}, []float64{1.0 / 30, 4.0 / 30, 9.0 / 30, 16.0 / 30}},
		{"T=2 square roots", Params{Temperature: 2}, []float64{1 / s2, math.Sqrt2 / s2, math.Sqrt(3) / s2, 2 / s2}},
		{"top-k 2", Params{Temperature: 1, TopK: 2}, []float64{0, 0, 3.0 / 7, 4.0 / 7}},
		{"top-p 0.6", Params{Temperature: 1, TopP: 0.6}, []float64{0, 0, 3.0 / 7, 4.0 / 7}},
		{"top-p 0.75", Params{Temperature: 1, TopP: 0.75}, []float64{0, 2.0 / 9, 3.0 / 9, 4.0 / 9}},
		// Within the top-3 (mass 0.9), 0.65 of it is 0.585: 0.4+0.3 reaches it.
		{"top-k 3 then top-p 0.65", Params{Temperature: 1, TopK: 3, TopP: 0.65}, []float64{0, 0, 3.0 / 7, 4.0 / 7}},
		{"min-p 0.6", Params{Temperature: 1, MinP: 0.6}, []float64{0, 0, 3.0 / 7, 4.0 / 7}},
		{"min-p 0.4", Params{Temperature: 1, MinP: 0.4}, []float64{0, 2.0 / 9, 3.0 / 9, 4.0 / 9}},
		{"bias shifts mass", Params{Temperature: 1, LogitBias: map[int32]float32{0: float32(math.Log(4))}}, []float64{0.4 / 1.3, 0.2 / 1.3, 0.3 / 1.3, 0.4 / 1.3}},
	} {
		t.Run(c.name, func(t *testing.T) {
			seed := int64(12345)
			c.p.Seed = &seed
			s := New(c.p)
			const n = 20000
			counts := make([]float64, len(base))
			for range n {
				counts[s.Sample(base, nil)]++
			}
			chi2 := 0.0
			for i, p := range c.want {
				if p == 0 {
					if counts[i] != 0 {
						t.Fatalf("token %d drawn %v times, want never", i, counts[i])
					}
					continue
				}
				d := counts[i] - n*p
				chi2 += d * d / (n * p)
			}
			// df ≤ 3: P(χ² > 30) < 1e-5, so only a real bias fails this.
			if chi2 > 30 {
				t.Errorf("counts %v vs probabilities %v: chi-square %.1f > 30", counts, c.want, chi2)
			}
		})
	}
}

func TestSeedReproducible(t *testing.T) {
	x := lnProbs(0.05, 0.15, 0.2, 0.25, 0.35)
	draw := func(seed int64) []int32 {
		s := New(Params{Temperature: 1, Seed: &seed})
		out := make([]int32, 64)
		for i := range out {
			out[i] = s.Sample(x, nil)
		}
		return out
	}
	a, b, c := draw(7), draw(7), draw(8)
	if !slices.Equal(a, b) {
		t.Errorf("same seed gave %v and %v", a, b)
	}
	if slices.Equal(a, c) {
		t.Errorf("seeds 7 and 8 gave the same 64 tokens %v", a)
	}
}

// refKeep is the straightforward reference for the filters: sort every
// token by probability and apply top-k, top-p, min-p in turn.
func refKeep(x []float32, p Params) []int32 {
	mx := float64(x[Argmax(x)])
	prob := make([]float64, len(x))
	ids := make([]int32, len(x))
	for i := range x {
		prob[i] = math.Exp((float64(x[i]) - mx) / float64(p.Temperature))
		ids[i] = int32(i)
	}
	slices.SortStableFunc(ids, func(a, b int32) int {
		switch {
		case prob[a] > prob[b]:
			return -1
		case prob[a] < prob[b]:
			return 1
		}
		return 0
	})
	if p.TopK > 0 && p.TopK < len(ids) {
		ids = ids[:p.TopK]
	}
	if p.TopP > 0 && p.TopP < 1 {
		var total, cum float64
		for _, i := range ids {
			total += prob[i]
		}
		for k, i := range ids {
			if cum >= float64(p.TopP)*total {
				ids = ids[:k]
				break
			}
			cum += prob[i]
		}
	}
	out := ids[:0]
	for _, i := range ids {
		if prob[i] >= float64(p.MinP) {
			out = append(out, i)
		}
	}
	slices.Sort(out)
	return out
}

// TestFiltersMatchReference compares the candidate set of the selection and
// threshold shortcuts with full sorting on random logits.
func TestFiltersMatchReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for trial := range 300 {
		v := 1 + rng.IntN(300)
		if trial%2 == 0 {
			v += rng.IntN(3000) // past the size where top-p bins instead of sorting
		}
		x := make([]float32, v)
		for i := range x {
			x[i] = float32(rng.NormFloat64() * 3)
			if rng.IntN(8) == 0 && i > 0 {
				x[i] = x[i-1] // ties
			}
		}
		p := Params{Temperature: 0.3 + rng.Float32()*2}
		switch trial % 4 {
		case 0:
			p.TopK = 1 + rng.IntN(v)
		case 1:
			p.TopP = rng.Float32()
		case 2:
			p.MinP = rng.Float32() * 0.5
		case 3:
			p.TopK, p.TopP, p.MinP = 1+rng.IntN(v), rng.Float32(), rng.Float32()*0.2
		}
		want := refKeep(x, p)
		s := New(p)
		s.grow(v)
		got := keep(s, x)
		if !slices.Equal(got, want) {
			t.Fatalf("trial %d (v=%d %+v): kept %v, want %v", trial, v, p, got, want)
		}
	}
}

// keep returns the ids that survive the filters, sorted.
func keep(s *Sampler, x []float32) []int32 {
	cand, _ := s.candidates(x, float64(x[Argmax(x)]))
	return slices.Sorted(slices.Values(cand))
}

func TestSampleAllocatesNothing(t *testing.T) {
	seed := int64(3)
	s := New(Params{Temperature: 0.8, TopK: 40, TopP: 0.9, MinP: 0.01, Seed: &seed,
		PresencePenalty: 0.5, FrequencyPenalty: 0.5, RepetitionPenalty: 1.1, LogitBias: map[int32]float32{5: 2}})
	rng := rand.New(rand.NewPCG(4, 5))
	x := make([]float32, 1000)
	for i := range x {
		x[i] = float32(rng.NormFloat64())
	}
	hist := []int32{1, 2, 3, 5, 5, 9}
	s.SetPromptLen(2)
	if n := testing.AllocsPerRun(50, func() { s.Sample(x, hist) }); n != 0 {
		t.Errorf("Sample allocates %v times per call, want 0", n)
	}
}

func TestValidate(t *testing.T) {
	for _, c := range []struct {
		name string
		p    Params
		ok   bool
	}{
		{"zero", Params{}, true},
		{"typical", Params{Temperature: 0.7, TopP: 0.9, TopK: 40, MinP: 0.05, PresencePenalty: 2, FrequencyPenalty: -2, RepetitionPenalty: 1.2, LogitBias: map[int32]float32{3: -100}}, true},
		{"negative temperature", Params{Temperature: -1}, false},
		{"nan temperature", Params{Temperature: float32(math.NaN())}, false},
		{"top_p above 1", Params{TopP: 1.5}, false},
		{"negative top_k", Params{TopK: -1}, false},
		{"presence out of range", Params{PresencePenalty: 2.5}, false},
		{"bias out of range", Params{LogitBias: map[int32]float32{1: 101}}, false},
		{"bias id outside vocab", Params{LogitBias: map[int32]float32{10: 1}}, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			if err := c.p.Validate(10); (err == nil) != c.ok {
				t.Errorf("Validate = %v, want ok=%v", err, c.ok)
			}
		})
	}
}

func TestLogprobs(t *testing.T) {
	x := lnProbs(0.1, 0.2, 0.3, 0.4)
	for i := range x {
		x[i] += 5 // shift-invariant
	}
	lse := LogSumExp(x)
	if got := Logprob(x, lse, 2); math.Abs(float64(got)-math.Log(0.3)) > 1e-6 {
		t.Errorf("Logprob = %v, want ln 0.3 = %v", got, math.Log(0.3))
	}
	if got := LogSumExp([]float32{1000, 1000}); math.Abs(float64(got)-(1000+math.Ln2)) > 1e-3 {
		t.Errorf("LogSumExp overflowed: %v", got)
	}
	dst := make([]TokenLogprob, 0, 8)
	dst = append(dst, TokenLogprob{ID: 99}) // existing entries are kept
	top := TopLogprobs(dst, x, lse, 3)
	want := []TokenLogprob{{99, 0}, {3, float32(math.Log(0.4))}, {2, float32(math.Log(0.3))}, {1, float32(math.Log(0.2))}}
	if len(top) != len(want) {
		t.Fatalf("TopLogprobs = %v, want %v", top, want)
	}
	for i := range want {
		if top[i].ID != want[i].ID || math.Abs(float64(top[i].Logprob-want[i].Logprob)) > 1e-6 {
			t.Fatalf("TopLogprobs = %v, want %v", top, want)
		}
	}
	if got := TopLogprobs(nil, []float32{1, 2, 2, 0}, 0, 2); got[0].ID != 1 || got[1].ID != 2 {
		t.Errorf("ties: got %v, want ids 1, 2", got)
	}
	if got := TopLogprobs(nil, []float32{1, 2}, 0, 5); len(got) != 2 {
		t.Errorf("n beyond vocabulary: got %v", got)
	}
	if n := testing.AllocsPerRun(20, func() { TopLogprobs(dst[:0], x, lse, 4) }); n != 0 {
		t.Errorf("TopLogprobs allocates %v times", n)
	}
}
