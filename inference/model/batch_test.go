package model

import (
	"errors"
	"math"
	"testing"

	"github.com/loraplex/loraplex/inference/kvcache"
	"github.com/loraplex/loraplex/quant"
	"github.com/loraplex/loraplex/quant/par"
	"github.com/loraplex/loraplex/quant/vec"
)

func maxDiff(a, b []float32) float64 {
	if len(a) != len(b) {
		return math.Inf(1)
	}
	d := 0.0
	for i := range a {
		d = max(d, math.Abs(float64(a[i]-b[i])))
	}
	return d
}

// A mixed step (two adapters and the base model, a prompt-tuning prefix,
// prefill chunks next to decode tokens) must give every sequence the logits
// it gets when run alone.
func TestMixedBatchMatchesAlone(t *testing.T) {
	ref := loadReference(t)
	m := loadModel(t, "nf4", "fixtures", "tiny-llama")
	lora := loadLoRA(t, m)
	h := m.Cfg.Hidden
	prompt := &Adapter{ID: "prompt", NumVirtual: 2, Prompt: make([]float32, 2*h)}
	for i := range prompt.Prompt {
		prompt.Prompt[i] = float32(math.Sin(float64(i))) * 0.5
	}
	both := &Adapter{ID: "both", LoRA: lora.LoRA, Prompt: prompt.Prompt, NumVirtual: 2}

	type seqCase struct {
		adapter  *Adapter
		history  []int32 // already in the KV cache before the mixed step
		tokens   []int32 // this step
		all      bool
		withEmbs bool
	}
	s := ref.Sequence
	cases := []seqCase{
		{adapter: lora, history: s[:5], tokens: s[5:6]},            // decode
		{adapter: nil, tokens: s, all: true},                       // full prefill, base
		{adapter: both, tokens: s[:3], withEmbs: true, all: true},  // prefix + LoRA
		{adapter: lora, history: s[:2], tokens: s[2:5], all: true}, // prefill chunk, same adapter as #0
		{adapter: prompt, tokens: s[:4], withEmbs: true},           // prompt tuning only
	}
	p := par.New(2)
	kv := newKV(m, 64)
	input := func(c seqCase, seq *kvcache.Seq) SeqInput {
		in := SeqInput{Tokens: c.tokens, KV: seq, Adapter: c.adapter, AllLogits: c.all}
		if c.withEmbs {
			in.Embeds = c.adapter.Prompt
		}
		return in
	}
	prefill := func(c seqCase, ws *Workspace) *kvcache.Seq {
		seq := &kvcache.Seq{}
		if len(c.history) > 0 {
			m.Forward(p, ws, kv, []SeqInput{{Tokens: c.history, KV: seq, Adapter: c.adapter}})
		}
		return seq
	}
	alone := make([][]float32, len(cases))
	for i, c := range cases {
		ws := NewWorkspace(m, 16, 1)
		seq := prefill(c, ws)
		alone[i] = append([]float32(nil), m.Forward(p, ws, kv, []SeqInput{input(c, seq)})[0]...)
		kv.Free(seq)
	}
	ws := NewWorkspace(m, 4, 2) // too small on purpose: the step must grow it
	batch := make([]SeqInput, len(cases))
	for i, c := range cases {
		batch[i] = input(c, prefill(c, ws))
	}
	got := m.Forward(p, ws, kv, batch)
	for i := range cases {
		if d := maxDiff(got[i], alone[i]); d > 1e-5 {
			t.Errorf("sequence %d: batched logits differ from alone by %g", i, d)
		}
	}
	// The adapters must matter, or the comparison above proves little.
	if d := maxDiff(alone[1][len(alone[1])-m.Cfg.Vocab:], alone[4]); d < 1e-3 {
		t.Fatalf("prompt prefix changed the logits by only %g", d)
	}
}

func TestChunkedPrefillMatchesOneShot(t *testing.T) {
	ref := loadReference(t)
	m := loadModel(t, "none", "fixtures", "tiny-llama")
	p := par.New(2)
	kv := newKV(m, 16)
	ws := NewWorkspace(m, 8, 1)
	var one kvcache.Seq
	whole := append([]float32(nil), m.Forward(p, ws, kv, []SeqInput{{Tokens: ref.Sequence, KV: &one, AllLogits: true}})[0]...)
	var chunked kvcache.Seq
	var got []float32
	for lo := 0; lo < len(ref.Sequence); lo += 3 {
		got = append(got, m.Forward(p, ws, kv, []SeqInput{{Tokens: ref.Sequence[lo:min(lo+3, len(ref.Sequence))], KV: &chunked, AllLogits: true}})[0]...)
	}
	if d := maxDiff(got, whole); d > 1e-5 {
		t.Fatalf("chunked prefill differs from one shot by %g", d)
	}
}

// Embedding rows equal to a token's embedding behave exactly like the token.
func TestEmbedsActLikeTokens(t *testing.T) {
	ref := loadReference(t)
	m := loadModel(t, "none", "fixtures", "tiny-llama")
	p := par.Serial
	kv := newKV(m, 16)
	ws := NewWorkspace(m, 8, 1)
	h := m.Cfg.Hidden
	embs := make([]float32, 2*h)
	m.Embed.Row(embs[:h], int(ref.Sequence[0]))
	m.Embed.Row(embs[h:], int(ref.Sequence[1]))
	var a, b kvcache.Seq
	want := append([]float32(nil), m.Forward(p, ws, kv, []SeqInput{{Tokens: ref.Sequence, KV: &a, AllLogits: true}})[0]...)
	got := m.Forward(p, ws, kv, []SeqInput{{Embeds: embs, Tokens: ref.Sequence[2:], KV: &b, AllLogits: true}})[0]
	if d := maxDiff(got, want); d > 1e-6 {
		t.Fatalf("embedding rows differ from their tokens by %g", d)
	}
}

func TestStepRejectsBadInput(t *testing.T) {
	m := loadModel(t, "none", "fixtures", "tiny-llama")
	kv := newKV(m, 2)
	ws := NewWorkspace(m, 8, 1)
	bad := &Adapter{ID: "bad", LoRA: make([][NumModules]*LoRA, len(m.Layers))}
	bad.LoRA[1][Up] = &LoRA{R: 2, Scale: 1, A: make([]float32, 5), B: make([]float32, 2*m.Cfg.Intermediate)}
	for _, tc := range []struct {
		name string
		in   SeqInput
		want error
	}{
		{"token out of range", SeqInput{Tokens: []int32{int32(m.Cfg.Vocab)}}, ErrBadInput},
		{"negative token", SeqInput{Tokens: []int32{-1}}, ErrBadInput},
		{"ragged embeds", SeqInput{Embeds: make([]float32, m.Cfg.Hidden+1)}, ErrBadInput},
		{"bad LoRA shape", SeqInput{Tokens: []int32{1}, Adapter: bad}, ErrBadInput},
		{"no KV room", SeqInput{Tokens: make([]int32, 9)}, kvcache.ErrOutOfBlocks},
	} {
		seq := &kvcache.Seq{}
		tc.in.KV = seq
		_, err := m.Step(par.Serial, ws, kv, []SeqInput{tc.in})
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: error %v, want %v", tc.name, err, tc.want)
		}
		if seq.Len != 0 {
			t.Errorf("%s: sequence advanced to %d", tc.name, seq.Len)
		}
		kv.Free(seq)
	}
}

// plain is a minimal dense quant.Matrix that never allocates, so the
// allocation test measures the model's own code and not the kernels'.
type plain struct {
	rows, cols int
	w          []float32
}

func (m *plain) Rows() int    { return m.rows }
func (m *plain) Cols() int    { return m.cols }
func (m *plain) Bytes() int64 { return 4 * int64(len(m.w)) }
func (m *plain) Row(dst []float32, r int) {
	copy(dst[:m.cols], m.w[r*m.cols:])
}
func (m *plain) MulT(_ *par.Pool, y, x []float32, n int) {
	for i := 0; i < n; i++ {
		for r := 0; r < m.rows; r++ {
			y[i*m.rows+r] = vec.Dot(x[i*m.cols:(i+1)*m.cols], m.w[r*m.cols:])
		}
	}
}
func (m *plain) MulGrad(*par.Pool, []float32, []float32, int) { panic("unused") }

func toPlain(w quant.Matrix) quant.Matrix {
	p := &plain{rows: w.Rows(), cols: w.Cols(), w: make([]float32, w.Rows()*w.Cols())}
	for r := 0; r < p.rows; r++ {
		w.Row(p.w[r*p.cols:(r+1)*p.cols], r)
	}
	return p
}

func decodeAllocs(m *Model, a *Adapter, p *par.Pool) float64 {
	kv := newKV(m, 64)
	ws := NewWorkspace(m, 8, 2)
	seqs := []*kvcache.Seq{{}, {}}
	batch := []SeqInput{{Tokens: []int32{1}, KV: seqs[0], Adapter: a}, {Tokens: []int32{2}, KV: seqs[1]}}
	m.Forward(p, ws, kv, batch) // the first step sizes the scratch
	return testing.AllocsPerRun(50, func() {
		for _, s := range seqs {
			if s.Len > 100 {
				kv.Truncate(s, 1)
			}
		}
		m.Forward(p, ws, kv, batch)
	})
}

func TestDecodeAllocatesNothing(t *testing.T) {
	m := loadModel(t, "nf4", "fixtures", "tiny-llama")
	lora := loadLoRA(t, m)
	if allocs := decodeAllocs(m, lora, par.Serial); allocs != 0 && !raceEnabled {
		t.Errorf("decode step allocates %v times with the quant kernels", allocs)
	}
	t.Logf("with 2 workers: %v allocations per step (the pool's)", decodeAllocs(m, lora, par.New(2)))

	pm := *m
	pm.Embed, pm.Head = toPlain(m.Embed), toPlain(m.Head)
	pm.Layers = append([]Layer(nil), m.Layers...)
	for i := range pm.Layers {
		for mod := range NumModules {
			pm.Layers[i].W[mod] = toPlain(m.Layers[i].W[mod])
		}
	}
	if allocs := decodeAllocs(&pm, lora, par.Serial); allocs != 0 {
		t.Fatalf("decode step allocates %v times outside the matrix kernels", allocs)
	}
}

// With a one-token sliding window every position attends only to itself, so
// its logits cannot depend on earlier tokens; a window as long as the
// sequence changes nothing.
func TestSlidingWindow(t *testing.T) {
	ref := loadReference(t)
	m := loadModel(t, "none", "fixtures", "tiny-llama")
	run := func(win int, toks []int32) []float32 {
		wm := *m
		cfg := *m.Cfg
		cfg.SlidingWindow = win
		wm.Cfg = &cfg
		var seq kvcache.Seq
		return append([]float32(nil), wm.Forward(nil, NewWorkspace(&wm, 8, 1), newKV(&wm, 8), []SeqInput{{Tokens: toks, KV: &seq, AllLogits: true}})[0]...)
	}
	full := run(0, ref.Sequence)
	if d := maxDiff(run(len(ref.Sequence), ref.Sequence), full); d != 0 {
		t.Fatalf("window as long as the sequence changed logits by %g", d)
	}
	one := run(1, ref.Sequence)
	vocab := m.Cfg.Vocab
	for p, tok := range ref.Sequence {
		alone := run(0, []int32{tok})
		if d := maxDiff(one[p*vocab:(p+1)*vocab], alone); d > 1e-5 {
			t.Fatalf("window 1, position %d: logits differ from the token alone by %g", p, d)
		}
	}
	if d := maxDiff(one, full); d < 1e-3 {
		t.Fatalf("window 1 changed nothing (%g)", d)
	}
}

// The matrix-product attention of long chunks must agree with the per-row
// path: one-shot and chunked prefill, with and without a sliding window,
// alone and batched beside short sequences.
func TestGEMMAttentionMatchesPerRow(t *testing.T) {
	m := loadModel(t, "none", "fixtures", "tiny-llama")
	toks := make([]int32, 40)
	for i := range toks {
		toks[i] = int32((i*37 + 5) % m.Cfg.Vocab)
	}
	defer func(v int) { gemmAttnRows = v }(gemmAttnRows)
	run := func(threshold, win, chunk int) []float32 {
		gemmAttnRows = threshold
		wm := *m
		cfg := *m.Cfg
		cfg.SlidingWindow = win
		wm.Cfg = &cfg
		kv := newKV(&wm, 32)
		ws := NewWorkspace(&wm, 8, 2)
		var seq, short kvcache.Seq
		var out []float32
		for lo := 0; lo < len(toks); lo += chunk {
			// A short sequence rides along on the per-row path.
			res := wm.Forward(par.New(2), ws, kv, []SeqInput{
				{Tokens: toks[lo:min(lo+chunk, len(toks))], KV: &seq, AllLogits: true},
				{Tokens: toks[:2], KV: &short},
			})
			out = append(out, res[0]...)
			kv.Free(&short)
		}
		return out
	}
	for _, tc := range []struct{ win, chunk int }{{0, 40}, {0, 20}, {0, 17}, {7, 40}, {7, 20}} {
		perRow := run(1<<30, tc.win, tc.chunk)
		gemm := run(3, tc.win, tc.chunk)
		if d := maxDiff(gemm, perRow); d > 1e-5 {
			t.Errorf("window %d chunk %d: matrix attention differs from per-row by %g", tc.win, tc.chunk, d)
		}
	}
}
