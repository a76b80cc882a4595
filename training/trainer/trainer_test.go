package trainer

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/loraplex/loraplex/inference/config"
	"github.com/loraplex/loraplex/inference/kvcache"
	"github.com/loraplex/loraplex/inference/model"
	"github.com/loraplex/loraplex/quant"
	"github.com/loraplex/loraplex/quant/par"
	"github.com/loraplex/loraplex/training/dataset"
)

const tinyConfig = `{"architectures":["LlamaForCausalLM"],"model_type":"llama","hidden_size":16,
"intermediate_size":24,"num_hidden_layers":2,"num_attention_heads":4,"num_key_value_heads":2,
"head_dim":4,"vocab_size":37,"max_position_embeddings":64,"rms_norm_eps":1e-5,"rope_theta":10000,
"hidden_act":"silu","tie_word_embeddings":false%s}`

// tinyModel builds a random two-layer GQA model in memory; nf4 stores the
// decoder linear weights as NF4 (the training path must not care).
func tinyModel(t testing.TB, nf4, bias bool) *model.Model {
	t.Helper()
	extra := ""
	if bias {
		extra = `,"architectures":["Qwen2ForCausalLM"],"model_type":"qwen2","bos_token_id":1,"eos_token_id":2`
	}
	cfg, err := config.Parse([]byte(fmt.Sprintf(tinyConfig, extra)))
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	randn := func(n int, s float64) []float32 {
		v := make([]float32, n)
		for i := range v {
			v[i] = float32(rng.NormFloat64() * s)
		}
		return v
	}
	norm := func(n int) []float32 {
		v := make([]float32, n)
		for i := range v {
			v[i] = float32(0.8 + 0.4*rng.Float64())
		}
		return v
	}
	layers := make([]model.Layer, cfg.Layers)
	for i := range layers {
		l := &layers[i]
		l.InNorm, l.PostNorm = norm(cfg.Hidden), norm(cfg.Hidden)
		for mod := range model.NumModules {
			out, in := model.ModuleShape(cfg, mod)
			w := randn(out*in, 1/math.Sqrt(float64(in)))
			if nf4 {
				l.W[mod] = quant.QuantizeNF4(out, in, w)
			} else {
				l.W[mod] = quant.NewF32(out, in, w)
			}
			if bias && mod <= model.V {
				l.Bias[mod] = randn(out, 0.1)
			}
		}
	}
	embed := quant.NewF32(cfg.Vocab, cfg.Hidden, randn(cfg.Vocab*cfg.Hidden, 1))
	head := quant.NewF32(cfg.Vocab, cfg.Hidden, randn(cfg.Vocab*cfg.Hidden, 0.5))
	m, err := model.New(cfg, embed, layers, norm(cfg.Hidden), head)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

var allModules = []model.Module{model.Q, model.K, model.V, model.O, model.Gate, model.Up, model.Down}

// randomB makes B non-zero so that the gradient of A is not trivially zero.
func randomB(a *model.Adapter, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, 9))
	for _, layer := range a.LoRA {
		for _, l := range layer {
			if l != nil {
				for i := range l.B {
					l.B[i] = float32(rng.NormFloat64() * 0.3)
				}
			}
		}
	}
}

func testBatch() []dataset.Example {
	return []dataset.Example{
		{Tokens: []int32{1, 5, 9, 13, 2, 30, 7}, Train: []bool{false, false, false, true, true, true, true}},
		{Tokens: []int32{1, 20, 21, 22, 36}, Train: []bool{false, true, false, true, true}},
	}
}

// checkGradients compares the analytic gradient with central finite
// differences of the summed loss: along a random direction over all
// parameters, and coordinate by coordinate on the largest gradients.
func checkGradients(t *testing.T, tr *Trainer, p *par.Pool) {
	t.Helper()
	ctx := context.Background()
	batch := testBatch()
	params := tr.Params()
	res, err := tr.Accumulate(ctx, p, batch, 7)
	if err != nil {
		t.Fatal(err)
	}
	if res.Tokens != 7 {
		t.Fatalf("%d label tokens, want 7", res.Tokens)
	}
	grad := make([][]float32, len(params))
	for i, ps := range params {
		grad[i] = append([]float32(nil), ps.G...)
	}
	loss := func() float64 {
		for _, ps := range params {
			clear(ps.G)
		}
		r, err := tr.Accumulate(ctx, p, batch, 7) // same key: same dropout masks
		if err != nil {
			t.Fatal(err)
		}
		return r.Loss
	}
	rng := rand.New(rand.NewPCG(3, 4))
	dir := make([][]float32, len(params))
	var analytic, norm float64
	for i, ps := range params {
		dir[i] = make([]float32, len(ps.W))
		for j := range dir[i] {
			dir[i][j] = float32(rng.NormFloat64())
			norm += float64(dir[i][j]) * float64(dir[i][j])
		}
	}
	norm = math.Sqrt(norm)
	const eps = 1e-2
	shift := func(s float64) {
		for i, ps := range params {
			for j := range ps.W {
				ps.W[j] += float32(s * float64(dir[i][j]) / norm)
			}
		}
	}
	for i := range params {
		for j, d := range dir[i] {
			analytic += float64(grad[i][j]) * float64(d) / norm
		}
	}
	orig := make([][]float32, len(params))
	for i, ps := range params {
		orig[i] = append([]float32(nil), ps.W...)
	}
	restore := func() {
		for i, ps := range params {
			copy(ps.W, orig[i])
		}
	}
	shift(eps)
	up := loss()
	restore()
	shift(-eps)
	down := loss()
	restore()
	numeric := (up - down) / (2 * eps)
	if math.Abs(numeric-analytic) > 1e-2*math.Abs(numeric)+1e-4 {
		t.Errorf("directional derivative: analytic %.6g, finite differences %.6g", analytic, numeric)
	}
	checked := 0
	for i, ps := range params {
		// The largest coordinate of each tensor.
		j := 0
		for k, g := range grad[i] {
			if math.Abs(float64(g)) > math.Abs(float64(grad[i][j])) {
				j = k
			}
		}
		if math.Abs(float64(grad[i][j])) < 1e-3 {
			continue
		}
		w := ps.W[j]
		ps.W[j] = w + eps
		up := loss()
		ps.W[j] = w - eps
		down := loss()
		ps.W[j] = w
		numeric := (up - down) / (2 * eps)
		if g := float64(grad[i][j]); math.Abs(numeric-g) > 2e-2*math.Abs(numeric)+1e-3 {
			t.Errorf("param %d[%d]: analytic %.6g, finite differences %.6g", i, j, g, numeric)
		}
		checked++
	}
	if checked < len(params)/2 {
		t.Fatalf("only %d of %d tensors had a gradient worth checking", checked, len(params))
	}
}

func TestLoRAGradientsMatchFiniteDifferences(t *testing.T) {
	for _, tc := range []struct {
		name      string
		nf4, bias bool
		dropout   float32
		workers   int
	}{
		{"f32", false, false, 0, 1},
		{"nf4 dropout 2 workers", true, false, 0.3, 2},
		{"qkv bias", false, true, 0, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := tinyModel(t, tc.nf4, tc.bias)
			ad, err := NewLoRA(m, LoRASpec{R: 3, Alpha: 6, Targets: allModules}, 5)
			if err != nil {
				t.Fatal(err)
			}
			randomB(ad, 6)
			tr, err := New(m, ad, Config{Dropout: tc.dropout, LogitRows: 4, Seed: 11, ComputeDType: ComputeFloat32})
			if err != nil {
				t.Fatal(err)
			}
			checkGradients(t, tr, par.New(tc.workers))
		})
	}
}

func TestPromptGradientsMatchFiniteDifferences(t *testing.T) {
	m := tinyModel(t, false, false)
	ad, err := NewPromptTuning(m, 3, []int32{4, 8}, 1)
	if err != nil {
		t.Fatal(err)
	}
	tr, err := New(m, ad, Config{ComputeDType: ComputeFloat32})
	if err != nil {
		t.Fatal(err)
	}
	checkGradients(t, tr, par.Serial)
}

// TestBF16GradientsNearFloat32 checks that computing the frozen products
// in bfloat16 moves the loss and the LoRA gradients only as far as
// rounding the operands to 8 significant bits can: the loss by under 1%
// and each gradient tensor by under 5% of its norm. (Where the CPU lacks
// AVX512_BF16 both runs are float32 and agree exactly.)
func TestBF16GradientsNearFloat32(t *testing.T) {
	m := tinyModel(t, true, false)
	r := rand.New(rand.NewPCG(8, 9))
	batch := make([]dataset.Example, 2)
	for i := range batch {
		ex := dataset.Example{Tokens: make([]int32, 40), Train: make([]bool, 40)}
		for j := range ex.Tokens {
			ex.Tokens[j], ex.Train[j] = int32(r.IntN(m.Cfg.Vocab)), j > 0
		}
		batch[i] = ex
	}
	run := func(dt string) (*Trainer, Result) {
		ad, _ := NewLoRA(m, LoRASpec{R: 3, Alpha: 6, Targets: allModules}, 5)
		randomB(ad, 6)
		tr, err := New(m, ad, Config{ComputeDType: dt})
		if err != nil {
			t.Fatal(err)
		}
		res, err := tr.Accumulate(context.Background(), par.New(2), batch, 1)
		if err != nil {
			t.Fatal(err)
		}
		return tr, res
	}
	ref, want := run(ComputeFloat32)
	tr, got := run(ComputeBFloat16)
	if math.Abs(got.Loss-want.Loss) > 0.01*math.Abs(want.Loss) {
		t.Errorf("loss %g in bfloat16, %g in float32", got.Loss, want.Loss)
	}
	if _, err := New(m, tr.ad, Config{ComputeDType: "float16"}); err == nil {
		t.Error("compute dtype float16 accepted")
	}
	for i, p := range tr.Params() {
		var diff, norm float64
		for j, g := range p.G {
			w := float64(ref.Params()[i].G[j])
			diff += (float64(g) - w) * (float64(g) - w)
			norm += w * w
		}
		if math.Sqrt(diff) > 0.05*math.Sqrt(norm) {
			t.Errorf("gradient %d: bfloat16 differs from float32 by %.3g of its norm", i, math.Sqrt(diff/norm))
		}
	}
}

// TestLogitsMatchInference checks that the training forward pass computes
// exactly what the server's forward pass does with the same adapter.
func TestLogitsMatchInference(t *testing.T) {
	m := tinyModel(t, true, true)
	lora, err := NewLoRA(m, LoRASpec{R: 4, Alpha: 8, Targets: allModules}, 2)
	if err != nil {
		t.Fatal(err)
	}
	randomB(lora, 3)
	pt, err := NewPromptTuning(m, 2, nil, 4)
	if err != nil {
		t.Fatal(err)
	}
	tokens := []int32{1, 3, 5, 7, 11, 13, 17, 19, 23}
	c := m.Cfg
	for name, ad := range map[string]*model.Adapter{"lora": lora, "prompt": pt} {
		tr, err := New(m, ad, Config{Dropout: 0.5})
		if err != nil {
			t.Fatal(err)
		}
		got, err := tr.Logits(par.Serial, tokens)
		if err != nil {
			t.Fatal(err)
		}
		kv := kvcache.NewPool(c.Layers, c.KVHeads, c.HeadDim, 4, 8)
		ws := model.NewWorkspace(m, 16, 1)
		seq := &kvcache.Seq{}
		in := model.SeqInput{Tokens: tokens, KV: seq, Adapter: ad, AllLogits: true}
		if ad.NumVirtual > 0 {
			in.Embeds = ad.Prompt
			in.Adapter = nil
		}
		want := m.Forward(par.Serial, ws, kv, []model.SeqInput{in})[0]
		if len(got) != len(want) {
			t.Fatalf("%s: %d logits, want %d", name, len(got), len(want))
		}
		// Every op runs the same arithmetic in the same order as the
		// serving path except attention and the LoRA update, which the
		// trainer computes as matrix products over whole sequences
		// (ops.Attention, ops.LoRABatch) while serving sums one row's dot
		// products at a time: the two agree to float32 rounding, not bit
		// for bit.
		worst, scale := 0.0, 1.0
		for i := range got {
			worst = max(worst, math.Abs(float64(got[i]-want[i])))
			scale = max(scale, math.Abs(float64(want[i])))
		}
		if worst > 1e-5*scale {
			t.Errorf("%s: logits differ from model.Forward by up to %g (largest logit %g); the two forward passes must apply the same ops in the same order", name, worst, scale)
		}
	}
}

func TestNewLoRAInit(t *testing.T) {
	m := tinyModel(t, false, false)
	ad, err := NewLoRA(m, LoRASpec{R: 8, Alpha: 16, Targets: []model.Module{model.Q, model.Down}}, 1)
	if err != nil {
		t.Fatal(err)
	}
	l := ad.LoRA[1][model.Down]
	if l == nil || ad.LoRA[0][model.K] != nil || l.Scale != 2 {
		t.Fatalf("targets or scale wrong: %+v", l)
	}
	bound := float32(1 / math.Sqrt(float64(m.Cfg.Intermediate)))
	var maxA float32
	for _, v := range l.A {
		maxA = max(maxA, float32(math.Abs(float64(v))))
	}
	if maxA > bound || maxA < bound/2 {
		t.Fatalf("A spans ±%v, want kaiming-uniform bound %v", maxA, bound)
	}
	for _, v := range l.B {
		if v != 0 {
			t.Fatal("B must start at zero")
		}
	}
}

func TestBadInput(t *testing.T) {
	m := tinyModel(t, false, false)
	ad, _ := NewLoRA(m, LoRASpec{R: 2, Alpha: 2, Targets: allModules}, 1)
	tr, _ := New(m, ad, Config{})
	ctx := context.Background()
	for _, b := range [][]dataset.Example{
		{{Tokens: []int32{1, 99}, Train: []bool{false, true}}},
		{{Tokens: []int32{1, 2}, Train: []bool{false}}},
		{},
	} {
		if _, err := tr.Accumulate(ctx, par.Serial, b, 0); err == nil {
			t.Errorf("batch %v accepted", b)
		}
	}
	if _, err := New(m, &model.Adapter{}, Config{}); err == nil {
		t.Error("empty adapter accepted")
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := tr.Accumulate(cctx, par.Serial, testBatch(), 0); err != context.Canceled {
		t.Errorf("cancelled context: got %v", err)
	}
}

// TestKeptActivationsMatchRecomputation checks that keeping a layer's
// activations instead of recomputing them changes nothing, bit for bit.
func TestKeptActivationsMatchRecomputation(t *testing.T) {
	m := tinyModel(t, true, false)
	run := func(keep int64) *Trainer {
		ad, _ := NewLoRA(m, LoRASpec{R: 3, Alpha: 6, Targets: allModules}, 5)
		randomB(ad, 6)
		pt, _ := NewPromptTuning(m, 2, nil, 3)
		ad.Prompt, ad.NumVirtual = pt.Prompt, pt.NumVirtual
		tr, err := New(m, ad, Config{Dropout: 0.2, KeepBytes: keep})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tr.Accumulate(context.Background(), par.New(2), testBatch(), 1); err != nil {
			t.Fatal(err)
		}
		return tr
	}
	ref := run(0)
	perLayer := ref.c.size(ref, ref.n, len(ref.c.probs))
	for keepN, keep := range []int64{0, perLayer, 1 << 30} {
		tr := run(keep)
		if tr.keepN != min(keepN, 2) {
			t.Fatalf("KeepBytes %d kept %d layers, want %d", keep, tr.keepN, keepN)
		}
		got, want := tr.Params(), ref.Params()
		for i := range want {
			for j := range want[i].G {
				if got[i].G[j] != want[i].G[j] {
					t.Fatalf("KeepBytes %d: gradient %d[%d] is %v, recomputation gives %v", keep, i, j, got[i].G[j], want[i].G[j])
				}
			}
		}
	}
}

func TestDropoutMask(t *testing.T) {
	m := tinyModel(t, false, false)
	ad, _ := NewLoRA(m, LoRASpec{R: 1, Alpha: 1, Targets: allModules}, 1)
	tr, _ := New(m, ad, Config{Dropout: 0.25, Seed: 9})
	src := make([]float32, 100003)
	for i := range src {
		src[i] = 3
	}
	a, b := make([]float32, len(src)), make([]float32, len(src))
	tr.dropout(par.New(2), 1, model.Up, a, src)
	tr.dropout(par.Serial, 1, model.Up, b, src)
	zeros := 0
	for i, v := range a {
		if v != b[i] {
			t.Fatal("mask depends on the worker split")
		}
		switch v {
		case 0:
			zeros++
		case 4:
		default:
			t.Fatalf("kept value %v, want 3/(1-0.25) = 4", v)
		}
	}
	if f := float64(zeros) / float64(len(src)); math.Abs(f-0.25) > 0.01 {
		t.Fatalf("dropped %.4f of the values, want 0.25", f)
	}
	tr.dropout(par.Serial, 1, model.Down, b, src)
	if slicesEqual(a, b) {
		t.Fatal("two modules share a mask")
	}
}

func slicesEqual(a, b []float32) bool {
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestDropoutGrad checks that the backward mask equals the forward mask,
// including for zero inputs, whose dropped-out value says nothing.
func TestDropoutGrad(t *testing.T) {
	m := tinyModel(t, false, false)
	ad, _ := NewLoRA(m, LoRASpec{R: 1, Alpha: 1, Targets: allModules}, 1)
	tr, _ := New(m, ad, Config{Dropout: 0.5, Seed: 4})
	n := 10001
	x, ones, xd, mask, dx := make([]float32, n), make([]float32, n), make([]float32, n), make([]float32, n), make([]float32, n)
	for i := range x {
		ones[i] = 1
		if i%3 != 0 {
			x[i] = float32(i)
		}
	}
	p := par.New(2)
	tr.dropout(p, 0, model.O, mask, ones)
	tr.dropout(p, 0, model.O, xd, x)
	tr.dropoutGrad(p, dx, append([]float32(nil), ones...))
	for i := range dx {
		if dx[i] != mask[i] {
			t.Fatalf("element %d (input %v): gradient mask %v, forward mask %v", i, x[i], dx[i], mask[i])
		}
	}
}
