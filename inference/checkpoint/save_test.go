package checkpoint

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/loraplex/loraplex/inference/config"
	"github.com/loraplex/loraplex/inference/fixtures"
	"github.com/loraplex/loraplex/inference/kvcache"
	"github.com/loraplex/loraplex/inference/model"
	"github.com/loraplex/loraplex/inference/safetensors"
	"github.com/loraplex/loraplex/inference/synth"
	"github.com/loraplex/loraplex/quant"
)

func load(t testing.TB, dir, q string) *model.Model {
	t.Helper()
	m, err := model.Load(dir, model.LoadOptions{Quant: q})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

// save quantizes srcDir on the fly and writes it to a fresh directory.
func save(t testing.TB, srcDir string, opt Options) (string, *model.Model) {
	t.Helper()
	m := load(t, srcDir, "nf4")
	out := filepath.Join(t.TempDir(), "out")
	if err := Save(context.Background(), m, srcDir, out, opt); err != nil {
		t.Fatal(err)
	}
	return out, m
}

// logits runs tokens through m and returns the logits at every position.
func logits(m *model.Model, tokens []int32) []float32 {
	c := m.Cfg
	kv := kvcache.NewPool(c.Layers, c.KVHeads, c.HeadDim, 16, (len(tokens)+15)/16)
	ws := model.NewWorkspace(m, len(tokens), 1)
	var seq kvcache.Seq
	return slices.Clone(m.Forward(nil, ws, kv, []model.SeqInput{{Tokens: tokens, KV: &seq, AllLogits: true}})[0])
}

func testTokens(vocab int) []int32 {
	tok := make([]int32, 23)
	for i := range tok {
		tok[i] = int32((i*37 + 5) % vocab)
	}
	return tok
}

func sameBits(t *testing.T, what string, got, want []float32) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d values, want %d", what, len(got), len(want))
	}
	for i := range got {
		if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
			t.Fatalf("%s: value %d is %v, want %v bit for bit", what, i, got[i], want[i])
		}
	}
}

// sources are the model directories every round-trip test runs on: the
// reference fixture (F32, untied), a real trained model (tied embeddings,
// widths that are not multiples of 64) and a BF16 synthetic model.
func sources(t *testing.T) map[string]string {
	bf16 := filepath.Join(t.TempDir(), "bf16")
	if err := synth.Write(bf16, synth.Tiny, 7, "BF16"); err != nil {
		t.Fatal(err)
	}
	return map[string]string{
		"tiny-llama":  fixtures.Path(t, "fixtures", "tiny-llama"),
		"stories260k": fixtures.Path(t, "models", "stories260k"),
		"synth-bf16":  bf16,
	}
}

func TestSaveReloadGivesIdenticalLogits(t *testing.T) {
	for name, src := range sources(t) {
		t.Run(name, func(t *testing.T) {
			var calls, last, total int
			out, m := save(t, src, Options{Progress: func(d, n int) { calls, last, total = calls+1, d, n }})
			if calls == 0 || last != total || calls != total {
				t.Fatalf("progress: %d calls ending at %d/%d", calls, last, total)
			}
			// "none" proves the checkpoint is read as NF4, not quantized again.
			re := load(t, out, "none")
			for i := range re.Layers {
				for mod := range model.NumModules {
					a := m.Layers[i].W[mod].(*quant.NF4)
					b, ok := re.Layers[i].W[mod].(*quant.NF4)
					if !ok {
						t.Fatalf("reloaded %s is %T, want *quant.NF4", model.TensorName(i, mod), re.Layers[i].W[mod])
					}
					x, y := a.Bnb(), b.Bnb()
					if !bytes.Equal(x.Weight, y.Weight) || !bytes.Equal(x.Absmax, y.Absmax) ||
						!slices.Equal(x.NestedAbsmax, y.NestedAbsmax) || !bytes.Equal(x.QuantState, y.QuantState) {
						t.Fatalf("%s: reloaded NF4 differs", model.TensorName(i, mod))
					}
				}
			}
			tok := testTokens(m.Cfg.Vocab)
			sameBits(t, "logits after save and reload", logits(re, tok), logits(m, tok))

			// Saving the reloaded checkpoint again reproduces it exactly.
			again := filepath.Join(t.TempDir(), "again")
			if err := SaveBnb(re, out, again, nil); err != nil {
				t.Fatal(err)
			}
			for _, f := range []string{"model.safetensors", "config.json"} {
				a, _ := os.ReadFile(filepath.Join(out, f))
				b, _ := os.ReadFile(filepath.Join(again, f))
				if !bytes.Equal(a, b) {
					t.Errorf("%s differs after a second save", f)
				}
			}
		})
	}
}

// TestLayout checks every written tensor against the bitsandbytes layout
// (formats.md 2c) and the source: linear weights as the six bnb tensors,
// everything else byte for byte.
func TestLayout(t *testing.T) {
	for name, src := range sources(t) {
		t.Run(name, func(t *testing.T) {
			out, _ := save(t, src, Options{})
			cfg, err := config.Load(src)
			if err != nil {
				t.Fatal(err)
			}
			in, err := safetensors.OpenDir(src)
			if err != nil {
				t.Fatal(err)
			}
			defer in.Close()
			f, err := safetensors.Open(filepath.Join(out, "model.safetensors"))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if f.Metadata()["format"] != "pt" {
				t.Errorf("metadata %v lacks format=pt", f.Metadata())
			}
			type want struct {
				dtype safetensors.DType
				shape []int
			}
			wants := map[string]want{}
			for i := range cfg.Layers {
				for mod := range model.NumModules {
					w := model.TensorName(i, mod)
					o, k := model.ModuleShape(cfg, mod)
					n := o * k
					blocks := (n + 63) / 64
					wants[w] = want{safetensors.U8, []int{(n + 1) / 2, 1}}
					wants[w+".absmax"] = want{safetensors.U8, []int{blocks}}
					wants[w+".quant_map"] = want{safetensors.F32, []int{16}}
					wants[w+".nested_absmax"] = want{safetensors.F32, []int{(blocks + 255) / 256}}
					wants[w+".nested_quant_map"] = want{safetensors.F32, []int{256}}
					wants[w+QuantStateKey] = want{safetensors.U8, nil} // length checked below
				}
			}
			for _, n := range in.Names() {
				if _, ok := wants[n]; !ok {
					st, _ := in.Get(n)
					wants[n] = want{st.DType, st.Shape}
				}
			}
			if got := f.Names(); !slices.Equal(got, slices.Sorted(maps.Keys(wants))) {
				t.Fatalf("tensors %v\nwant %v", got, slices.Sorted(maps.Keys(wants)))
			}
			for n, w := range wants {
				got, _ := f.Get(n)
				if got.DType != w.dtype || (w.shape != nil && !slices.Equal(got.Shape, w.shape)) {
					t.Errorf("%s: %s %v, want %s %v", n, got.DType, got.Shape, w.dtype, w.shape)
				}
				if strings.HasSuffix(n, QuantStateKey) && (len(got.Shape) != 1 || got.Shape[0] != len(got.Data)) {
					t.Errorf("%s: shape %v for %d bytes", n, got.Shape, len(got.Data))
				}
				if st, err := in.Get(n); err == nil && st.DType != safetensors.U8 && !strings.HasSuffix(n, "_proj.weight") {
					if !bytes.Equal(st.Data, got.Data) {
						t.Errorf("%s: not copied byte for byte", n)
					}
				}
				if strings.HasSuffix(n, ".quant_map") {
					v, _ := got.Float32()
					if v[0] != -1 || v[7] != 0 || v[15] != 1 || v[1] != -0.6961928009986877 || v[8] != 0.07958029955625534 {
						t.Errorf("%s: %v is not the NF4 table", n, v)
					}
				}
				if strings.HasSuffix(n, ".nested_quant_map") {
					v, _ := got.Float32()
					if v[0] != -0.99296875 || v[255] != 1 || !slices.IsSorted(v) || !slices.Contains(v, 0) {
						t.Errorf("%s: %v... is not the signed dynamic map", n, v[:4])
					}
				}
			}
			// Every quant_state parses, describes its tensor and the source dtype.
			for i := range cfg.Layers {
				for mod := range model.NumModules {
					n := model.TensorName(i, mod)
					qs, _ := f.Get(n + QuantStateKey)
					st, err := ParseQuantState(qs.Data)
					if err != nil {
						t.Fatalf("%s: %v", n, err)
					}
					o, k := model.ModuleShape(cfg, mod)
					if err := st.CheckNF4(o, k); err != nil {
						t.Errorf("%s: %v", n, err)
					}
					srcT, _ := in.Get(n)
					if st.DType != map[safetensors.DType]string{"F32": "float32", "BF16": "bfloat16", "F16": "float16"}[srcT.DType] {
						t.Errorf("%s: dtype %q for a %s source", n, st.DType, srcT.DType)
					}
				}
			}
		})
	}
}

// TestQuantStateGolden compares the quant_state bytes with json.dumps output
// computed independently (Python, from the fixtures' float32 weights:
// offset = mean of the 64-block absmax, rounded to float32).
func TestQuantStateGolden(t *testing.T) {
	for _, tc := range []struct{ name, golden string }{
		{"tiny-llama", "testdata/tiny-llama.quant_state.golden"},
		{"stories260k", "testdata/stories260k.quant_state.golden"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := sources(t)[tc.name]
			out, _ := save(t, src, Options{})
			f, err := safetensors.OpenDir(out)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			g, err := os.Open(tc.golden)
			if err != nil {
				t.Fatal(err)
			}
			defer g.Close()
			sc := bufio.NewScanner(g)
			lines := 0
			for sc.Scan() {
				name, js, _ := strings.Cut(sc.Text(), "\t")
				got, err := f.Get(name + QuantStateKey)
				if err != nil {
					t.Fatal(err)
				}
				if string(got.Data) != js {
					t.Errorf("%s:\n got %s\nwant %s", name, got.Data, js)
				}
				lines++
			}
			if lines == 0 {
				t.Fatal("empty golden file")
			}
		})
	}
}

func TestSharded(t *testing.T) {
	src := fixtures.Path(t, "models", "stories260k")
	out, m := save(t, src, Options{MaxShardBytes: 100_000})
	if _, err := os.Stat(filepath.Join(out, "model.safetensors")); err == nil {
		t.Fatal("sharded save also wrote model.safetensors")
	}
	idx, err := os.ReadFile(filepath.Join(out, safetensors.IndexFile))
	if err != nil {
		t.Fatal(err)
	}
	shards, _ := filepath.Glob(filepath.Join(out, "model-*-of-*.safetensors"))
	if len(shards) < 3 {
		t.Fatalf("%d shards for a 1 MB model in 100 kB shards", len(shards))
	}
	if !bytes.Contains(idx, []byte(`"total_size"`)) {
		t.Fatalf("index lacks total_size: %s", idx)
	}
	f, err := safetensors.OpenDir(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	// A module's quantization tensors live in its weight's shard.
	where := map[string]string{}
	for _, p := range shards {
		sf, err := safetensors.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range sf.Names() {
			where[n] = p
		}
		sf.Close()
	}
	for n, p := range where {
		if base, ok := bnbBase(n); ok && where[base] != p {
			t.Errorf("%s is in %s but %s in %s", n, p, base, where[base])
		}
	}
	re := load(t, out, "nf4")
	tok := testTokens(m.Cfg.Vocab)
	sameBits(t, "sharded reload", logits(re, tok), logits(m, tok))

	// A sharded checkpoint is also a valid source.
	again := filepath.Join(t.TempDir(), "again")
	if err := SaveBnb(re, out, again, nil); err != nil {
		t.Fatal(err)
	}
	sameBits(t, "resaved from shards", logits(load(t, again, "nf4"), tok), logits(m, tok))
}

func TestConfigAndAuxFiles(t *testing.T) {
	src := fixtures.Path(t, "models", "stories260k")
	out, _ := save(t, src, Options{})
	for _, f := range []string{"tokenizer.json", "tokenizer_config.json", "generation_config.json"} {
		a, _ := os.ReadFile(filepath.Join(src, f))
		b, err := os.ReadFile(filepath.Join(out, f))
		if err != nil || !bytes.Equal(a, b) {
			t.Errorf("%s not copied unchanged (%v)", f, err)
		}
	}
	for _, f := range []string{"special_tokens_map.json", "chat_template.jinja", "REFERENCE.md"} {
		if _, err := os.Stat(filepath.Join(out, f)); err == nil {
			t.Errorf("%s appeared in the output", f)
		}
	}
	cfg, err := config.Load(out)
	if err != nil {
		t.Fatal(err)
	}
	if q := cfg.Quant; q == nil || q.QuantType != "nf4" || !q.DoubleQuant {
		t.Fatalf("quantization_config read back as %+v", cfg.Quant)
	}
	got, _ := os.ReadFile(filepath.Join(out, "config.json"))
	want, err := os.ReadFile("testdata/stories260k.config.golden.json")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("config.json:\n%s\nwant\n%s", got, want)
	}
}

func TestWithQuantConfig(t *testing.T) {
	const qc = `"quantization_config": {
    "quant_method": "bitsandbytes",
    "load_in_4bit": true,
    "load_in_8bit": false,
    "bnb_4bit_quant_type": "nf4",
    "bnb_4bit_use_double_quant": true,
    "bnb_4bit_compute_dtype": "bfloat16",
    "bnb_4bit_quant_storage": "uint8",
    "llm_int8_skip_modules": null,
    "llm_int8_threshold": 6.0,
    "llm_int8_has_fp16_weight": false,
    "llm_int8_enable_fp32_cpu_offload": false
  }`
	for _, tc := range []struct{ name, in, want string }{
		{"sorted keys: inserted in order", `{"a":1e-05,"model_type":"llama","rope_theta":10000.0}`,
			"{\n  \"a\": 1e-05,\n  \"model_type\": \"llama\",\n  " + qc + ",\n  \"rope_theta\": 10000.0\n}\n"},
		{"unsorted keys: appended, order kept", `{"z":[1, 2],"a":{"b":"<&>"}}`,
			"{\n  \"z\": [\n    1,\n    2\n  ],\n  \"a\": {\n    \"b\": \"<&>\"\n  },\n  " + qc + "\n}\n"},
		{"existing quantization_config replaced", `{"quantization_config":{"quant_method":"gptq"},"zz":true}`,
			"{\n  " + qc + ",\n  \"zz\": true\n}\n"},
		{"empty object", `{}`, "{\n  " + qc + "\n}\n"},
		{"key needing escapes", `{"a<b\"":1}`, "{\n  \"a<b\\\"\": 1,\n  " + qc + "\n}\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := withQuantConfig([]byte(tc.in))
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tc.want {
				t.Fatalf("got\n%s\nwant\n%s", got, tc.want)
			}
		})
	}
	for _, bad := range []string{``, `[]`, `{"a":}`, `{"a":1} {}`, `{"a":1`, `"x"`} {
		if _, err := withQuantConfig([]byte(bad)); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

func TestOutputDirectory(t *testing.T) {
	src := fixtures.Path(t, "fixtures", "tiny-llama")
	m := load(t, src, "nf4")
	parent := t.TempDir()
	out := filepath.Join(parent, "out")

	if err := os.Mkdir(out, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := SaveBnb(m, src, out, nil); err != nil {
		t.Fatalf("an empty directory should be usable: %v", err)
	}
	if err := SaveBnb(m, src, out, nil); !errors.Is(err, ErrExists) {
		t.Fatalf("second save: error %v, want ErrExists", err)
	}
	stale := filepath.Join(out, "stale.bin")
	if err := os.WriteFile(stale, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := Save(context.Background(), m, src, out, Options{Overwrite: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(stale); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("overwrite kept a file of the old directory")
	}
	if st, _ := os.Stat(out); st.Mode().Perm() != 0o755 {
		t.Errorf("output directory mode %v, want 0755", st.Mode().Perm())
	}

	file := filepath.Join(parent, "file")
	os.WriteFile(file, nil, 0o644)
	for _, tc := range []struct {
		name     string
		m        *model.Model
		src, out string
		opt      Options
		is       error
		mention  string
	}{
		{"output is a file", m, src, file, Options{Overwrite: true}, nil, "not a directory"},
		{"output is the source", m, out, out, Options{Overwrite: true}, nil, "source directory"},
		{"dense model", load(t, src, "none"), src, filepath.Join(parent, "d"), Options{}, ErrNotQuantized, "q_proj"},
		{"another model's source", m, fixtures.Path(t, "models", "stories260k"), filepath.Join(parent, "s"), Options{}, ErrMismatch, "model.layers.0"},
		{"negative shard size", m, src, filepath.Join(parent, "n"), Options{MaxShardBytes: -1}, nil, "MaxShardBytes"},
		{"missing source", m, filepath.Join(parent, "nope"), filepath.Join(parent, "x"), Options{}, safetensors.ErrNotFound, "nope"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := Save(context.Background(), tc.m, tc.src, tc.out, tc.opt)
			if err == nil || (tc.is != nil && !errors.Is(err, tc.is)) || !strings.Contains(err.Error(), tc.mention) {
				t.Fatalf("error %v, want %v mentioning %q", err, tc.is, tc.mention)
			}
		})
	}
	entries, _ := os.ReadDir(parent)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if !slices.Equal(names, []string{"file", "out"}) {
		t.Fatalf("directory holds %v after failed saves, want only file and out", names)
	}
}

// TestMismatchedDType refuses to label weights quantized from F32 as coming
// from a BF16 source.
func TestMismatchedDType(t *testing.T) {
	dir := t.TempDir()
	f32, bf16 := filepath.Join(dir, "f32"), filepath.Join(dir, "bf16")
	for d, dt := range map[string]string{f32: "F32", bf16: "BF16"} {
		if err := synth.Write(d, synth.Tiny, 3, dt); err != nil {
			t.Fatal(err)
		}
	}
	err := SaveBnb(load(t, f32, "nf4"), bf16, filepath.Join(dir, "out"), nil)
	if !errors.Is(err, ErrMismatch) || !strings.Contains(err.Error(), "bfloat16") {
		t.Fatalf("error %v, want ErrMismatch naming bfloat16", err)
	}
}

func TestCancel(t *testing.T) {
	src := fixtures.Path(t, "fixtures", "tiny-llama")
	m := load(t, src, "nf4")
	parent := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	written := 0
	err := Save(ctx, m, src, filepath.Join(parent, "out"), Options{Progress: func(done, total int) {
		written = done
		cancel() // after the first tensor
	}})
	if !errors.Is(err, context.Canceled) || written != 1 {
		t.Fatalf("error %v after %d tensors, want context.Canceled after 1", err, written)
	}
	if entries, _ := os.ReadDir(parent); len(entries) != 0 {
		t.Fatalf("cancelled save left %v", entries)
	}
}
