package model

import (
	"bufio"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/loraplex/loraplex/inference/fixtures"
	"github.com/loraplex/loraplex/inference/kvcache"
	"github.com/loraplex/loraplex/inference/safetensors"
	"github.com/loraplex/loraplex/quant/par"
	"github.com/loraplex/loraplex/quant/vec"
)

type reference struct {
	Sequence []int32 `json:"sequence"`
	Logits   struct {
		FP32 [][]float64 `json:"llama_fp32"`
		NF4  [][]float64 `json:"llama_nf4dq_lora"`
	} `json:"logits"`
	Greedy []int32 `json:"greedy_llama_fp32"`
}

func loadReference(t *testing.T) reference {
	t.Helper()
	b, err := os.ReadFile(fixtures.Path(t, "fixtures", "reference_logits.json"))
	if err != nil {
		t.Fatal(err)
	}
	var r reference
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatal(err)
	}
	return r
}

func loadModel(t testing.TB, quant string, rel ...string) *Model {
	t.Helper()
	m, err := Load(fixtures.Path(t, rel...), LoadOptions{Quant: quant})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

// loadLoRA builds the adapter straight from the PEFT safetensors file, so
// the test does not depend on the adapters package.
func loadLoRA(t *testing.T, m *Model) *Adapter {
	t.Helper()
	f, err := safetensors.Open(filepath.Join(fixtures.Path(t, "fixtures", "lora-r8"), "adapter_model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	const r, scale = 8, 16.0 / 8
	a := &Adapter{ID: "lora-r8", LoRA: make([][NumModules]*LoRA, len(m.Layers))}
	for i := range m.Layers {
		for mod := range NumModules {
			base := TensorName(i, mod)
			base = "base_model.model." + base[:len(base)-len(".weight")]
			get := func(name string) []float32 {
				tn, err := f.Get(name)
				if err != nil {
					t.Fatal(err)
				}
				v, err := tn.Float32()
				if err != nil {
					t.Fatal(err)
				}
				return v
			}
			a.LoRA[i][mod] = &LoRA{R: r, Scale: scale, A: get(base + ".lora_A.weight"), B: get(base + ".lora_B.weight")}
		}
	}
	return a
}

func newKV(m *Model, blocks int) *kvcache.Pool {
	c := m.Cfg
	return kvcache.NewPool(c.Layers, c.KVHeads, c.HeadDim, 4, blocks)
}

func compareLogits(t *testing.T, what string, got []float32, want [][]float64, tol float64) {
	t.Helper()
	vocab := len(want[0])
	if len(got) != len(want)*vocab {
		t.Fatalf("%s: %d logits, want %d×%d", what, len(got), len(want), vocab)
	}
	worst := 0.0
	for p, row := range want {
		for j, w := range row {
			d := math.Abs(float64(got[p*vocab+j]) - float64(float32(w)))
			if d > tol || math.IsNaN(d) {
				t.Fatalf("%s: position %d logit %d = %g, want %g", what, p, j, got[p*vocab+j], w)
			}
			worst = max(worst, d)
		}
	}
	t.Logf("%s: max abs diff %.2g", what, worst)
}

func TestTinyLlamaLogits(t *testing.T) {
	ref := loadReference(t)
	for _, tc := range []struct {
		name, quant          string
		lora, prepared, bf16 bool
		want                 [][]float64
		tol                  float64
	}{
		{"fp32", "none", false, false, false, ref.Logits.FP32, 1e-4},
		{"nf4+lora", "nf4", true, false, false, ref.Logits.NF4, 1e-4},
		{"nf4+lora prepared", "nf4", true, true, false, ref.Logits.NF4, 1e-4},
		// bfloat16 adapter weights: the reference's float32 LoRA within
		// the rounding of A and B.
		{"nf4+lora bf16", "nf4", true, false, true, ref.Logits.NF4, 5e-3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := loadModel(t, tc.quant, "fixtures", "tiny-llama")
			var a *Adapter
			if tc.lora {
				a = loadLoRA(t, m)
			}
			if tc.prepared {
				a.Prepare()
			}
			if tc.bf16 {
				a.PrepareBF16()
			}
			for _, workers := range []int{1, 3} {
				p := par.New(workers)
				kv := newKV(m, 8)
				ws := NewWorkspace(m, 8, 1)
				var seq kvcache.Seq
				out := m.Forward(p, ws, kv, []SeqInput{{Tokens: ref.Sequence, KV: &seq, Adapter: a, AllLogits: true}})
				compareLogits(t, fmt.Sprintf("%s workers=%d", tc.name, workers), out[0], tc.want, tc.tol)
				if seq.Len != len(ref.Sequence) {
					t.Fatalf("KV length %d after prefill, want %d", seq.Len, len(ref.Sequence))
				}
			}
		})
	}
}

// greedy prefills prompt in chunks of chunk tokens, then decodes n tokens
// one at a time through the KV cache.
func greedy(m *Model, p *par.Pool, prompt []int32, n, chunk int) []int32 {
	kv := newKV(m, (len(prompt)+n)/4+1)
	ws := NewWorkspace(m, chunk, 1)
	var seq kvcache.Seq
	var logits []float32
	for lo := 0; lo < len(prompt); lo += chunk {
		logits = m.Forward(p, ws, kv, []SeqInput{{Tokens: prompt[lo:min(lo+chunk, len(prompt))], KV: &seq}})[0]
	}
	out := make([]int32, 0, n)
	tok := make([]int32, 1)
	for len(out) < n {
		tok[0] = int32(vec.MaxIndex(logits))
		out = append(out, tok[0])
		logits = m.Forward(p, ws, kv, []SeqInput{{Tokens: tok, KV: &seq}})[0]
	}
	return out
}

func TestTinyLlamaGreedy(t *testing.T) {
	ref := loadReference(t)
	m := loadModel(t, "none", "fixtures", "tiny-llama")
	for _, chunk := range []int{len(ref.Sequence), 3, 1} {
		got := greedy(m, par.New(2), ref.Sequence, len(ref.Greedy), chunk)
		if fmt.Sprint(got) != fmt.Sprint(ref.Greedy) {
			t.Fatalf("chunk %d: greedy %v, want %v", chunk, got, ref.Greedy)
		}
	}
}

func TestStoriesGreedy(t *testing.T) {
	dir := fixtures.Path(t, "models", "stories260k")
	m := loadModel(t, "none", "models", "stories260k")
	if m.Head != m.Embed {
		t.Fatal("tied embeddings: lm_head should be the embedding matrix")
	}
	fh, err := os.Open(filepath.Join(dir, "reference-5.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	sc := bufio.NewScanner(fh)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	cases := 0
	for sc.Scan() {
		var c struct {
			Prompt    string  `json:"prompt"`
			PromptIDs []int32 `json:"prompt_ids"`
			GreedyIDs []int32 `json:"greedy_ids"`
		}
		if err := json.Unmarshal(sc.Bytes(), &c); err != nil {
			t.Fatal(err)
		}
		got := greedy(m, par.New(2), c.PromptIDs, len(c.GreedyIDs), len(c.PromptIDs))
		if fmt.Sprint(got) != fmt.Sprint(c.GreedyIDs) {
			t.Errorf("%q: greedy\n%v, want\n%v", c.Prompt, got, c.GreedyIDs)
		}
		cases++
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if cases != 5 {
		t.Fatalf("read %d reference cases, want 5", cases)
	}
}
