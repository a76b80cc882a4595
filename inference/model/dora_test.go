package model

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/loraplex/loraplex/inference/kvcache"
	"github.com/loraplex/loraplex/quant"
	"github.com/loraplex/loraplex/quant/par"
)

// The references here merge an adapter into a float32 copy of the base in
// float64 — W' = m/‖W+sBA‖ ⊙ (W+sBA) row by row for DoRA, W+sBA for LoRA,
// the adapter's own tables for modules_to_save — and run that copy with no
// adapter, so they share none of the unmerged serving path.

// rows returns w as row-major float64 values, dequantized where w is NF4
// through the reference dequantizer rather than Row.
func rows(w quant.Matrix) []float64 {
	v := make([]float32, w.Rows()*w.Cols())
	if q, ok := w.(*quant.NF4); ok {
		q.Dequantize(v)
	} else {
		for r := range w.Rows() {
			w.Row(v[r*w.Cols():(r+1)*w.Cols()], r)
		}
	}
	out := make([]float64, len(v))
	for i, x := range v {
		out[i] = float64(x)
	}
	return out
}

// adapted is W + s·B·A in float64, out × in.
func adapted(w quant.Matrix, l *LoRA) []float64 {
	out, in := w.Rows(), w.Cols()
	d := rows(w)
	for o := range out {
		for j := range l.R {
			sb := float64(l.Scale) * float64(l.B[o*l.R+j])
			for c := range in {
				d[o*in+c] += sb * float64(l.A[j*in+c])
			}
		}
	}
	return d
}

func rowNorm(d []float64, o, in int) float64 {
	var ss float64
	for _, v := range d[o*in : (o+1)*in] {
		ss += v * v
	}
	return math.Sqrt(ss)
}

// merged builds the float32 model that a's updates merged into m's weights
// give.
func merged(t *testing.T, m *Model, a *Adapter) *Model {
	t.Helper()
	layers := make([]Layer, len(m.Layers))
	for li := range m.Layers {
		layers[li] = m.Layers[li]
		for mod := range NumModules {
			l := a.LoRA[li][mod]
			if l == nil {
				continue
			}
			w := m.Layers[li].W[mod]
			out, in := w.Rows(), w.Cols()
			d := adapted(w, l)
			v := make([]float32, len(d))
			for o := range out {
				s := 1.0
				if l.Magnitude != nil {
					s = float64(l.Magnitude[o]) / rowNorm(d, o, in)
				}
				for c := range in {
					v[o*in+c] = float32(s * d[o*in+c])
				}
			}
			layers[li].W[mod] = quant.NewF32(out, in, v)
		}
	}
	embed, head := m.Embed, m.Head
	if a.Embed != nil {
		embed = a.Embed
	}
	if a.Head != nil {
		head = a.Head
	}
	mm, err := New(m.Cfg, embed, layers, m.Norm, head)
	if err != nil {
		t.Fatal(err)
	}
	return mm
}

// doraAdapter puts rank-4 DoRA updates on the given modules of every layer.
// Each magnitude is the adapted row's own norm times a factor in
// [0.7, 1.3], so the rescale visibly changes the outputs.
func doraAdapter(m *Model, seed uint64, mods ...Module) *Adapter {
	rng := rand.New(rand.NewPCG(seed, 1))
	randv := func(n int, s float64) []float32 {
		v := make([]float32, n)
		for i := range v {
			v[i] = float32(rng.NormFloat64() * s)
		}
		return v
	}
	const r = 4
	a := &Adapter{ID: fmt.Sprintf("dora-%d", seed), LoRA: make([][NumModules]*LoRA, len(m.Layers))}
	for li := range m.Layers {
		for _, mod := range mods {
			w := m.Layers[li].W[mod]
			out, in := w.Rows(), w.Cols()
			l := &LoRA{R: r, Scale: 2, A: randv(r*in, 0.1), B: randv(out*r, 0.1), Magnitude: make([]float32, out)}
			d := adapted(w, l)
			for o := range out {
				l.Magnitude[o] = float32(rowNorm(d, o, in) * (1 + 0.3*(2*rng.Float64()-1)))
			}
			a.LoRA[li][mod] = l
		}
	}
	return a
}

// savedModules gives an adapter full embed_tokens and lm_head tables: the
// base's plus noise.
func savedModules(m *Model, a *Adapter, seed uint64, embed, head bool) {
	rng := rand.New(rand.NewPCG(seed, 2))
	noisy := func(w quant.Matrix) quant.Matrix {
		d := rows(w)
		v := make([]float32, len(d))
		for i, x := range d {
			v[i] = float32(x + 0.05*rng.NormFloat64())
		}
		return quant.NewF32(w.Rows(), w.Cols(), v)
	}
	if embed {
		a.Embed = noisy(m.Embed)
	}
	if head {
		a.Head = noisy(m.Head)
	}
}

// logitsOf runs seq as one prefill, then token by token (decode rows go
// through the untransposed LoRA path), returning both sets of logits.
func logitsOf(t *testing.T, m *Model, a *Adapter, seq []int32) (prefill, decode []float32) {
	t.Helper()
	p := par.New(2)
	kv := newKV(m, 8)
	ws := NewWorkspace(m, 8, 1)
	var s kvcache.Seq
	prefill = append(prefill, m.Forward(p, ws, kv, []SeqInput{{Tokens: seq, KV: &s, Adapter: a, AllLogits: true}})[0]...)
	var d kvcache.Seq
	for i := range seq {
		decode = append(decode, m.Forward(p, ws, kv, []SeqInput{{Tokens: seq[i : i+1], KV: &d, Adapter: a}})[0]...)
	}
	return prefill, decode
}

func TestDoRAMatchesMerged(t *testing.T) {
	ref := loadReference(t)
	for _, tc := range []struct {
		quant      string
		transposed bool
		tol        float64
	}{
		{"none", false, 1e-5},
		{"none", true, 1e-5},
		// The NF4 kernels differ from a dense product by rounding only.
		{"nf4", true, 1e-4},
	} {
		t.Run(fmt.Sprintf("%s transposed=%v", tc.quant, tc.transposed), func(t *testing.T) {
			m := loadModel(t, tc.quant, "fixtures", "tiny-llama")
			a := doraAdapter(m, 1, Q, V, O, Gate, Down)
			a.LoRA[1][K] = loadLoRA(t, m).LoRA[1][K] // plain LoRA beside DoRA in one adapter
			if tc.transposed {
				a.Prepare()
			}
			if err := m.PrepareAdapter(par.New(2), a); err != nil {
				t.Fatal(err)
			}
			want, _ := logitsOf(t, merged(t, m, a), nil, ref.Sequence)
			pre, dec := logitsOf(t, m, a, ref.Sequence)
			if d := maxDiff(pre, want); d > tc.tol {
				t.Errorf("prefill: DoRA logits differ from the merged model's by %g", d)
			}
			if d := maxDiff(dec, want); d > tc.tol {
				t.Errorf("decode: DoRA logits differ from the merged model's by %g", d)
			}
			// Without the magnitudes the same update is plain LoRA, which
			// must differ, or the comparison above proves little.
			plain := &Adapter{LoRA: make([][NumModules]*LoRA, len(m.Layers))}
			for li, layer := range a.LoRA {
				for mod, l := range layer {
					if l != nil {
						plain.LoRA[li][mod] = &LoRA{R: l.R, Scale: l.Scale, A: l.A, B: l.B}
					}
				}
			}
			if lora, _ := logitsOf(t, m, plain, ref.Sequence); maxDiff(lora, want) < 1e-2 {
				t.Fatalf("the DoRA rescale changed the logits by only %g", maxDiff(lora, want))
			}
		})
	}
}

// On an NF4 base the norm must come from the dequantized weights the
// forward uses, not from the checkpoint's float32 values.
func TestDoRANormUsesDequantizedBase(t *testing.T) {
	m := loadModel(t, "nf4", "fixtures", "tiny-llama")
	a := doraAdapter(m, 2, Up)
	if err := m.PrepareAdapter(nil, a); err != nil {
		t.Fatal(err)
	}
	for li := range m.Layers {
		l := a.LoRA[li][Up]
		w := m.Layers[li].W[Up]
		d := adapted(w, l)
		for o := range w.Rows() {
			want := float64(l.Magnitude[o]) / rowNorm(d, o, w.Cols())
			if math.Abs(float64(l.MagScale[o])-want) > 1e-6*want {
				t.Fatalf("layer %d row %d: MagScale %v, want %v", li, o, l.MagScale[o], want)
			}
		}
	}
}

func TestModulesToSaveMatchesMerged(t *testing.T) {
	ref := loadReference(t)
	m := loadModel(t, "none", "fixtures", "tiny-llama")
	for _, tc := range []struct {
		name        string
		embed, head bool
	}{{"lm_head", false, true}, {"embed_tokens", true, false}, {"both with LoRA", true, true}} {
		t.Run(tc.name, func(t *testing.T) {
			a := &Adapter{ID: tc.name, LoRA: make([][NumModules]*LoRA, len(m.Layers))}
			if tc.embed && tc.head {
				a.LoRA = loadLoRA(t, m).LoRA
			}
			savedModules(m, a, 3, tc.embed, tc.head)
			want, _ := logitsOf(t, merged(t, m, a), nil, ref.Sequence)
			pre, dec := logitsOf(t, m, a, ref.Sequence)
			if d := maxDiff(pre, want); d > 1e-5 {
				t.Errorf("prefill: logits differ from the merged model's by %g", d)
			}
			if d := maxDiff(dec, want); d > 1e-5 {
				t.Errorf("decode: logits differ from the merged model's by %g", d)
			}
			if base, _ := logitsOf(t, m, nil, ref.Sequence); maxDiff(base, want) < 1e-2 {
				t.Fatalf("the saved modules changed the logits by only %g", maxDiff(base, want))
			}
		})
	}
}

// Every kind of adapter in one step: each sequence gets the logits it gets
// alone, so DoRA rescales and per-adapter embeddings and heads touch only
// their own rows.
func TestAdapterKindsMixedBatch(t *testing.T) {
	ref := loadReference(t)
	m := loadModel(t, "nf4", "fixtures", "tiny-llama")
	dora := doraAdapter(m, 4, Q, K, V, O, Gate, Up, Down)
	head := &Adapter{ID: "head"}
	savedModules(m, head, 5, false, true)
	embed := &Adapter{ID: "embed"}
	savedModules(m, embed, 6, true, false)
	all := doraAdapter(m, 7, V, Down)
	savedModules(m, all, 8, true, true)
	lora := loadLoRA(t, m)
	for _, a := range []*Adapter{dora, head, embed, all, lora} {
		if err := m.PrepareAdapter(nil, a); err != nil {
			t.Fatal(err)
		}
	}
	s := ref.Sequence
	type seqCase struct {
		a        *Adapter
		history  []int32
		tokens   []int32
		allLogit bool
	}
	cases := []seqCase{
		{dora, s[:3], s[3:4], false},
		{nil, nil, s, true},
		{head, s[:2], s[2:5], true},
		{all, nil, s[:4], true},
		{dora, nil, s, true},
		{lora, s[:5], s[5:6], false},
		{embed, s[:1], s[1:2], false},
		{head, s[:4], s[4:5], false},
		{all, s[:5], s[5:6], false},
	}
	p := par.New(2)
	kv := newKV(m, 64)
	prefill := func(c seqCase, ws *Workspace) *kvcache.Seq {
		seq := &kvcache.Seq{}
		if len(c.history) > 0 {
			m.Forward(p, ws, kv, []SeqInput{{Tokens: c.history, KV: seq, Adapter: c.a}})
		}
		return seq
	}
	alone := make([][]float32, len(cases))
	for i, c := range cases {
		ws := NewWorkspace(m, 8, 1)
		seq := prefill(c, ws)
		alone[i] = append([]float32(nil), m.Forward(p, ws, kv, []SeqInput{{Tokens: c.tokens, KV: seq, Adapter: c.a, AllLogits: c.allLogit}})[0]...)
		kv.Free(seq)
	}
	ws := NewWorkspace(m, 8, 4)
	batch := make([]SeqInput, len(cases))
	for i, c := range cases {
		batch[i] = SeqInput{Tokens: c.tokens, KV: prefill(c, ws), Adapter: c.a, AllLogits: c.allLogit}
	}
	got := m.Forward(p, ws, kv, batch)
	for i := range cases {
		if d := maxDiff(got[i], alone[i]); d > 1e-5 {
			t.Errorf("sequence %d (%v): batched logits differ from alone by %g", i, cases[i].a != nil, d)
		}
	}
}

func TestPrepareAdapterRejects(t *testing.T) {
	m := loadModel(t, "none", "fixtures", "tiny-llama")
	other := loadModel(t, "nf4", "fixtures", "tiny-llama")
	step := func(mm *Model, a *Adapter) error {
		_, err := mm.Step(nil, NewWorkspace(mm, 2, 1), newKV(mm, 2), []SeqInput{{Tokens: []int32{1}, KV: &kvcache.Seq{}, Adapter: a}})
		return err
	}

	a := doraAdapter(m, 9, Q)
	if err := step(m, a); !errors.Is(err, ErrBadInput) {
		t.Errorf("unprepared DoRA adapter: %v, want ErrBadInput", err)
	}
	if err := m.PrepareAdapter(nil, a); err != nil {
		t.Fatal(err)
	}
	if err := step(m, a); err != nil {
		t.Errorf("prepared DoRA adapter: %v", err)
	}
	if err := step(other, a); !errors.Is(err, ErrBadInput) {
		t.Errorf("DoRA adapter prepared for another model: %v, want ErrBadInput", err)
	}

	// A zero row of W + sBA has no direction to rescale.
	z := &Adapter{ID: "zero", LoRA: make([][NumModules]*LoRA, len(m.Layers))}
	out, in := ModuleShape(m.Cfg, K)
	w := make([]float32, out*in)
	m.Layers[0].W[K].Row(w[:in], 0)
	za := make([]float32, in)
	for c := range in {
		za[c] = -w[c]
	}
	zb := make([]float32, out)
	zb[0] = 1
	z.LoRA[0][K] = &LoRA{R: 1, Scale: 1, A: za, B: zb, Magnitude: make([]float32, out)}
	if err := m.PrepareAdapter(nil, z); !errors.Is(err, ErrBadInput) {
		t.Errorf("zero-norm row: %v, want ErrBadInput", err)
	}

	short := doraAdapter(m, 10, Q)
	short.LoRA[0][Q].Magnitude = short.LoRA[0][Q].Magnitude[:3]
	if err := m.PrepareAdapter(nil, short); !errors.Is(err, ErrBadInput) {
		t.Errorf("short magnitude: %v, want ErrBadInput", err)
	}

	// A resized vocabulary does not fit the shared tokenizer and sampler.
	big := &Adapter{ID: "resized", Head: quant.NewF32(m.Cfg.Vocab+1, m.Cfg.Hidden, make([]float32, (m.Cfg.Vocab+1)*m.Cfg.Hidden))}
	if err := m.PrepareAdapter(nil, big); !errors.Is(err, ErrBadInput) {
		t.Errorf("resized lm_head: %v, want ErrBadInput", err)
	}
	if err := step(m, big); !errors.Is(err, ErrBadInput) {
		t.Errorf("resized lm_head in a step: %v, want ErrBadInput", err)
	}
}

func TestDecodeAllocatesNothingWithDoRAAndSavedModules(t *testing.T) {
	m := loadModel(t, "nf4", "fixtures", "tiny-llama")
	a := doraAdapter(m, 11, Q, Down)
	savedModules(m, a, 12, true, true)
	if err := m.PrepareAdapter(nil, a); err != nil {
		t.Fatal(err)
	}
	a.Prepare()
	if allocs := decodeAllocs(m, a, par.Serial); allocs != 0 && !raceEnabled {
		t.Errorf("decode step allocates %v times", allocs)
	}
}
