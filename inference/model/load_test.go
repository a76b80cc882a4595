package model

import (
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/loraplex/loraplex/inference/fixtures"
	"github.com/loraplex/loraplex/inference/kvcache"
	"github.com/loraplex/loraplex/inference/safetensors"
	"github.com/loraplex/loraplex/quant"
	"github.com/loraplex/loraplex/quant/par"
)

// rewrite copies the tiny fixture model into a temporary directory, letting
// edit change its tensors.
func rewrite(t *testing.T, edit func(ts []safetensors.Tensor) []safetensors.Tensor) string {
	return rewriteConfig(t, edit, func(b []byte) []byte { return b })
}

func rewriteConfig(t *testing.T, edit func(ts []safetensors.Tensor) []safetensors.Tensor, editCfg func([]byte) []byte) string {
	t.Helper()
	src := fixtures.Path(t, "fixtures", "tiny-llama")
	f, err := safetensors.OpenDir(src)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var ts []safetensors.Tensor
	for _, n := range f.Names() {
		tn, err := f.Get(n)
		if err != nil {
			t.Fatal(err)
		}
		ts = append(ts, tn)
	}
	dir := t.TempDir()
	if err := safetensors.Write(filepath.Join(dir, "model.safetensors"), edit(ts), nil); err != nil {
		t.Fatal(err)
	}
	cfg, err := os.ReadFile(filepath.Join(src, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), editCfg(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestLoadRejectsBadCheckpoints(t *testing.T) {
	const victim = "model.layers.1.mlp.up_proj.weight"
	for _, tc := range []struct {
		name  string
		edit  func(ts []safetensors.Tensor) []safetensors.Tensor
		quant string
		want  []string
	}{
		{"missing tensor", func(ts []safetensors.Tensor) []safetensors.Tensor {
			var out []safetensors.Tensor
			for _, tn := range ts {
				if tn.Name != victim {
					out = append(out, tn)
				}
			}
			return out
		}, "nf4", []string{victim, "missing"}},
		{"wrong shape", func(ts []safetensors.Tensor) []safetensors.Tensor {
			for i := range ts {
				if ts[i].Name == victim {
					ts[i].Shape = []int{ts[i].Shape[1], ts[i].Shape[0]}
				}
			}
			return ts
		}, "none", []string{victim, "[64 160]", "[160 64]"}},
		{"wrong norm length", func(ts []safetensors.Tensor) []safetensors.Tensor {
			for i := range ts {
				if ts[i].Name == "model.norm.weight" {
					ts[i].Shape = []int{32}
					ts[i].Data = ts[i].Data[:128]
				}
			}
			return ts
		}, "nf4", []string{"model.norm.weight", "[32]", "[64]"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var calls int
			_, err := Load(rewrite(t, tc.edit), LoadOptions{Quant: tc.quant, Progress: func(done, total int) { calls++ }})
			if !errors.Is(err, ErrBadCheckpoint) {
				t.Fatalf("error %v, want ErrBadCheckpoint", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
	if _, err := Load(t.TempDir(), LoadOptions{Quant: "int3"}); err == nil || !strings.Contains(err.Error(), "int3") {
		t.Fatalf("unknown quantization: error %v", err)
	}
}

func TestLoadKeepsPrecisionAndReportsProgress(t *testing.T) {
	dir := fixtures.Path(t, "fixtures", "tiny-llama")
	var last, total, calls int
	m, err := Load(dir, LoadOptions{Pool: par.New(3), Progress: func(d, n int) { last, total = d, n; calls++ }})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	// 2 layers × (7 linears + 2 norms) + embeddings + lm_head + final norm.
	if calls != 21 || last != 21 || total != 21 {
		t.Fatalf("progress: %d calls, last %d/%d, want 21 calls ending 21/21", calls, last, total)
	}
	if _, ok := m.Layers[0].W[Q].(*quant.NF4); !ok {
		t.Fatalf("q_proj is %T, want *quant.NF4", m.Layers[0].W[Q])
	}
	if m.Embed.Bytes() != int64(4*m.Cfg.Vocab*m.Cfg.Hidden) || m.Head == m.Embed {
		t.Fatalf("embeddings should stay F32 and lm_head untied: %T %d bytes", m.Embed, m.Embed.Bytes())
	}
}

// A BF16 checkpoint keeps its embeddings 16-bit and gives nearly the same
// logits as its F32 source.
func TestLoadBF16(t *testing.T) {
	dir := rewrite(t, func(ts []safetensors.Tensor) []safetensors.Tensor {
		for i, tn := range ts {
			v, err := tn.Float32()
			if err != nil {
				t.Fatal(err)
			}
			ts[i] = safetensors.BF16Tensor(tn.Name, tn.Shape, v)
		}
		return ts
	})
	m, err := Load(dir, LoadOptions{Quant: "none"})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if got, want := m.Embed.Bytes(), int64(2*m.Cfg.Vocab*m.Cfg.Hidden); got != want {
		t.Fatalf("BF16 embeddings take %d bytes, want %d", got, want)
	}
	ref := loadReference(t)
	var seq kvcache.Seq
	out := m.Forward(nil, NewWorkspace(m, 8, 1), newKV(m, 4), []SeqInput{{Tokens: ref.Sequence, KV: &seq, AllLogits: true}})
	// bf16 keeps 8 bits of mantissa: logits move by a few hundredths.
	compareLogits(t, "bf16", out[0], ref.Logits.FP32, 0.1)
}

// Qwen2 checkpoints carry q, k and v biases: zero biases must reproduce the
// Llama logits exactly, a missing bias must be reported, and a non-zero one
// must reach the output.
func TestQwen2Biases(t *testing.T) {
	ref := loadReference(t)
	toQwen := func(b []byte) []byte {
		s := strings.Replace(string(b), `"LlamaForCausalLM"`, `"Qwen2ForCausalLM"`, 1)
		return []byte(strings.Replace(s, `"model_type": "llama"`, `"model_type": "qwen2"`, 1))
	}
	withBias := func(value float32, skip string) func(ts []safetensors.Tensor) []safetensors.Tensor {
		return func(ts []safetensors.Tensor) []safetensors.Tensor {
			for i := 0; i < 2; i++ {
				for _, mod := range []Module{Q, K, V} {
					name := strings.TrimSuffix(TensorName(i, mod), "weight") + "bias"
					if name == skip {
						continue
					}
					n := 64
					if mod != Q {
						n = 32
					}
					v := make([]float32, n)
					for j := range v {
						v[j] = value * float32(j%5-2)
					}
					ts = append(ts, safetensors.F32Tensor(name, []int{n}, v))
				}
			}
			return ts
		}
	}
	logits := func(dir string) []float32 {
		m, err := Load(dir, LoadOptions{Quant: "none"})
		if err != nil {
			t.Fatal(err)
		}
		defer m.Close()
		if m.Cfg.Arch != "qwen2" || m.Layers[1].Bias[V] == nil || m.Layers[1].Bias[O] != nil {
			t.Fatalf("arch %q, biases %v", m.Cfg.Arch, m.Layers[1].Bias)
		}
		var seq kvcache.Seq
		return append([]float32(nil), m.Forward(nil, NewWorkspace(m, 8, 1), newKV(m, 4), []SeqInput{{Tokens: ref.Sequence, KV: &seq, AllLogits: true}})[0]...)
	}
	compareLogits(t, "qwen2 zero bias", logits(rewriteConfig(t, withBias(0, ""), toQwen)), ref.Logits.FP32, 1e-4)
	if d := maxDiff(logits(rewriteConfig(t, withBias(0.3, ""), toQwen)), logits(rewriteConfig(t, withBias(0, ""), toQwen))); d < 1e-3 {
		t.Fatalf("non-zero biases moved the logits by only %g", d)
	}
	missing := "model.layers.1.self_attn.k_proj.bias"
	_, err := Load(rewriteConfig(t, withBias(0, missing), toQwen), LoadOptions{})
	if !errors.Is(err, ErrBadCheckpoint) || !strings.Contains(err.Error(), missing) {
		t.Fatalf("missing bias: error %v", err)
	}
}

// "auto" keeps a float32 checkpoint's linears as stored, so the float32
// reference logits come out of the default load unchanged.
func TestAutoQuantKeepsFloat32(t *testing.T) {
	ref := loadReference(t)
	m := loadModel(t, "auto", "fixtures", "tiny-llama")
	for mod := range NumModules {
		if _, ok := m.Layers[0].W[mod].(*quant.NF4); ok {
			t.Fatalf("auto quantized the float32 %s weight", mod)
		}
	}
	var seq kvcache.Seq
	out := m.Forward(nil, NewWorkspace(m, 8, 1), newKV(m, 4), []SeqInput{{Tokens: ref.Sequence, KV: &seq, AllLogits: true}})
	compareLogits(t, "auto", out[0], ref.Logits.FP32, 1e-4)
}

// Int8 activations stay within a few percent of the exact NF4 logits (the
// per-product bound is tested in quant; this checks the option reaches every
// decoder matrix and the whole network stays close).
func TestInt8OptionStaysClose(t *testing.T) {
	ref := loadReference(t)
	dir := fixtures.Path(t, "fixtures", "tiny-llama")
	run := func(int8 bool) []float32 {
		m, err := Load(dir, LoadOptions{Quant: "nf4", Int8: int8})
		if err != nil {
			t.Fatal(err)
		}
		defer m.Close()
		var seq kvcache.Seq
		return append([]float32(nil), m.Forward(nil, NewWorkspace(m, 8, 1), newKV(m, 4), []SeqInput{{Tokens: ref.Sequence, KV: &seq, AllLogits: true}})[0]...)
	}
	exact, fast := run(false), run(true)
	var sumSq float64
	for _, v := range exact {
		sumSq += float64(v) * float64(v)
	}
	rms := math.Sqrt(sumSq / float64(len(exact)))
	if d := maxDiff(exact, fast); d > 0.1*rms {
		t.Fatalf("int8 logits differ by %g, more than 10%% of the logits' RMS %g", d, rms)
	}
}
