package synth

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/loraplex/loraplex/inference/config"
	"github.com/loraplex/loraplex/inference/safetensors"
	"github.com/loraplex/loraplex/inference/tokenizer"
)

func TestWriteRoundTrip(t *testing.T) {
	for _, dtype := range []string{"F32", "BF16"} {
		t.Run(dtype, func(t *testing.T) {
			dir := t.TempDir()
			if err := Write(dir, Tiny, 7, dtype); err != nil {
				t.Fatal(err)
			}
			c, err := config.Load(dir)
			if err != nil {
				t.Fatal(err)
			}
			want := config.Config{Arch: "llama", Hidden: 64, Intermediate: 128, Layers: 2, Heads: 4, KVHeads: 2, HeadDim: 16,
				Vocab: 512, MaxPos: 512, NormEps: 1e-5, RopeTheta: 10000, BOS: 508, EOS: []int{511, 509},
				DType: map[string]string{"F32": "float32", "BF16": "bfloat16"}[dtype]}
			if !equalConfig(c, &want) {
				t.Errorf("config = %+v, want %+v", *c, want)
			}
			f, err := safetensors.OpenDir(dir)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			wantTensors := 1 + 9*Tiny.Layers + 1 + 1
			if n := len(f.Names()); n != wantTensors {
				t.Errorf("%d tensors, want %d", n, wantTensors)
			}
			var params int64
			for _, name := range f.Names() {
				tt, _ := f.Get(name)
				if string(tt.DType) != dtype {
					t.Errorf("%s is %s, want %s", name, tt.DType, dtype)
				}
				params += int64(tt.Numel())
			}
			if params != Tiny.Params() {
				t.Errorf("%d weights, Params() says %d", params, Tiny.Params())
			}
			checkShape(t, f, "model.layers.1.self_attn.k_proj.weight", 32, 64)
			checkShape(t, f, "model.layers.0.mlp.down_proj.weight", 64, 128)
			checkShape(t, f, "lm_head.weight", 512, 64)

			// Statistics: linear weights have std 1/√in, norms mean 1.
			q := values(t, f, "model.layers.0.self_attn.q_proj.weight")
			if m, s := meanStd(q); math.Abs(m) > 0.01 || math.Abs(s-0.125) > 0.01 {
				t.Errorf("q_proj mean %.4f std %.4f, want 0 and 0.125", m, s)
			}
			norm := values(t, f, "model.norm.weight")
			if m, s := meanStd(norm); math.Abs(m-1) > 0.05 || s < 0.05 || s > 0.15 {
				t.Errorf("norm mean %.4f std %.4f, want about 1 and 0.1", m, s)
			}
		})
	}
}

func equalConfig(a, b *config.Config) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return bytes.Equal(ja, jb)
}

func checkShape(t *testing.T, f *safetensors.File, name string, shape ...int) {
	t.Helper()
	tt, err := f.Get(name)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(tt.Shape, shape) {
		t.Errorf("%s shape %v, want %v", name, tt.Shape, shape)
	}
}

func values(t *testing.T, f *safetensors.File, name string) []float32 {
	t.Helper()
	tt, err := f.Get(name)
	if err != nil {
		t.Fatal(err)
	}
	v, err := tt.Float32()
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func meanStd(v []float32) (mean, std float64) {
	for _, x := range v {
		mean += float64(x)
	}
	mean /= float64(len(v))
	for _, x := range v {
		std += (float64(x) - mean) * (float64(x) - mean)
	}
	return mean, math.Sqrt(std / float64(len(v)))
}

func TestDeterministic(t *testing.T) {
	a, b, c := t.TempDir(), t.TempDir(), t.TempDir()
	for _, w := range []struct {
		dir  string
		seed int64
	}{{a, 3}, {b, 3}, {c, 4}} {
		if err := Write(w.dir, Tiny, w.seed, "BF16"); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range []string{"model.safetensors", "tokenizer.json", "tokenizer_config.json", "config.json", "generation_config.json"} {
		ba, _ := os.ReadFile(filepath.Join(a, name))
		bb, _ := os.ReadFile(filepath.Join(b, name))
		bc, _ := os.ReadFile(filepath.Join(c, name))
		if !bytes.Equal(ba, bb) {
			t.Errorf("%s differs between two writes with the same seed", name)
		}
		if name == "model.safetensors" && bytes.Equal(ba, bc) {
			t.Errorf("%s is the same for seeds 3 and 4", name)
		}
	}
}

// The tokenizer must load in the project's tokenizer, agree with its own
// vocabulary and round-trip arbitrary text, special tokens included.
func TestTokenizer(t *testing.T) {
	for _, s := range []Shape{Tiny, {Name: "wide", Hidden: 64, Intermediate: 64, Layers: 1, Heads: 4, KVHeads: 4, Vocab: 32000, MaxPos: 64}} {
		dir := t.TempDir()
		if err := Write(dir, s, 1, "F32"); err != nil {
			t.Fatal(err)
		}
		var doc struct {
			Model struct {
				Vocab  map[string]int `json:"vocab"`
				Merges []string       `json:"merges"`
			} `json:"model"`
		}
		b, _ := os.ReadFile(filepath.Join(dir, "tokenizer.json"))
		if err := json.Unmarshal(b, &doc); err != nil {
			t.Fatal(err)
		}
		if len(doc.Model.Vocab)+4 != s.Vocab || len(doc.Model.Merges)+256+4 != s.Vocab {
			t.Errorf("%s: %d vocab, %d merges for vocab %d", s.Name, len(doc.Model.Vocab), len(doc.Model.Merges), s.Vocab)
		}
		for i, m := range doc.Model.Merges {
			l, r, ok := strings.Cut(m, " ")
			id, okM := doc.Model.Vocab[l+r]
			_, okL := doc.Model.Vocab[l]
			_, okR := doc.Model.Vocab[r]
			if !ok || !okL || !okR || !okM || id != 256+i {
				t.Fatalf("%s: merge %d %q is not valid (result id %d)", s.Name, i, m, id)
			}
		}
		tok, err := tokenizer.Load(dir)
		if err != nil {
			t.Fatal(err)
		}
		if tok.VocabSize() != s.Vocab || tok.BOS() != int32(s.Vocab-4) {
			t.Errorf("%s: vocab %d bos %d", s.Name, tok.VocabSize(), tok.BOS())
		}
		if tok.ChatTemplate() != ChatTemplate {
			t.Errorf("%s: chat template not found", s.Name)
		}
		text := "<|im_start|>user\nOnce upon a time, the model said: héllo 世界 12345!<|im_end|>\n"
		ids := tok.Encode(text, true)
		if ids[0] != int32(s.Vocab-4) || ids[1] != int32(s.Vocab-2) {
			t.Errorf("%s: encode starts %v, want BOS then <|im_start|>", s.Name, ids[:2])
		}
		if len(ids) >= len(text) {
			t.Errorf("%s: %d tokens for %d bytes: merges never apply", s.Name, len(ids), len(text))
		}
		if got := tok.Decode(ids[1:], false); got != text {
			t.Errorf("%s: round trip %q, want %q", s.Name, got, text)
		}
	}
}

func TestDemoDir(t *testing.T) {
	cache := t.TempDir()
	dir, err := DemoDir(cache)
	if err != nil {
		t.Fatal(err)
	}
	if dir != filepath.Join(cache, "demo") {
		t.Errorf("dir = %s", dir)
	}
	st1, err := os.Stat(filepath.Join(dir, "model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	again, err := DemoDir(cache)
	if err != nil || again != dir {
		t.Fatalf("second call: %s, %v", again, err)
	}
	st2, _ := os.Stat(filepath.Join(dir, "model.safetensors"))
	if !st1.ModTime().Equal(st2.ModTime()) {
		t.Error("second call rewrote the demo model")
	}
	// An interrupted earlier attempt (no stamp) is replaced.
	os.Remove(filepath.Join(dir, ".stamp"))
	os.Remove(filepath.Join(dir, "config.json"))
	if _, err := DemoDir(cache); err != nil {
		t.Fatal(err)
	}
	if _, err := config.Load(dir); err != nil {
		t.Errorf("repaired demo model: %v", err)
	}
	entries, _ := os.ReadDir(cache)
	if len(entries) != 1 {
		t.Errorf("cache holds %d entries, want only demo", len(entries))
	}
	other := t.TempDir()
	if err := Write(other, Tiny, demoSeed, demoDType); err != nil {
		t.Fatal(err)
	}
	a, _ := os.ReadFile(filepath.Join(dir, "model.safetensors"))
	b, _ := os.ReadFile(filepath.Join(other, "model.safetensors"))
	if !bytes.Equal(a, b) {
		t.Error("demo model is not deterministic")
	}
}

func TestRejects(t *testing.T) {
	dir := t.TempDir()
	if err := Write(dir, Tiny, 1, "F16"); !errors.Is(err, ErrInvalid) {
		t.Errorf("dtype F16: %v", err)
	}
	bad := Tiny
	bad.KVHeads = 3
	if err := Write(dir, bad, 1, "F32"); !errors.Is(err, ErrInvalid) {
		t.Errorf("kv heads 3: %v", err)
	}
	bad = Tiny
	bad.Vocab = 100
	if err := Write(dir, bad, 1, "F32"); !errors.Is(err, ErrInvalid) {
		t.Errorf("vocab 100: %v", err)
	}
	if s, err := ShapeByName("m"); err != nil || s.Name != "M" {
		t.Errorf("ShapeByName(m) = %v, %v", s.Name, err)
	}
	if _, err := ShapeByName("xl"); !errors.Is(err, ErrInvalid) {
		t.Errorf("ShapeByName(xl) = %v", err)
	}
}

func TestParams(t *testing.T) {
	// The anchors give S ≈ 125 M (tied) and M ≈ 1.10 B parameters.
	if p := S.Params(); p < 120e6 || p > 140e6 {
		t.Errorf("S has %d params", p)
	}
	if p := M.Params(); p < 1.09e9 || p > 1.11e9 {
		t.Errorf("M has %d params", p)
	}
}

// ConfigJSON is the config.json that Write writes, key for key.
func TestConfigJSONMatchesWrite(t *testing.T) {
	dir := t.TempDir()
	if err := Write(dir, Tiny, 1, "bf16"); err != nil {
		t.Fatal(err)
	}
	written, err := os.ReadFile(filepath.Join(dir, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	got, err := Tiny.ConfigJSON("bf16")
	if err != nil {
		t.Fatal(err)
	}
	var a, b map[string]any
	if err := json.Unmarshal(written, &a); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(got, &b); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(a, b) {
		t.Errorf("ConfigJSON = %s\nWrite wrote %s", got, written)
	}
	if _, err := Tiny.ConfigJSON("int4"); err == nil {
		t.Error("ConfigJSON accepted dtype int4")
	}
}
