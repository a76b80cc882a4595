package adapters

import (
	"encoding/binary"
	"errors"
	"math"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/loraplex/loraplex/inference/fixtures"
	"github.com/loraplex/loraplex/inference/kvcache"
	"github.com/loraplex/loraplex/inference/model"
	"github.com/loraplex/loraplex/inference/safetensors"
	"github.com/loraplex/loraplex/quant"
)

// withMagnitudes adds a DoRA magnitude of n values to every module that ts
// adapts.
func withMagnitudes(ts []safetensors.Tensor, n int) []safetensors.Tensor {
	out := slices.Clone(ts)
	for _, t := range ts {
		if name, ok := strings.CutSuffix(t.Name, ".lora_A.weight"); ok {
			v := make([]float32, n)
			for i := range v {
				v[i] = 1 + float32(i%5)/10
			}
			out = append(out, safetensors.F32Tensor(name+".lora_magnitude_vector", []int{n}, v))
		}
	}
	return out
}

// bf16NaN is a BF16 rows × cols tensor of ones with a NaN at flat index at.
func bf16NaN(name string, rows, cols, at int) safetensors.Tensor {
	b := make([]byte, 2*rows*cols)
	for i := range rows * cols {
		binary.LittleEndian.PutUint16(b[2*i:], 0x3f80) // 1.0
	}
	binary.LittleEndian.PutUint16(b[2*at:], 0x7fc0)
	return safetensors.Tensor{Name: name, DType: safetensors.BF16, Shape: []int{rows, cols}, Data: b}
}

func matrixValues(w quant.Matrix) []float32 {
	v := make([]float32, w.Rows()*w.Cols())
	for r := range w.Rows() {
		w.Row(v[r*w.Cols():(r+1)*w.Cols()], r)
	}
	return v
}

// doraAdapter is a DoRA adapter on tinyBase's q, v and down projections,
// with its own embedding and head when saved is true.
func doraAdapter(rng *rand.Rand, saved bool) *model.Adapter {
	a := &model.Adapter{LoRA: make([][model.NumModules]*model.LoRA, 2)}
	for l := range 2 {
		for _, m := range []model.Module{model.Q, model.V, model.Down} {
			d := tinyDims[m.String()]
			mag := randVals(rng, d[1])
			for i := range mag {
				mag[i] = 1 + mag[i]
			}
			a.LoRA[l][m] = &model.LoRA{R: 4, Scale: 2, A: randVals(rng, 4*d[0]), B: randVals(rng, d[1]*4), Magnitude: mag}
		}
	}
	if saved {
		a.Embed = quant.NewF32(300, 64, randVals(rng, 300*64))
		a.Head = quant.NewF32(300, 64, randVals(rng, 300*64))
	}
	return a
}

func TestRoundTripDoRAAndSavedModules(t *testing.T) {
	rng := rand.New(rand.NewPCG(31, 32))
	a := doraAdapter(rng, true)
	dir := filepath.Join(t.TempDir(), "dora")
	if err := SaveLoRA(dir, &PEFTConfig{R: 4, Alpha: 8}, a); err != nil {
		t.Fatal(err)
	}
	// PEFT's own layout: magnitudes without ".weight", the copies under
	// the module's weight name.
	wpath := filepath.Join(dir, WeightsFile)
	mk := peftPrefix + "model.layers.1.mlp.down_proj.lora_magnitude_vector"
	if shape, v := tensorValues(t, wpath, mk); !slices.Equal(shape, []int{64}) || !equalF32(v, a.LoRA[1][model.Down].Magnitude) {
		t.Errorf("%s: shape %v or values differ", mk, shape)
	}
	if shape, v := tensorValues(t, wpath, peftPrefix+"lm_head.weight"); !slices.Equal(shape, []int{300, 64}) || !equalF32(v, matrixValues(a.Head)) {
		t.Errorf("lm_head copy: shape %v or values differ", shape)
	}
	b, c := mustLoad(t, dir)
	if !c.UseDoRA || !slices.Equal(c.ModulesToSave, []string{"embed_tokens", "lm_head"}) {
		t.Errorf("config: use_dora %v, modules_to_save %q", c.UseDoRA, c.ModulesToSave)
	}
	for l := range 2 {
		for m := range model.NumModules {
			x, y := a.LoRA[l][m], b.LoRA[l][m]
			if (x == nil) != (y == nil) {
				t.Fatalf("layer %d %s: presence differs", l, m)
			}
			if x != nil && (!equalF32(x.A, y.A) || !equalF32(x.B, y.B) || !equalF32(x.Magnitude, y.Magnitude)) {
				t.Errorf("layer %d %s: round trip changed the module", l, m)
			}
		}
	}
	if b.Head == nil || b.Embed == nil || !equalF32(matrixValues(b.Head), matrixValues(a.Head)) || !equalF32(matrixValues(b.Embed), matrixValues(a.Embed)) {
		t.Error("round trip changed the saved modules")
	}
	if !b.IsDoRA() {
		t.Error("loaded adapter is not DoRA")
	}
}

// A hand-written directory in PEFT's layout, with BF16 copies and
// magnitudes carrying ".weight", which some exporters keep.
func TestLoadPEFTLayoutVariants(t *testing.T) {
	rng := rand.New(rand.NewPCG(33, 34))
	ts := loraTensors(rng, uniform(2), allLayers("q_proj"))
	for _, x := range withMagnitudes(ts, 64)[len(ts):] {
		ts = append(ts, safetensors.F32Tensor(x.Name+".weight", x.Shape, randVals(rng, 64)))
	}
	head := bf16NaN(peftPrefix+"lm_head.weight", 300, 64, 0)
	binary.LittleEndian.PutUint16(head.Data, 0xc040) // -3.0 instead of the NaN
	ts = append(ts, head)
	cfg := `{"peft_type":"LORA","r":2,"lora_alpha":4,"target_modules":["q_proj"],"use_dora":true,"modules_to_save":["lm_head","embed_tokens"]}`
	res, err := Read(writeDir(t, cfg, ts), tinyBase(), Options{ID: "variants"})
	if err != nil {
		t.Fatal(err)
	}
	a := res.Adapter
	if a.LoRA[1][model.Q].Magnitude == nil {
		t.Error("magnitude with .weight not read")
	}
	row := make([]float32, 64)
	a.Head.Row(row, 0)
	if row[0] != -3 || row[1] != 1 {
		t.Errorf("BF16 head row 0 starts %v, want -3 1", row[:2])
	}
	if a.Embed != nil || len(res.Warnings) != 1 || !strings.Contains(res.Warnings[0], "embed_tokens") {
		t.Errorf("embed_tokens listed without weights: Embed %v, warnings %q", a.Embed != nil, res.Warnings)
	}
	// BF16 stays BF16: half the bytes of the float32 copy.
	lora := 2 * (2*(64+64) + 2*64 + 64) // A, B, transposed B, magnitude per layer
	if got, want := a.Bytes(), int64(4*lora+2*300*64); got != want {
		t.Errorf("Bytes %d, want %d", got, want)
	}
}

// The PEFT file path end to end on the fixture model: an adapter read with
// Options.Model serves exactly like the same adapter prepared in memory,
// and one read without it is refused rather than served unscaled.
func TestDoRAServesThroughFile(t *testing.T) {
	m, err := model.Load(fixtures.Path(t, "fixtures", "tiny-llama"), model.LoadOptions{Quant: "nf4"})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	rng := rand.New(rand.NewPCG(35, 36))
	mem := doraAdapter(rng, true)
	for _, layer := range mem.LoRA {
		for _, l := range layer {
			if l != nil {
				// Magnitudes near the adapted rows' norms keep the
				// activations in range.
				for i := range l.Magnitude {
					l.Magnitude[i] *= 3
				}
			}
		}
	}
	dir := filepath.Join(t.TempDir(), "dora")
	if err := SaveLoRA(dir, &PEFTConfig{R: 4, Alpha: 8}, mem); err != nil {
		t.Fatal(err)
	}
	if err := m.PrepareAdapter(nil, mem); err != nil {
		t.Fatal(err)
	}
	load := NewModelLoader(m, Options{}, nil)
	file, err := load(t.Context(), dir, "dora@1")
	if err != nil {
		t.Fatal(err)
	}
	run := func(a *model.Adapter) ([]float32, error) {
		kv := kvcache.NewPool(m.Cfg.Layers, m.Cfg.KVHeads, m.Cfg.HeadDim, 4, 4)
		ws := model.NewWorkspace(m, 8, 1)
		out, err := m.Step(nil, ws, kv, []model.SeqInput{{Tokens: []int32{5, 17, 250, 3}, KV: &kvcache.Seq{}, Adapter: a, AllLogits: true}})
		if err != nil {
			return nil, err
		}
		return slices.Clone(out[0]), nil
	}
	want, err := run(mem)
	if err != nil {
		t.Fatal(err)
	}
	got, err := run(file)
	if err != nil {
		t.Fatal(err)
	}
	for i := range want {
		if math.Abs(float64(got[i]-want[i])) > 1e-6 {
			t.Fatalf("logit %d: %v from the file, %v in memory", i, got[i], want[i])
		}
	}
	bare, _, err := Load(dir, m.Cfg, "dora@1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := run(bare); !errors.Is(err, model.ErrBadInput) {
		t.Errorf("unprepared DoRA adapter served: %v, want model.ErrBadInput", err)
	}
}

func TestSaveRejectsMismatchedExtras(t *testing.T) {
	rng := rand.New(rand.NewPCG(37, 38))
	a := doraAdapter(rng, true)
	for _, tc := range []struct {
		name string
		cfg  PEFTConfig
		edit func(a *model.Adapter)
		err  error
		want string
	}{
		{"copies not listed", PEFTConfig{R: 4, Alpha: 8, ModulesToSave: []string{"lm_head"}}, nil, ErrConfig, "does not match"},
		{"other module listed", PEFTConfig{R: 4, Alpha: 8, ModulesToSave: []string{"lm_head", "embed_tokens", "norm"}}, nil, ErrUnsupported, "model.norm"},
		{"magnitude missing", PEFTConfig{R: 4, Alpha: 8}, func(a *model.Adapter) { a.LoRA[0][model.V].Magnitude = nil }, ErrWeights, "DoRA magnitude of 0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := *a
			b.LoRA = slices.Clone(a.LoRA)
			if tc.edit != nil {
				lo := *b.LoRA[0][model.V]
				b.LoRA[0][model.V] = &lo
				tc.edit(&b)
			}
			err := SaveLoRA(filepath.Join(t.TempDir(), "x"), &tc.cfg, &b)
			if !errors.Is(err, tc.err) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v, want %v mentioning %q", err, tc.err, tc.want)
			}
		})
	}
}

// On a base with tied embeddings, ensure_weight_tying makes one saved copy
// serve as both the embedding and the head; without it PEFT unties them,
// and only the saved module changes.
func TestSavedCopyWeightTying(t *testing.T) {
	rng := rand.New(rand.NewPCG(39, 40))
	ts := append(loraTensors(rng, uniform(2), allLayers("q_proj")),
		safetensors.F32Tensor(peftPrefix+"model.embed_tokens.weight", []int{300, 64}, randVals(rng, 300*64)))
	tied := tinyBase()
	tied.TieEmbeddings = true
	for _, tc := range []struct {
		ensure       string
		base         bool // tied
		headFromCopy bool
	}{{"true", true, true}, {"false", true, false}, {"true", false, false}} {
		cfg := `{"peft_type":"LORA","r":2,"lora_alpha":4,"target_modules":["q_proj"],"modules_to_save":["embed_tokens"],"ensure_weight_tying":` + tc.ensure + `}`
		base := tinyBase()
		if tc.base {
			base = tied
		}
		res, err := Read(writeDir(t, cfg, ts), base, Options{})
		if err != nil {
			t.Fatal(err)
		}
		if a := res.Adapter; a.Embed == nil || (a.Head == a.Embed) != tc.headFromCopy || (!tc.headFromCopy && a.Head != nil) {
			t.Errorf("ensure_weight_tying %s, tied base %v: embed %v, head shares it %v", tc.ensure, tc.base, a.Embed != nil, a.Head == a.Embed)
		}
		if len(res.Warnings) != 0 {
			t.Errorf("warnings %q", res.Warnings)
		}
	}
}
