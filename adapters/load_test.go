package adapters

import (
	"errors"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/loraplex/loraplex/inference/config"
	"github.com/loraplex/loraplex/inference/fixtures"
	"github.com/loraplex/loraplex/inference/model"
	"github.com/loraplex/loraplex/inference/safetensors"
)

func TestLoadFixture(t *testing.T) {
	dir := fixtures.Path(t, "fixtures", "lora-r8")
	base, err := config.Load(fixtures.Path(t, "fixtures", "tiny-llama"))
	if err != nil {
		t.Fatal(err)
	}
	res, err := Read(dir, base, Options{ID: "lora-r8@x", BaseName: "/models/tiny-llama"})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Warnings) != 0 {
		t.Errorf("warnings %q, want none (base names agree)", res.Warnings)
	}
	a, c := res.Adapter, res.Config
	if a.ID != "lora-r8@x" || c.R != 8 || c.Alpha != 16 || c.PeftType != TypeLoRA {
		t.Fatalf("id %q r %d alpha %v type %q", a.ID, c.R, c.Alpha, c.PeftType)
	}
	if len(a.LoRA) != 2 {
		t.Fatalf("%d layers, want 2", len(a.LoRA))
	}
	wpath := filepath.Join(dir, WeightsFile)
	for l := range 2 {
		for m := range model.NumModules {
			lo := a.LoRA[l][m]
			if lo == nil {
				t.Fatalf("layer %d %s not adapted", l, m)
			}
			if lo.R != 8 || lo.Scale != 2.0 {
				t.Errorf("layer %d %s: r %d scale %v, want 8 and 2.0", l, m, lo.R, lo.Scale)
			}
			d := tinyDims[m.String()]
			if len(lo.A) != 8*d[0] || len(lo.B) != d[1]*8 {
				t.Errorf("layer %d %s: |A| %d |B| %d, want %d and %d", l, m, len(lo.A), len(lo.B), 8*d[0], d[1]*8)
			}
			shape, want := tensorValues(t, wpath, key(l, m.String(), "B"))
			if shape[0] != d[1] || shape[1] != 8 || !equalF32(lo.B, want) {
				t.Errorf("layer %d %s: B differs from the file's tensor (file shape %v)", l, m, shape)
			}
		}
	}
	// Σ r·(in+out) over the 7 modules is 8960 floats per layer, plus the
	// transposed copy of B (r·Σout = 4608) that serving reads.
	if got := a.Bytes(); got != 2*(8960+4608)*4 {
		t.Errorf("Bytes %d, want %d", got, 2*(8960+4608)*4)
	}
}

func TestWarnings(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	cfg := `{"peft_type":"LORA","r":4,"lora_alpha":8,"target_modules":["q_proj","v_proj"],"base_model_name_or_path":"TinyLlama/TinyLlama-1.1B"}`
	dir := writeDir(t, cfg, loraTensors(rng, uniform(4), map[int][]string{0: {"q_proj", "v_proj"}}))
	res, err := Read(dir, tinyBase(), Options{BaseName: "meta-llama/Llama-3.2-1B"})
	if err != nil {
		t.Fatal(err)
	}
	joined := strings.Join(res.Warnings, "\n")
	if !strings.Contains(joined, "TinyLlama/TinyLlama-1.1B") || !strings.Contains(joined, "have no weights") {
		t.Errorf("warnings %q: want a base-name mismatch and the two unadapted layer-1 modules", res.Warnings)
	}
	if res.Adapter.LoRA[1][model.Q] != nil || res.Adapter.LoRA[0][model.V] == nil {
		t.Error("wrong modules adapted")
	}
}

func TestRoundTripLoRA(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	a := &model.Adapter{LoRA: make([][model.NumModules]*model.LoRA, 2)}
	for l := range 2 {
		for _, m := range []model.Module{model.Q, model.K, model.Down} {
			d := tinyDims[m.String()]
			a.LoRA[l][m] = &model.LoRA{R: 4, Scale: 4, A: randVals(rng, 4*d[0]), B: randVals(rng, d[1]*4)}
		}
	}
	dir := filepath.Join(t.TempDir(), "out")
	cfg := &PEFTConfig{R: 4, Alpha: 16, BaseModel: "tiny-llama"}
	if err := SaveLoRA(dir, cfg, a); err != nil {
		t.Fatal(err)
	}
	b, c := mustLoad(t, dir)
	if got := c.TargetModules.String(); got != `["q_proj", "k_proj", "down_proj"]` {
		t.Errorf("derived target_modules %s", got)
	}
	for l := range 2 {
		for m := range model.NumModules {
			x, y := a.LoRA[l][m], b.LoRA[l][m]
			if (x == nil) != (y == nil) {
				t.Fatalf("layer %d %s: presence differs", l, m)
			}
			if x != nil && (x.R != y.R || x.Scale != y.Scale || !equalF32(x.A, y.A) || !equalF32(x.B, y.B)) {
				t.Errorf("layer %d %s: round trip changed the module", l, m)
			}
		}
	}
	// Every key PEFT itself writes (as in the reference fixture) is present.
	js, err := os.ReadFile(filepath.Join(dir, ConfigFile))
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"alpha_pattern", "base_model_name_or_path", "bias", "fan_in_fan_out", "inference_mode", "init_lora_weights",
		"layers_pattern", "layers_to_transform", "lora_alpha", "lora_dropout", "modules_to_save", "peft_type", "r", "rank_pattern",
		"revision", "target_modules", "task_type", "use_dora", "use_rslora"} {
		if !strings.Contains(string(js), `"`+k+`":`) {
			t.Errorf("adapter_config.json lacks %q", k)
		}
	}
	// Only the adapter is left in the parent: no temporary directories.
	if ents, _ := os.ReadDir(filepath.Dir(dir)); len(ents) != 1 {
		t.Errorf("parent holds %d entries, want 1", len(ents))
	}
	if err := SaveLoRA(dir, cfg, a); !errors.Is(err, ErrExists) {
		t.Errorf("saving over an adapter: %v, want ErrExists", err)
	}
}

func TestSaveRejects(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	a := &model.Adapter{LoRA: make([][model.NumModules]*model.LoRA, 1)}
	a.LoRA[0][model.Q] = &model.LoRA{R: 4, Scale: 2, A: randVals(rng, 4*64), B: randVals(rng, 64*4)}
	for _, tc := range []struct {
		name string
		cfg  PEFTConfig
		want string
	}{
		{"wrong scale", PEFTConfig{R: 4, Alpha: 16}, "scale"},
		{"wrong rank", PEFTConfig{R: 8, Alpha: 16}, "rank 4"},
		{"not targeted", PEFTConfig{R: 4, Alpha: 8, TargetModules: Modules{Names: []string{"v_proj"}}}, "does not select"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			parent := t.TempDir()
			err := SaveLoRA(filepath.Join(parent, "x"), &tc.cfg, a)
			if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v, want ErrConfig mentioning %q", err, tc.want)
			}
			if ents, _ := os.ReadDir(parent); len(ents) != 0 {
				t.Errorf("a failed save left %d entries", len(ents))
			}
		})
	}
}

func TestRoundTripPrompt(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	a := &model.Adapter{Prompt: randVals(rng, 5*64), NumVirtual: 5}
	dir := filepath.Join(t.TempDir(), "pt")
	if err := SavePromptTuning(dir, &PEFTConfig{NumAttentionHeads: 4, NumLayers: 2}, a); err != nil {
		t.Fatal(err)
	}
	b, c := mustLoad(t, dir)
	if c.PeftType != TypePromptTuning || c.NumVirtualTokens != 5 || c.TokenDim != 64 || c.NumTransformerSubmodules != 1 {
		t.Errorf("config %+v", c)
	}
	if b.NumVirtual != 5 || !equalF32(a.Prompt, b.Prompt) || b.LoRA != nil {
		t.Error("prompt changed in the round trip")
	}
	shape, _ := tensorValues(t, filepath.Join(dir, WeightsFile), "prompt_embeddings")
	if shape[0] != 5 || shape[1] != 64 {
		t.Errorf("prompt_embeddings shape %v", shape)
	}
}

func TestPatterns(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	// rank_pattern is ordered: for layer 0 q_proj both keys match and the
	// first wins. "proj" matches nothing: it must follow a "." or start the
	// name. alpha_pattern applies to v_proj only.
	cfg := `{"peft_type":"LORA","r":8,"lora_alpha":16,"use_rslora":true,
		"target_modules":["q_proj","v_proj","down_proj"],
		"rank_pattern":{"q_proj":4,"model.layers.0.self_attn.q_proj":2,"layers.1.mlp.down_proj":2,"proj":1},
		"alpha_pattern":{"v_proj":32}}`
	ranks := map[string]int{"q_proj": 4, "v_proj": 8, "down_proj": 8}
	ts := loraTensors(rng, ranks, map[int][]string{0: {"q_proj", "v_proj", "down_proj"}, 1: {"q_proj", "v_proj"}})
	ts = append(ts, loraTensors(rng, map[string]int{"down_proj": 2}, map[int][]string{1: {"down_proj"}})...)
	a, _ := mustLoad(t, writeDir(t, cfg, ts))
	want := []struct {
		l     int
		m     model.Module
		r     int
		scale float64
	}{
		{0, model.Q, 4, 16 / 2.0}, {1, model.Q, 4, 16 / 2.0},
		{0, model.V, 8, 32 / math.Sqrt(8)}, {1, model.V, 8, 32 / math.Sqrt(8)},
		{0, model.Down, 8, 16 / math.Sqrt(8)}, {1, model.Down, 2, 16 / math.Sqrt(2)},
	}
	for _, w := range want {
		lo := a.LoRA[w.l][w.m]
		if lo == nil || lo.R != w.r || math.Abs(float64(lo.Scale)-w.scale) > 1e-6 {
			t.Errorf("layer %d %s: got %+v, want r %d scale %v", w.l, w.m, lo, w.r, w.scale)
		}
	}
	// Saving with the same rules reproduces the adapter.
	_, c := mustLoad(t, writeDir(t, cfg, ts))
	out := filepath.Join(t.TempDir(), "again")
	if err := SaveLoRA(out, c, a); err != nil {
		t.Fatal(err)
	}
	b, c2 := mustLoad(t, out)
	if len(c2.RankPattern) != 4 || c2.RankPattern[0].Pattern != "q_proj" || c2.RankPattern[3].Pattern != "proj" {
		t.Errorf("rank_pattern order lost: %+v", c2.RankPattern)
	}
	if b.LoRA[1][model.Down].R != 2 || b.LoRA[0][model.Q].Scale != a.LoRA[0][model.Q].Scale {
		t.Error("re-saved adapter differs")
	}
}

// adapted lists "layer.module" for every adapted module.
func adapted(a *model.Adapter) string {
	var s []string
	for l, layer := range a.LoRA {
		for m, lo := range layer {
			if lo != nil {
				s = append(s, itoa(l)+"."+model.Module(m).String())
			}
		}
	}
	return strings.Join(s, " ")
}

func TestSelection(t *testing.T) {
	for _, tc := range []struct {
		name, targets string
		mods          map[int][]string
		want          string
	}{
		{"regex", `"target_modules":"model\\.layers\\.1\\..*(q|v)_proj"`, map[int][]string{1: {"q_proj", "v_proj"}}, "1.q_proj 1.v_proj"},
		{"regex alternation is fully anchored", `"target_modules":"model\\.layers\\.0\\.mlp\\.up_proj|.*k_proj"`, map[int][]string{0: {"up_proj", "k_proj"}, 1: {"k_proj"}}, "0.k_proj 0.up_proj 1.k_proj"},
		{"layers_to_transform list", `"target_modules":["q_proj","o_proj"],"layers_to_transform":[1]`, map[int][]string{1: {"q_proj", "o_proj"}}, "1.q_proj 1.o_proj"},
		{"layers_to_transform int with pattern", `"target_modules":["gate_proj"],"layers_to_transform":0,"layers_pattern":"layers"`, map[int][]string{0: {"gate_proj"}}, "0.gate_proj"},
		{"explicit full name ignores layers", `"target_modules":["model.layers.0.self_attn.q_proj","v_proj"],"layers_to_transform":[1]`, map[int][]string{0: {"q_proj"}, 1: {"v_proj"}}, "0.q_proj 1.v_proj"},
		{"all-linear with exclude", `"target_modules":"all-linear","exclude_modules":["o_proj","up_proj","down_proj","gate_proj","k_proj"]`, allLayers("q_proj", "v_proj"), "0.q_proj 0.v_proj 1.q_proj 1.v_proj"},
		{"exclude regex", `"target_modules":["q_proj"],"exclude_modules":".*\\.1\\..*"`, map[int][]string{0: {"q_proj"}}, "0.q_proj"},
		{"default targets", `"target_modules":null`, allLayers("q_proj", "v_proj"), "0.q_proj 0.v_proj 1.q_proj 1.v_proj"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(11, 12))
			cfg := `{"peft_type":"LORA","task_type":null,"r":2,"lora_alpha":4,` + tc.targets + `}`
			a, _ := mustLoad(t, writeDir(t, cfg, loraTensors(rng, uniform(2), tc.mods)))
			if got := adapted(a); got != tc.want {
				t.Errorf("adapted %q, want %q", got, tc.want)
			}
		})
	}
}

func TestLenientInputs(t *testing.T) {
	rng := rand.New(rand.NewPCG(13, 14))
	t.Run("no base_model.model prefix", func(t *testing.T) {
		ts := loraTensors(rng, uniform(2), map[int][]string{0: {"q_proj"}})
		for i := range ts {
			ts[i].Name = strings.TrimPrefix(ts[i].Name, peftPrefix)
		}
		a, _ := mustLoad(t, writeDir(t, `{"peft_type":"LORA","r":2,"lora_alpha":2,"target_modules":["q_proj"],"layers_to_transform":[0],"some_future_key":{"x":1}}`, ts))
		if adapted(a) != "0.q_proj" {
			t.Errorf("adapted %q", adapted(a))
		}
	})
	t.Run("half precision", func(t *testing.T) {
		// Multiples of 1/64 below 2 are exact in F16 and BF16.
		v := func(n int) []float32 {
			x := make([]float32, n)
			for i := range x {
				x[i] = float32(i%97-48) / 64
			}
			return x
		}
		ts := []safetensors.Tensor{
			safetensors.BF16Tensor(key(0, "k_proj", "A"), []int{2, 64}, v(128)),
			safetensors.F16Tensor(key(0, "k_proj", "B"), []int{32, 2}, v(64)),
		}
		a, _ := mustLoad(t, writeDir(t, `{"peft_type":"LORA","r":2,"lora_alpha":2,"target_modules":["k_proj"]}`, ts))
		lo := a.LoRA[0][model.K]
		if !equalF32(lo.A, v(128)) || !equalF32(lo.B, v(64)) {
			t.Error("half-precision values changed")
		}
	})
	t.Run("fan_in_fan_out transposed", func(t *testing.T) {
		at := randVals(rng, 64*2) // [in 64, r 2]
		bt := randVals(rng, 2*32) // [r 2, out 32]
		ts := []safetensors.Tensor{
			safetensors.F32Tensor(key(0, "v_proj", "A"), []int{64, 2}, at),
			safetensors.F32Tensor(key(0, "v_proj", "B"), []int{2, 32}, bt),
		}
		res, err := Read(writeDir(t, `{"peft_type":"LORA","r":2,"lora_alpha":2,"target_modules":["v_proj"],"fan_in_fan_out":true}`, ts), tinyBase(), Options{})
		if err != nil {
			t.Fatal(err)
		}
		lo := res.Adapter.LoRA[0][model.V]
		if lo.A[1*64+5] != at[5*2+1] || lo.B[7*2+1] != bt[1*32+7] {
			t.Error("tensors not transposed to [r, in] and [out, r]")
		}
		if len(res.Warnings) == 0 {
			t.Error("no warning about fan_in_fan_out")
		}
	})
}

func TestRejects(t *testing.T) {
	rng := rand.New(rand.NewPCG(15, 16))
	good := `{"peft_type":"LORA","task_type":"CAUSAL_LM","r":2,"lora_alpha":4,"target_modules":["q_proj","k_proj"]}`
	qk := func() []safetensors.Tensor { return loraTensors(rng, uniform(2), allLayers("q_proj", "k_proj")) }
	with := func(cfgPatch string) string { return strings.Replace(good, `"r":2`, cfgPatch+`,"r":2`, 1) }
	poison := func(x float32) []safetensors.Tensor {
		ts := qk()
		v := randVals(rng, 32*2)
		v[17] = x
		for i := range ts {
			if ts[i].Name == key(1, "k_proj", "B") {
				ts[i] = safetensors.F32Tensor(ts[i].Name, []int{32, 2}, v)
			}
		}
		return ts
	}
	replace := func(name string, t safetensors.Tensor) []safetensors.Tensor {
		ts := qk()
		for i := range ts {
			if ts[i].Name == name {
				ts[i] = t
			}
		}
		return ts
	}
	drop := func(name string) []safetensors.Tensor {
		var out []safetensors.Tensor
		for _, x := range qk() {
			if x.Name != name {
				out = append(out, x)
			}
		}
		return out
	}
	extra := func(name string, shape []int) []safetensors.Tensor {
		n := 1
		for _, d := range shape {
			n *= d
		}
		return append(qk(), safetensors.F32Tensor(name, shape, randVals(rng, n)))
	}
	pt := `{"peft_type":"PROMPT_TUNING","task_type":"CAUSAL_LM","num_virtual_tokens":3,"token_dim":64,"num_transformer_submodules":1}`
	prompt := []safetensors.Tensor{safetensors.F32Tensor("prompt_embeddings", []int{3, 64}, randVals(rng, 3*64))}

	for _, tc := range []struct {
		name string
		cfg  string
		ts   []safetensors.Tensor
		bin  bool
		err  error
		want string // must appear in the message
	}{
		{"missing config", "", qk(), false, ErrNotAdapter, ConfigFile},
		{"config not JSON", `{"peft_type":`, qk(), false, ErrConfig, "JSON"},
		{"no peft_type", `{"r":2}`, qk(), false, ErrConfig, "peft_type"},
		{"unknown peft_type", strings.Replace(good, "LORA", "IA3", 1), qk(), false, ErrUnsupported, `peft_type "IA3"`},
		{"task_type", strings.Replace(good, "CAUSAL_LM", "SEQ_CLS", 1), qk(), false, ErrUnsupported, "task_type"},
		{"r wrong type", strings.Replace(good, `"r":2`, `"r":"2"`, 1), qk(), false, ErrConfig, "r must be an integer"},
		{"r zero", strings.Replace(good, `"r":2`, `"r":0`, 1), qk(), false, ErrConfig, "r is 0"},
		{"bad regex", with(`"rank_pattern":{"q_(":4}`), qk(), false, ErrConfig, "rank_pattern"},
		{"DoRA without magnitudes", with(`"use_dora":true`), qk(), false, ErrWeights, "lora_magnitude_vector"},
		{"DoRA tensor without use_dora", good, extra(peftPrefix+"model.layers.0.self_attn.q_proj.lora_magnitude_vector", []int{64}), false, ErrConfig, "use_dora is false"},
		{"DoRA magnitude shape", with(`"use_dora":true`), withMagnitudes(qk(), 31), false, ErrIncompatible, "lora_magnitude_vector [31]"},
		{"modules_to_save norm", with(`"modules_to_save":["norm"]`), qk(), false, ErrUnsupported, "model.norm"},
		{"modules_to_save reaching layers", with(`"modules_to_save":["s"]`), qk(), false, ErrUnsupported, "model.layers"},
		{"modules_to_save unknown", with(`"modules_to_save":["score"]`), qk(), false, ErrUnsupported, "names no module"},
		{"modules_to_save wrapper key", with(`"modules_to_save":["lm_head"]`), extra(peftPrefix+"lm_head.modules_to_save.default.weight", []int{300, 64}), false, ErrWeights, "lm_head.weight"},
		{"saved copy not listed", good, extra(peftPrefix+"lm_head.weight", []int{300, 64}), false, ErrConfig, "does not list"},
		{"resized vocabulary", with(`"modules_to_save":["lm_head"]`), extra(peftPrefix+"lm_head.weight", []int{302, 64}), false, ErrIncompatible, "resized vocabulary"},
		{"saved copy hidden size", with(`"modules_to_save":["embed_tokens"]`), extra(peftPrefix+"model.embed_tokens.weight", []int{300, 32}), false, ErrIncompatible, "hidden size is 64"},
		{"saved copy NaN", with(`"modules_to_save":["lm_head"]`), append(qk(), bf16NaN(peftPrefix+"lm_head.weight", 300, 64, 1234)), false, ErrWeights, "index 1234"},
		{"prompt modules_to_save", strings.Replace(pt, `"num_virtual_tokens":3`, `"num_virtual_tokens":3,"modules_to_save":["lm_head"]`, 1), prompt, false, ErrUnsupported, "only LoRA"},
		{"bias", with(`"bias":"all"`), qk(), false, ErrUnsupported, "bias"},
		{"lora_bias", with(`"lora_bias":true`), qk(), false, ErrUnsupported, "lora_bias"},
		{"lora_bias tensor", good, extra(peftPrefix+"model.layers.0.self_attn.q_proj.lora_B.bias", []int{64}), false, ErrUnsupported, "bias"},
		{"lm_head targeted", strings.Replace(good, `"k_proj"]`, `"k_proj","lm_head"]`, 1), qk(), false, ErrUnsupported, "lm_head"},
		{"embed_tokens tensor", good, extra(peftPrefix+"model.embed_tokens.lora_embedding_A", []int{2, 300}), false, ErrUnsupported, "embed"},
		{"foreign key", good, extra("transformer.h.0.attn.c_attn.lora_A.weight", []int{2, 64}), false, ErrWeights, "c_attn"},
		{"matches no module", strings.Replace(good, `["q_proj","k_proj"]`, `["c_attn"]`, 1), qk(), false, ErrIncompatible, "selects no module"},
		{"string target needs full match", strings.Replace(good, `["q_proj","k_proj"]`, `"q_proj"`, 1), qk(), false, ErrIncompatible, "selects no module"},
		{"weights for unselected module", strings.Replace(good, `"k_proj"]`, `"k_proj"],"layers_to_transform":[0]`, 1), qk(), false, ErrConfig, "model.layers.1.self_attn.q_proj"},
		{"layers_pattern matches nothing", strings.Replace(good, `"k_proj"]`, `"k_proj"],"layers_to_transform":[0,1],"layers_pattern":"h"`, 1), qk(), false, ErrIncompatible, "selects no module"},
		{"rank mismatch", strings.Replace(good, `"r":2`, `"r":4`, 1), qk(), false, ErrConfig, "rank 4"},
		{"rank_pattern mismatch", with(`"rank_pattern":{"k_proj":3}`), qk(), false, ErrConfig, `rank_pattern["k_proj"]=3`},
		{"NaN", good, poison(float32(math.NaN())), false, ErrWeights, "NaN"},
		{"Inf", good, poison(float32(math.Inf(-1))), false, ErrWeights, "-Inf"},
		{"wrong out dim", good, replace(key(0, "k_proj", "B"), safetensors.F32Tensor(key(0, "k_proj", "B"), []int{64, 2}, randVals(rng, 128))), false, ErrIncompatible, "kv_heads 2 × head_dim 16"},
		{"wrong in dim", good, replace(key(1, "q_proj", "A"), safetensors.F32Tensor(key(1, "q_proj", "A"), []int{2, 32}, randVals(rng, 64))), false, ErrIncompatible, "model.layers.1.self_attn.q_proj"},
		{"3-D tensor", good, replace(key(0, "q_proj", "A"), safetensors.F32Tensor(key(0, "q_proj", "A"), []int{2, 64, 1}, randVals(rng, 128))), false, ErrWeights, "2-D"},
		{"integer dtype", good, replace(key(0, "q_proj", "A"), safetensors.Tensor{Name: key(0, "q_proj", "A"), DType: safetensors.I32, Shape: []int{2, 64}, Data: make([]byte, 512)}), false, ErrWeights, "I32"},
		{"missing B", good, drop(key(1, "q_proj", "B")), false, ErrWeights, "no lora_B"},
		{"layer beyond base", strings.Replace(good, `"k_proj"]`, `"k_proj","o_proj"]`, 1), append(qk(), loraTensors(rng, uniform(2), map[int][]string{7: {"o_proj"}})...), false, ErrIncompatible, "layer 7"},
		{"no weights file", good, nil, false, ErrWeights, WeightsFile},
		{"pickle only", good, nil, true, ErrUnsupported, "convert"},
		{"no weights for any module", good, []safetensors.Tensor{}, false, ErrWeights, "no LoRA weights"},
		{"prompt token_dim", strings.Replace(pt, `"token_dim":64`, `"token_dim":32`, 1), prompt, false, ErrIncompatible, "token_dim 32"},
		{"prompt shape", strings.Replace(pt, `"num_virtual_tokens":3`, `"num_virtual_tokens":4`, 1), prompt, false, ErrWeights, "[4 64]"},
		{"prompt submodules", strings.Replace(pt, `"num_transformer_submodules":1`, `"num_transformer_submodules":2`, 1), prompt, false, ErrUnsupported, "num_transformer_submodules"},
		{"prompt extra tensor", pt, append(prompt, safetensors.F32Tensor("x", []int{1}, []float32{1})), false, ErrWeights, `"x"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := writeDir(t, tc.cfg, tc.ts)
			if tc.bin {
				if err := os.WriteFile(filepath.Join(dir, PickleFile), []byte("PK"), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			_, _, err := Load(dir, tinyBase(), "bad@1")
			if !errors.Is(err, tc.err) {
				t.Fatalf("err = %v, want %v", err, tc.err)
			}
			if msg := err.Error(); !strings.Contains(msg, tc.want) || !strings.Contains(msg, `"bad@1"`) {
				t.Errorf("message %q should name the adapter and mention %q", msg, tc.want)
			}
		})
	}
}

func TestHash(t *testing.T) {
	rng := rand.New(rand.NewPCG(17, 18))
	ts := loraTensors(rng, uniform(2), map[int][]string{0: {"q_proj"}})
	cfg := `{"peft_type":"LORA","r":2,"lora_alpha":2,"target_modules":["q_proj"]}`
	a, b := writeDir(t, cfg, ts), writeDir(t, cfg, ts)
	ha, err := Hash(a)
	if err != nil {
		t.Fatal(err)
	}
	hb, _ := Hash(b)
	if ha != hb || len(ha) != 64 {
		t.Fatalf("same content hashed %s and %s", ha, hb)
	}
	// Hidden files and sub-directories are not content.
	os.WriteFile(filepath.Join(b, ".DS_Store"), []byte("x"), 0o644)
	os.Mkdir(filepath.Join(b, "checkpoint-10"), 0o755)
	if hb, _ = Hash(b); hb != ha {
		t.Error("hidden file or sub-directory changed the hash")
	}
	os.WriteFile(filepath.Join(b, "README.md"), []byte("x"), 0o644)
	if hb, _ = Hash(b); hb == ha {
		t.Error("a new file did not change the hash")
	}
	if id := ID("org/name", ha); id != "org/name@"+ha[:12] {
		t.Errorf("ID %q", id)
	}
}
