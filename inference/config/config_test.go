package config

import (
	"errors"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/loraplex/loraplex/inference/fixtures"
)

// The golden files in testdata are the config.json files the named Hugging
// Face repositories publish; the expected values are read off them by hand.
func TestGoldenConfigs(t *testing.T) {
	llama3 := &RopeScaling{Type: "llama3", Factor: 32, LowFreqFactor: 1, HighFreqFactor: 4, OriginalMaxPos: 8192}
	cases := []struct {
		file string
		want Config
	}{
		{"llama2-7b.json", Config{Arch: "llama", Hidden: 4096, Intermediate: 11008, Layers: 32, Heads: 32, KVHeads: 32, HeadDim: 128,
			Vocab: 32000, MaxPos: 4096, NormEps: 1e-5, RopeTheta: 10000, BOS: 1, EOS: []int{2}, DType: "float16"}},
		{"llama3.2-1b-instruct.json", Config{Arch: "llama", Hidden: 2048, Intermediate: 8192, Layers: 16, Heads: 32, KVHeads: 8, HeadDim: 64,
			Vocab: 128256, MaxPos: 131072, NormEps: 1e-5, RopeTheta: 500000, RopeScaling: llama3, TieEmbeddings: true,
			BOS: 128000, EOS: []int{128001, 128008, 128009}, DType: "bfloat16"}},
		{"transformers5-rope-parameters.json", Config{Arch: "llama", Hidden: 2048, Intermediate: 8192, Layers: 16, Heads: 32, KVHeads: 8, HeadDim: 64,
			Vocab: 128256, MaxPos: 131072, NormEps: 1e-5, RopeTheta: 500000, RopeScaling: llama3, TieEmbeddings: true,
			BOS: 128000, EOS: []int{128001}, DType: "bfloat16"}},
		{"mistral-7b-v0.1.json", Config{Arch: "mistral", Hidden: 4096, Intermediate: 14336, Layers: 32, Heads: 32, KVHeads: 8, HeadDim: 128,
			Vocab: 32000, MaxPos: 32768, NormEps: 1e-5, RopeTheta: 10000, SlidingWindow: 4096, BOS: 1, EOS: []int{2}, DType: "bfloat16"}},
		{"qwen2-0.5b-instruct.json", Config{Arch: "qwen2", Hidden: 896, Intermediate: 4864, Layers: 24, Heads: 14, KVHeads: 2, HeadDim: 64,
			Vocab: 151936, MaxPos: 32768, NormEps: 1e-6, RopeTheta: 1e6, TieEmbeddings: true, QKVBias: true,
			BOS: 151643, EOS: []int{151645}, DType: "bfloat16"}},
		{"smollm2-135m.json", Config{Arch: "llama", Hidden: 576, Intermediate: 1536, Layers: 30, Heads: 9, KVHeads: 3, HeadDim: 64,
			Vocab: 49152, MaxPos: 8192, NormEps: 1e-5, RopeTheta: 100000, TieEmbeddings: true, BOS: 0, EOS: []int{0}, DType: "bfloat16"}},
		{"tinyllama-bnb-nf4.json", Config{Arch: "llama", Hidden: 2048, Intermediate: 5632, Layers: 22, Heads: 32, KVHeads: 4, HeadDim: 64,
			Vocab: 32000, MaxPos: 2048, NormEps: 1e-5, RopeTheta: 10000, BOS: 1, EOS: []int{2}, DType: "float16",
			Quant: &QuantConfig{Method: "bitsandbytes", QuantType: "nf4", DoubleQuant: true, ComputeDType: "bfloat16", StorageDType: "uint8"}}},
	}
	for _, c := range cases {
		t.Run(c.file, func(t *testing.T) {
			b, err := os.ReadFile(filepath.Join("testdata", c.file))
			if err != nil {
				t.Fatal(err)
			}
			got, err := Parse(b)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(*got, c.want) {
				t.Errorf("got  %+v\nwant %+v", *got, c.want)
			}
		})
	}
}

func TestLoadMergesGenerationConfig(t *testing.T) {
	cases := []struct {
		name    string
		base    string
		gen     string
		wantBOS int
		wantEOS []int
	}{
		{"qwen2 list", "qwen2-0.5b-instruct.json", "qwen2-0.5b-instruct.generation_config.json", 151643, []int{151645, 151643}},
		{"llama3 same list", "llama3.2-1b-instruct.json", "llama3.2-1b-instruct.generation_config.json", 128000, []int{128001, 128008, 128009}},
		{"no generation config", "llama2-7b.json", "", 1, []int{2}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			copyFile(t, filepath.Join("testdata", c.base), filepath.Join(dir, "config.json"))
			if c.gen != "" {
				copyFile(t, filepath.Join("testdata", c.gen), filepath.Join(dir, "generation_config.json"))
			}
			got, err := Load(dir)
			if err != nil {
				t.Fatal(err)
			}
			if got.BOS != c.wantBOS || !reflect.DeepEqual(got.EOS, c.wantEOS) {
				t.Errorf("BOS %d EOS %v, want %d %v", got.BOS, got.EOS, c.wantBOS, c.wantEOS)
			}
		})
	}
	dir := t.TempDir()
	copyFile(t, filepath.Join("testdata", "llama2-7b.json"), filepath.Join(dir, "config.json"))
	os.WriteFile(filepath.Join(dir, "generation_config.json"), []byte(`{"eos_token_id": 7}`), 0o644)
	got, err := Load(dir)
	if err != nil || !reflect.DeepEqual(got.EOS, []int{7, 2}) {
		t.Errorf("override: EOS %v, err %v; want [7 2]", got.EOS, err)
	}
	os.WriteFile(filepath.Join(dir, "generation_config.json"), []byte(`{"eos_token_id": "x"}`), 0o644)
	if _, err := Load(dir); !errors.Is(err, ErrInvalid) {
		t.Errorf("bad generation config: %v", err)
	}
	if _, err := Load(t.TempDir()); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing config.json: %v", err)
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestSharedModels(t *testing.T) {
	c, err := Load(fixtures.Path(t, "models", "stories260k"))
	if err != nil {
		t.Fatal(err)
	}
	want := Config{Arch: "llama", Hidden: 64, Intermediate: 172, Layers: 5, Heads: 8, KVHeads: 4, HeadDim: 8, Vocab: 512, MaxPos: 512,
		NormEps: 1e-5, RopeTheta: 10000, TieEmbeddings: true, BOS: 1, EOS: []int{2}, DType: "float32"}
	if !reflect.DeepEqual(*c, want) {
		t.Errorf("stories260k: got %+v", *c)
	}
	c, err = Load(fixtures.Path(t, "fixtures", "tiny-llama"))
	if err != nil {
		t.Fatal(err)
	}
	if c.HeadDim != 16 || c.KVHeads != 2 || c.Intermediate != 160 || c.Vocab != 300 || c.TieEmbeddings {
		t.Errorf("tiny-llama: got %+v", *c)
	}
}

func TestDefaults(t *testing.T) {
	cases := []struct {
		json string
		want Config
	}{
		{`{"architectures":["LlamaForCausalLM"]}`, Config{Arch: "llama", Hidden: 4096, Intermediate: 11008, Layers: 32, Heads: 32, KVHeads: 32,
			HeadDim: 128, Vocab: 32000, MaxPos: 2048, NormEps: 1e-6, RopeTheta: 10000, BOS: 1, EOS: []int{2}}},
		{`{"model_type":"mistral","hidden_size":64,"num_attention_heads":4,"num_key_value_heads":null}`, Config{Arch: "mistral", Hidden: 64,
			Intermediate: 14336, Layers: 32, Heads: 4, KVHeads: 4, HeadDim: 16, Vocab: 32000, MaxPos: 131072, NormEps: 1e-6, RopeTheta: 10000,
			BOS: 1, EOS: []int{2}}},
		{`{"architectures":["Qwen2ForCausalLM"],"hidden_size":64,"num_attention_heads":4,"num_key_value_heads":2,"vocab_size":100,
			"use_sliding_window":true,"sliding_window":16,"rope_scaling":{"type":"linear","factor":2}}`,
			Config{Arch: "qwen2", Hidden: 64, Intermediate: 22016, Layers: 32, Heads: 4, KVHeads: 2, HeadDim: 16, Vocab: 100, MaxPos: 32768,
				NormEps: 1e-6, RopeTheta: 10000, RopeScaling: &RopeScaling{Type: "linear", Factor: 2}, QKVBias: true, SlidingWindow: 16, BOS: -1}},
		{`{"architectures":["LlamaForCausalLM"],"bos_token_id":null,"eos_token_id":null,"rope_scaling":{"rope_type":"default"},"hidden_act":"silu"}`,
			Config{Arch: "llama", Hidden: 4096, Intermediate: 11008, Layers: 32, Heads: 32, KVHeads: 32, HeadDim: 128, Vocab: 32000, MaxPos: 2048,
				NormEps: 1e-6, RopeTheta: 10000, BOS: -1}},
	}
	for _, c := range cases {
		got, err := Parse([]byte(c.json))
		if err != nil {
			t.Errorf("%s: %v", c.json, err)
			continue
		}
		if !reflect.DeepEqual(*got, c.want) {
			t.Errorf("%s:\ngot  %+v\nwant %+v", c.json, *got, c.want)
		}
	}
}

func TestRejects(t *testing.T) {
	base := `"hidden_size":64,"num_attention_heads":4,"vocab_size":100`
	cases := []struct {
		json   string
		err    error
		substr string
	}{
		{`{"architectures":["GPT2LMHeadModel"]}`, ErrUnsupported, "GPT2LMHeadModel"},
		{`{"model_type":"gemma"}`, ErrUnsupported, "gemma"},
		{`{}`, ErrInvalid, "model_type"},
		{`{"architectures":["LlamaForCausalLM"],` + base + `,"hidden_act":"gelu"}`, ErrUnsupported, "gelu"},
		{`{"architectures":["LlamaForCausalLM"],` + base + `,"rope_scaling":{"rope_type":"yarn","factor":4}}`, ErrUnsupported, "yarn"},
		{`{"architectures":["LlamaForCausalLM"],` + base + `,"rope_scaling":{"type":"dynamic","factor":4}}`, ErrUnsupported, "dynamic"},
		{`{"architectures":["LlamaForCausalLM"],` + base + `,"rope_scaling":{"rope_type":"llama3","factor":8}}`, ErrInvalid, "low_freq_factor"},
		{`{"architectures":["LlamaForCausalLM"],` + base + `,"rope_scaling":{"rope_type":"llama3","factor":8,"low_freq_factor":4,"high_freq_factor":1,"original_max_position_embeddings":8192}}`, ErrInvalid, "low_freq_factor"},
		{`{"architectures":["LlamaForCausalLM"],` + base + `,"rope_scaling":{"rope_type":"linear"}}`, ErrInvalid, "factor"},
		{`{"architectures":["LlamaForCausalLM"],` + base + `,"rope_scaling":{"rope_type":"linear","factor":0}}`, ErrInvalid, "factor"},
		{`{"architectures":["LlamaForCausalLM"],` + base + `,"rope_scaling":5}`, ErrInvalid, "rope_scaling"},
		{`{"architectures":["LlamaForCausalLM"],"hidden_size":64,"num_attention_heads":5}`, ErrInvalid, "does not divide hidden_size"},
		{`{"architectures":["LlamaForCausalLM"],` + base + `,"num_key_value_heads":3}`, ErrInvalid, "does not divide num_attention_heads"},
		{`{"architectures":["LlamaForCausalLM"],` + base + `,"num_hidden_layers":0}`, ErrInvalid, "num_hidden_layers is 0"},
		{`{"architectures":["LlamaForCausalLM"],` + base + `,"intermediate_size":-1}`, ErrInvalid, "intermediate_size"},
		{`{"architectures":["LlamaForCausalLM"],"hidden_size":0,"num_attention_heads":4}`, ErrInvalid, "hidden_size is 0"},
		{`{"architectures":["LlamaForCausalLM"],"num_attention_heads":0}`, ErrInvalid, "num_attention_heads is 0"},
		{`{"architectures":["LlamaForCausalLM"],` + base + `,"head_dim":7}`, ErrInvalid, "odd"},
		{`{"architectures":["LlamaForCausalLM"],` + base + `,"rms_norm_eps":0}`, ErrInvalid, "rms_norm_eps"},
		{`{"architectures":["LlamaForCausalLM"],` + base + `,"rope_theta":0}`, ErrInvalid, "rope_theta"},
		{`{"architectures":["LlamaForCausalLM"],` + base + `,"eos_token_id":"</s>"}`, ErrInvalid, "eos_token_id"},
		{`{"architectures":["LlamaForCausalLM"],` + base + `,"eos_token_id":100}`, ErrInvalid, "outside the vocabulary"},
		{`{"architectures":["LlamaForCausalLM"],` + base + `,"attention_bias":true}`, ErrUnsupported, "attention_bias"},
		{`{"architectures":["LlamaForCausalLM"],` + base + `,"mlp_bias":true}`, ErrUnsupported, "mlp_bias"},
		{`{"architectures":["LlamaForCausalLM"],` + base + `,"quantization_config":{"quant_method":"gptq","bits":4}}`, ErrUnsupported, "gptq"},
		{`{"architectures":["LlamaForCausalLM"],` + base + `,"quantization_config":{"quant_method":"bitsandbytes","load_in_8bit":true}}`, ErrUnsupported, "load_in_8bit true"},
		{`{"architectures":["LlamaForCausalLM"],` + base + `,"quantization_config":{"quant_method":"bitsandbytes","load_in_4bit":true}}`, ErrUnsupported, "fp4"},
		{`{"architectures":["LlamaForCausalLM"],` + base + `,"hidden_size":"64"}`, ErrInvalid, "hidden_size"},
		{`[1]`, ErrInvalid, "cannot unmarshal"},
		{`{"architectures":`, ErrInvalid, "unexpected end"},
	}
	for _, c := range cases {
		_, err := Parse([]byte(c.json))
		if !errors.Is(err, c.err) || !strings.Contains(err.Error(), c.substr) {
			t.Errorf("%s:\n  err = %v\n  want %v containing %q", c.json, err, c.err, c.substr)
			continue
		}
		if errors.Is(err, ErrUnsupported) && !strings.Contains(err.Error(), "supported:") {
			t.Errorf("%s: unsupported error %q does not list what is supported", c.json, err)
		}
	}
}

func TestInvFreq(t *testing.T) {
	const tol = 1e-13 // pow differs between libms in the last bits
	near := func(a, b float64) bool { return math.Abs(a-b) <= tol*math.Max(math.Abs(a), math.Abs(b)) }
	// Default RoPE, hand-checkable: θ=10000, head_dim 8 → 10000^(−i/4).
	c := &Config{HeadDim: 8, RopeTheta: 10000}
	for i, want := range []float64{1, 0.1, 0.01, 0.001} {
		if got := c.InvFreq()[i]; !near(got, want) {
			t.Errorf("default[%d] = %v, want %v", i, got, want)
		}
	}
	c.RopeScaling = &RopeScaling{Type: "linear", Factor: 4}
	for i, want := range []float64{0.25, 0.025, 0.0025, 0.00025} {
		if got := c.InvFreq()[i]; !near(got, want) {
			t.Errorf("linear[%d] = %v, want %v", i, got, want)
		}
	}
	// Llama-3.2-1B (θ=5e5, head_dim 64, factor 32, low 1, high 4, original
	// 8192): expected values from an independent Python evaluation of the
	// rule in transformers' _compute_llama3_parameters.
	b, err := os.ReadFile(filepath.Join("testdata", "llama3.2-1b-instruct.json"))
	if err != nil {
		t.Fatal(err)
	}
	l3, err := Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	f := l3.InvFreq()
	if len(f) != 32 {
		t.Fatalf("len = %d, want 32", len(f))
	}
	for i, want := range map[int]float64{
		0:  1.0,                    // high frequency: unchanged
		10: 0.016560440080994446,   // unchanged
		14: 0.0032114459947525913,  // last unchanged one
		15: 0.001290547928209264,   // smoothed
		16: 0.00042955679655936815, // smoothed
		17: 9.70828780262767e-05,   // smoothed
		18: 1.9461638184831125e-05, // low frequency: divided by 32
		20: 8.570255489881478e-06,
		31: 9.418306725434909e-08,
	} {
		if !near(f[i], want) {
			t.Errorf("llama3[%d] = %v, want %v", i, f[i], want)
		}
	}
}

// Each file in testdata/bad is a config the engine must refuse.
func TestBadConfigFiles(t *testing.T) {
	want := map[string]error{
		"gpt2.json":                  ErrUnsupported,
		"yarn-rope.json":             ErrUnsupported,
		"gelu-llama.json":            ErrUnsupported,
		"kv-heads-not-dividing.json": ErrInvalid,
		"zero-layers.json":           ErrInvalid,
	}
	files, err := filepath.Glob(filepath.Join("testdata", "bad", "*.json"))
	if err != nil || len(files) != len(want) {
		t.Fatalf("found %d bad configs, want %d (%v)", len(files), len(want), err)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		_, err = Parse(b)
		if w := want[filepath.Base(f)]; !errors.Is(err, w) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: err = %v, want %v on one line", f, err, w)
		}
	}
}
