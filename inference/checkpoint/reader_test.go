package checkpoint

import (
	"bytes"
	"encoding/json"
	"errors"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/loraplex/loraplex/inference/fixtures"
	"github.com/loraplex/loraplex/inference/model"
	"github.com/loraplex/loraplex/inference/safetensors"
)

// corrupt writes a copy of the checkpoint dir whose tensors edit changed
// and whose config.json editCfg changed (when not nil).
func corrupt(t *testing.T, dir string, edit func(ts map[string]safetensors.Tensor), editCfg func([]byte) []byte) string {
	t.Helper()
	f, err := safetensors.OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ts := map[string]safetensors.Tensor{}
	for _, n := range f.Names() {
		ts[n], _ = f.Get(n)
	}
	edit(ts)
	var list []safetensors.Tensor
	for _, tn := range ts {
		list = append(list, tn)
	}
	out := t.TempDir()
	if err := safetensors.Write(filepath.Join(out, "model.safetensors"), list, nil); err != nil {
		t.Fatal(err)
	}
	cfg, err := os.ReadFile(filepath.Join(dir, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	if editCfg != nil {
		cfg = editCfg(cfg)
	}
	if err := os.WriteFile(filepath.Join(out, "config.json"), cfg, 0o644); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestLoadRejectsBadBnb feeds model.Load (the reader of pre-quantized
// checkpoints) damaged versions of a checkpoint this package wrote; each
// must fail with an error naming the damaged module and the problem.
func TestLoadRejectsBadBnb(t *testing.T) {
	out, _ := save(t, fixtures.Path(t, "fixtures", "tiny-llama"), Options{})
	const w = "model.layers.1.mlp.up_proj.weight" // [160, 64]: 160 blocks, one nested block
	state := func(ts map[string]safetensors.Tensor, from, to string) {
		st := ts[w+QuantStateKey]
		st.Data = bytes.Replace(st.Data, []byte(from), []byte(to), 1)
		st.Shape = []int{len(st.Data)}
		ts[w+QuantStateKey] = st
	}
	resize := func(ts map[string]safetensors.Tensor, name string, n int) {
		tn := ts[name]
		size := len(tn.Data) / tn.Numel()
		data := make([]byte, n*size)
		copy(data, tn.Data)
		tn.Data, tn.Shape = data, []int{n}
		if name == w {
			tn.Shape = []int{n, 1}
		}
		ts[name] = tn
	}
	for _, tc := range []struct {
		name    string
		edit    func(ts map[string]safetensors.Tensor)
		mention []string
	}{
		{"missing absmax", func(ts map[string]safetensors.Tensor) { delete(ts, w+".absmax") }, []string{"absmax"}},
		{"missing quant_map", func(ts map[string]safetensors.Tensor) { delete(ts, w+".quant_map") }, []string{"quant_map"}},
		{"missing nested_absmax", func(ts map[string]safetensors.Tensor) { delete(ts, w+".nested_absmax") }, []string{"nested_absmax"}},
		{"wrong quant_map length", func(ts map[string]safetensors.Tensor) { resize(ts, w+".quant_map", 15) }, []string{"quant_map", "15"}},
		{"wrong nested_quant_map length", func(ts map[string]safetensors.Tensor) { resize(ts, w+".nested_quant_map", 255) }, []string{"nested_quant_map", "255"}},
		{"wrong absmax length", func(ts map[string]safetensors.Tensor) { resize(ts, w+".absmax", 159) }, []string{"absmax", "159"}},
		{"truncated weight", func(ts map[string]safetensors.Tensor) { resize(ts, w, 5119) }, []string{"5119"}},
		{"fp4 quant_type", func(ts map[string]safetensors.Tensor) { state(ts, `"nf4"`, `"fp4"`) }, []string{"fp4"}},
		// A module stored as FP4 under an nf4 config is reported as a
		// packed tensor where a dense weight was expected.
		{"fp4 module", func(ts map[string]safetensors.Tensor) {
			state(ts, `"nf4"`, `"fp4"`)
			st := ts[w+QuantStateKey]
			st.Name = w + ".quant_state.bitsandbytes__fp4"
			ts[st.Name] = st
			delete(ts, w+QuantStateKey)
		}, []string{"[5120 1]"}},
		{"blocksize 128", func(ts map[string]safetensors.Tensor) { state(ts, `"blocksize": 64`, `"blocksize": 128`) }, []string{"blocksize", "128"}},
		{"shape mismatch", func(ts map[string]safetensors.Tensor) { state(ts, `[160, 64]`, `[64, 160]`) }, []string{"shape", "[64 160]"}},
		{"shape that does not divide", func(ts map[string]safetensors.Tensor) { state(ts, `[160, 64]`, `[161, 64]`) }, []string{"shape", "161"}},
		{"nested_offset missing", func(ts map[string]safetensors.Tensor) { state(ts, `"nested_offset"`, `"nested_offzet"`) }, []string{"nested_offset"}},
		{"quant_state not JSON", func(ts map[string]safetensors.Tensor) { state(ts, `{`, `[`) }, []string{"JSON"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := corrupt(t, out, tc.edit, nil)
			_, err := model.Load(dir, model.LoadOptions{})
			if !errors.Is(err, model.ErrBadCheckpoint) {
				t.Fatalf("error %v, want ErrBadCheckpoint", err)
			}
			msg := strings.ReplaceAll(err.Error(), dir, "DIR") // the path holds the test name
			for _, m := range append(tc.mention, "model.layers.1.mlp.up_proj") {
				if !strings.Contains(msg, m) {
					t.Errorf("error %q does not mention %q", err, m)
				}
			}
		})
	}
}

// TestLoadRejectsFP4Config: a checkpoint whose config declares FP4 is
// refused before any tensor is read.
func TestLoadRejectsFP4Config(t *testing.T) {
	out, _ := save(t, fixtures.Path(t, "fixtures", "tiny-llama"), Options{})
	dir := corrupt(t, out, func(map[string]safetensors.Tensor) {}, func(b []byte) []byte {
		return bytes.Replace(b, []byte(`"bnb_4bit_quant_type": "nf4"`), []byte(`"bnb_4bit_quant_type": "fp4"`), 1)
	})
	_, err := model.Load(dir, model.LoadOptions{})
	if err == nil || !strings.Contains(strings.ReplaceAll(err.Error(), dir, "DIR"), `"fp4"`) {
		t.Fatalf("error %v, want one naming fp4", err)
	}
}

// TestNonNestedSource saves a model read from a bitsandbytes checkpoint
// without double quantization (float32 absmax, as bnb_4bit_use_double_quant
// =False writes): the output is double-quantized and reloads bit for bit.
func TestNonNestedSource(t *testing.T) {
	out, m := save(t, fixtures.Path(t, "fixtures", "tiny-llama"), Options{})
	plain := corrupt(t, out, func(ts map[string]safetensors.Tensor) {
		for _, n := range mapsSorted(ts) {
			st, ok := ts[n]
			if !ok || !strings.HasSuffix(n, QuantStateKey) {
				continue
			}
			w := strings.TrimSuffix(n, QuantStateKey)
			qs, err := ParseQuantState(st.Data)
			if err != nil {
				t.Fatal(err)
			}
			code, _ := ts[w+".nested_quant_map"].Float32()
			scale, _ := ts[w+".nested_absmax"].Float32()
			q := ts[w+".absmax"].Data
			absmax := make([]float32, len(q))
			for i, c := range q {
				absmax[i] = code[c]*scale[i/256] + float32(*qs.NestedOffset)
			}
			ts[w+".absmax"] = safetensors.F32Tensor(w+".absmax", []int{len(absmax)}, absmax)
			delete(ts, w+".nested_quant_map")
			delete(ts, w+".nested_absmax")
			qs.NestedBlocksize, qs.NestedDType, qs.NestedOffset = 0, "", nil
			js, _ := json.Marshal(qs)
			ts[n] = safetensors.U8Tensor(n, []int{len(js)}, js)
		}
	}, nil)
	src := load(t, plain, "nf4")
	tok := testTokens(src.Cfg.Vocab)
	want := logits(src, tok)
	if base := logits(m, tok); slices.Equal(base, want) {
		t.Log("re-quantizing the float32 scales happened to reproduce every code")
	}
	again := filepath.Join(t.TempDir(), "again")
	if err := SaveBnb(src, plain, again, nil); err != nil {
		t.Fatal(err)
	}
	f, err := safetensors.OpenDir(again)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if a, _ := f.Get("model.layers.0.self_attn.q_proj.weight.absmax"); a.DType != safetensors.U8 {
		t.Fatalf("absmax written as %s, want nested U8", a.DType)
	}
	sameBits(t, "reloaded from the non-nested source", logits(load(t, again, "nf4"), tok), want)
}

func mapsSorted[V any](m map[string]V) []string { return slices.Sorted(maps.Keys(m)) }
