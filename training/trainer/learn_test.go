package trainer

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/loraplex/loraplex/adapters"
	"github.com/loraplex/loraplex/inference/fixtures"
	"github.com/loraplex/loraplex/inference/kvcache"
	"github.com/loraplex/loraplex/inference/model"
	"github.com/loraplex/loraplex/inference/tokenizer"
	"github.com/loraplex/loraplex/quant/par"
	"github.com/loraplex/loraplex/quant/vec"
	"github.com/loraplex/loraplex/training/dataset"
	"github.com/loraplex/loraplex/training/optim"
)

var qa = []struct{ q, a string }{
	{"What is the color of the sky?", "blue"},
	{"What does a cow say?", "moo"},
	{"What color is grass?", "green"},
	{"Where do fish live?", "water"},
	{"What do bees make?", "honey"},
	{"How many legs does a dog have?", "four"},
	{"What is the opposite of hot?", "cold"},
	{"What falls from clouds?", "rain"},
}

// greedy decodes up to max tokens after prompt with model.Forward, the
// server's path, stopping at eos (-1: never).
func greedy(m *model.Model, ad *model.Adapter, prompt []int32, eos int32, maxNew int) []int32 {
	c := m.Cfg
	kv := kvcache.NewPool(c.Layers, c.KVHeads, c.HeadDim, 16, 8)
	ws := model.NewWorkspace(m, len(prompt), 1)
	seq := &kvcache.Seq{}
	var out []int32
	next := prompt
	for len(out) < maxNew {
		logits := m.Forward(par.Serial, ws, kv, []model.SeqInput{{Tokens: next, KV: seq, Adapter: ad}})[0]
		id := int32(vec.MaxIndex(logits))
		if id == eos {
			break
		}
		out = append(out, id)
		next = []int32{id}
	}
	return out
}

// TestLearnQuestionAnswers trains a LoRA adapter on the real stories260k
// model (NF4 base) until it answers eight made-up questions, checks the
// answers greedily through the inference forward pass, then saves the
// adapter in PEFT format and checks the reloaded copy gives identical
// logits.
func TestLearnQuestionAnswers(t *testing.T) {
	dir := fixtures.Path(t, "models", "stories260k")
	m, err := model.Load(dir, model.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := tokenizer.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	var recs []dataset.Record
	for i, p := range qa {
		recs = append(recs, dataset.Record{Line: i + 1, Format: dataset.FormatCompletion, Prompt: "Q: " + p.q + " A:", Completion: " " + p.a + "."})
	}
	exs, st, err := dataset.Tokenize(recs, tok, nil, dataset.Config{NoCompletionEOS: true})
	if err != nil {
		t.Fatal(err)
	}
	ad, err := NewLoRA(m, LoRASpec{R: 8, Alpha: 16, Targets: allModules}, 1)
	if err != nil {
		t.Fatal(err)
	}
	tr, err := New(m, ad, Config{})
	if err != nil {
		t.Fatal(err)
	}
	const steps = 40
	opt, err := optim.New(optim.Config{LR: 1e-2, WarmupSteps: 10, TotalSteps: steps}, tr.Params())
	if err != nil {
		t.Fatal(err)
	}
	p := par.New(2)
	ctx := context.Background()
	var first, last Result
	for s := 0; s < steps; s++ {
		res, err := tr.Accumulate(ctx, p, exs, uint64(s))
		if err != nil {
			t.Fatal(err)
		}
		opt.Step(1 / float32(res.Tokens))
		if s == 0 {
			first = res
		}
		last = res
	}
	t.Logf("%d examples, %d label tokens; loss %.3f -> %.4f, accuracy %d/%d", st.Examples, st.TrainableTokens, first.Mean(), last.Mean(), last.Correct, last.Tokens)

	for _, ex := range exs {
		prompt := ex.Tokens[:firstLabel(ex)]
		answer := ex.Tokens[firstLabel(ex):]
		want := tok.Decode(answer, true)
		base := tok.Decode(greedy(m, nil, prompt, -1, len(answer)), true)
		got := tok.Decode(greedy(m, ad, prompt, -1, len(answer)), true)
		if got != want {
			t.Errorf("%q: adapter answers %q, want %q (base model: %q)", tok.Decode(prompt, true), got, want, base)
		}
	}

	out := filepath.Join(t.TempDir(), "qa")
	if err := adapters.SaveLoRA(out, &adapters.PEFTConfig{R: 8, Alpha: 16, BaseModel: "stories260k"}, ad); err != nil {
		t.Fatal(err)
	}
	back, _, err := adapters.Load(out, m.Cfg, "qa")
	if err != nil {
		t.Fatal(err)
	}
	c := m.Cfg
	logits := func(a *model.Adapter) []float32 {
		kv := kvcache.NewPool(c.Layers, c.KVHeads, c.HeadDim, 16, 4)
		ws := model.NewWorkspace(m, 32, 1)
		out := m.Forward(par.Serial, ws, kv, []model.SeqInput{{Tokens: exs[0].Tokens, KV: &kvcache.Seq{}, Adapter: a, AllLogits: true}})[0]
		return append([]float32(nil), out...)
	}
	want, got := logits(ad), logits(back)
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("reloaded adapter: logit %d is %v, trained adapter gives %v", i, got[i], want[i])
		}
	}
}

func firstLabel(ex dataset.Example) int {
	for i, b := range ex.Train {
		if b {
			return i
		}
	}
	return len(ex.Tokens)
}
