package synth_test

import (
	"math"
	"testing"

	"github.com/loraplex/loraplex/inference/kvcache"
	"github.com/loraplex/loraplex/inference/model"
	"github.com/loraplex/loraplex/inference/synth"
	"github.com/loraplex/loraplex/quant/par"
)

// The random weights must give a usable model: finite logits of moderate
// spread, and predictions that depend on the input.
func TestLogitsAreNotDegenerate(t *testing.T) {
	dir := t.TempDir()
	if err := synth.Write(dir, synth.Tiny, 11, "F32"); err != nil {
		t.Fatal(err)
	}
	m, err := model.Load(dir, model.LoadOptions{Quant: "none"})
	if err != nil {
		t.Fatal(err)
	}
	c := m.Cfg
	kv := kvcache.NewPool(c.Layers, c.KVHeads, c.HeadDim, 16, 8)
	ws := model.NewWorkspace(m, 32, 1)
	seq := &kvcache.Seq{}
	tokens := []int32{508, 72, 101, 108, 108, 111, 32, 119, 111, 114, 108, 100, 33, 10, 84, 104}
	logits := m.Forward(par.Serial, ws, kv, []model.SeqInput{{Tokens: tokens, KV: seq, AllLogits: true}})[0]
	argmax := make(map[int]bool)
	for p := range tokens {
		row := logits[p*c.Vocab : (p+1)*c.Vocab]
		var mean, sq float64
		best := 0
		for i, x := range row {
			if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
				t.Fatalf("position %d: logit %d is %v", p, i, x)
			}
			mean += float64(x)
			if x > row[best] {
				best = i
			}
		}
		mean /= float64(c.Vocab)
		for _, x := range row {
			sq += (float64(x) - mean) * (float64(x) - mean)
		}
		std := math.Sqrt(sq / float64(c.Vocab))
		if std < 0.5 || std > 10 {
			t.Errorf("position %d: logit std %.3f, want O(1)", p, std)
		}
		argmax[best] = true
	}
	if len(argmax) < len(tokens)/2 {
		t.Errorf("only %d distinct predictions over %d positions", len(argmax), len(tokens))
	}
}
