package adapters

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/loraplex/loraplex/inference/config"
	"github.com/loraplex/loraplex/inference/model"
	"github.com/loraplex/loraplex/inference/safetensors"
	"github.com/loraplex/loraplex/quant"
	"github.com/loraplex/loraplex/quant/par"
)

// File names of a PEFT adapter directory.
const (
	ConfigFile  = "adapter_config.json"
	WeightsFile = "adapter_model.safetensors"
	PickleFile  = "adapter_model.bin"
)

// peftPrefix is what PeftModel adds in front of the base model's keys; some
// exporters leave it out.
const peftPrefix = "base_model.model."

// promptKey is the single tensor of a prompt-tuning adapter.
const promptKey = "prompt_embeddings"

// Where PEFT saves modules_to_save copies: the module's own weight name,
// once ".modules_to_save.<adapter name>" is stripped.
const (
	headKey  = lmHead + ".weight"
	embedKey = embedTokens + ".weight"
)

// Options tune Read.
type Options struct {
	// ID becomes Adapter.ID; see ID for the usual form.
	ID string
	// BaseName is the served base model's name or path. When both it and
	// base_model_name_or_path are set and differ, Read warns.
	BaseName string
	// Model, when set, is the loaded base the adapter will serve on: Read
	// then prepares the adapter for it (model.Model.PrepareAdapter). DoRA
	// adapters need that before they can serve, because their rescale
	// depends on the base's own weights; without Model the caller must call
	// PrepareAdapter itself.
	Model *model.Model
	// Pool spreads that preparation over workers; nil runs it serially.
	Pool *par.Pool
	// BF16 keeps the serving copy of A and Bᵀ in bfloat16: half the bytes
	// to stream per decode step, at bfloat16 rounding of the adapter
	// weights (logits move by about 3e-3 on the reference fixture).
	BF16 bool
}

// Result is a loaded adapter with its config and the problems that did not
// stop it from loading.
type Result struct {
	Adapter  *model.Adapter
	Config   *PEFTConfig
	Warnings []string
}

// Load reads the PEFT adapter in dir and checks it against the base model.
func Load(dir string, base *config.Config, id string) (*model.Adapter, *PEFTConfig, error) {
	res, err := Read(dir, base, Options{ID: id})
	if err != nil {
		return nil, nil, err
	}
	return res.Adapter, res.Config, nil
}

// Read is Load with options, returning warnings too.
func Read(dir string, base *config.Config, opt Options) (*Result, error) {
	label := opt.ID
	if label == "" {
		label = dir
	}
	res, err := read(dir, base, opt)
	if err != nil {
		return nil, fmt.Errorf("adapters: adapter %q: %w", label, err)
	}
	// Serving reads B transposed; paying the copy once at load makes
	// mixed-adapter decode about 30% faster.
	res.Adapter.Prepare()
	if opt.BF16 {
		res.Adapter.PrepareBF16()
	}
	if opt.Model != nil {
		if err := opt.Model.PrepareAdapter(opt.Pool, res.Adapter); err != nil {
			return nil, fmt.Errorf("adapters: adapter %q: %w: %w", label, ErrIncompatible, err)
		}
	}
	return res, nil
}

// NewLoader returns a loader with the shape the adapter registry expects:
// it reads adapters against base (named baseName, for the compatibility
// warning) and passes any warnings to warn, which may be nil. Its DoRA
// adapters are not prepared for a model; serving code wants NewModelLoader.
func NewLoader(base *config.Config, baseName string, warn func(id string, warnings []string)) func(ctx context.Context, dir, id string) (*model.Adapter, error) {
	return newLoader(base, Options{BaseName: baseName}, warn)
}

// NewModelLoader is NewLoader for adapters that will serve on m: each one
// is also prepared for m (see Options.Model), using opt.Pool for DoRA's
// norms. opt.ID is ignored: each load gets its own.
func NewModelLoader(m *model.Model, opt Options, warn func(id string, warnings []string)) func(ctx context.Context, dir, id string) (*model.Adapter, error) {
	opt.Model = m
	return newLoader(m.Cfg, opt, warn)
}

func newLoader(base *config.Config, opt Options, warn func(id string, warnings []string)) func(ctx context.Context, dir, id string) (*model.Adapter, error) {
	return func(ctx context.Context, dir, id string) (*model.Adapter, error) {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		o := opt
		o.ID = id
		res, err := Read(dir, base, o)
		if err != nil {
			return nil, err
		}
		if warn != nil && len(res.Warnings) > 0 {
			warn(id, res.Warnings)
		}
		return res.Adapter, nil
	}
}

// ReadConfig parses dir's adapter_config.json.
func ReadConfig(dir string) (*PEFTConfig, error) {
	b, err := os.ReadFile(filepath.Join(dir, ConfigFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s has no %s", ErrNotAdapter, dir, ConfigFile)
	}
	if err != nil {
		return nil, err
	}
	return ParseConfig(b)
}

func read(dir string, base *config.Config, opt Options) (*Result, error) {
	if base == nil || base.Hidden <= 0 || base.Layers <= 0 || base.Heads <= 0 || base.KVHeads <= 0 || base.HeadDim <= 0 || base.Intermediate <= 0 {
		return nil, fmt.Errorf("%w: no usable base model config to check the adapter against", ErrIncompatible)
	}
	cfg, err := ReadConfig(dir)
	if err != nil {
		return nil, err
	}
	wpath := filepath.Join(dir, WeightsFile)
	if _, err := os.Stat(wpath); errors.Is(err, fs.ErrNotExist) {
		if _, perr := os.Stat(filepath.Join(dir, PickleFile)); perr == nil {
			return nil, fmt.Errorf("%w: %s has only %s (a Python pickle, unsafe to load); convert it to %s, e.g. PeftModel.from_pretrained(...).save_pretrained(dir, safe_serialization=True)", ErrUnsupported, dir, PickleFile, WeightsFile)
		}
		return nil, fmt.Errorf("%w: %s has no %s", ErrWeights, dir, WeightsFile)
	}
	f, err := safetensors.Open(wpath)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrWeights, err)
	}
	defer f.Close()
	res := &Result{Config: cfg}
	if opt.BaseName != "" && cfg.BaseModel != "" && !sameModel(opt.BaseName, cfg.BaseModel) {
		res.Warnings = append(res.Warnings, fmt.Sprintf("adapter was trained on %q but the base model is %q; outputs may be meaningless if they differ", cfg.BaseModel, opt.BaseName))
	}
	if cfg.PeftType == TypePromptTuning {
		res.Adapter, err = readPrompt(f, cfg, base)
	} else {
		res.Adapter, err = readLoRA(f, cfg, base, &res.Warnings)
	}
	if err != nil {
		return nil, err
	}
	res.Adapter.ID = opt.ID
	return res, nil
}

// sameModel compares base model references loosely: hub ids and local
// paths usually agree on their last element.
func sameModel(a, b string) bool {
	last := func(s string) string {
		return strings.ToLower(filepath.Base(strings.TrimRight(filepath.ToSlash(s), "/")))
	}
	return a == b || last(a) == last(b)
}

// moduleDims returns a module's in and out features on base, with a
// description of where out comes from for error messages.
func moduleDims(b *config.Config, m model.Module) (in, out int, why string) {
	q := b.Heads * b.HeadDim
	kv := b.KVHeads * b.HeadDim
	switch m {
	case model.Q:
		return b.Hidden, q, fmt.Sprintf("in hidden %d, out heads %d × head_dim %d", b.Hidden, b.Heads, b.HeadDim)
	case model.K, model.V:
		return b.Hidden, kv, fmt.Sprintf("in hidden %d, out kv_heads %d × head_dim %d", b.Hidden, b.KVHeads, b.HeadDim)
	case model.O:
		return q, b.Hidden, fmt.Sprintf("in heads %d × head_dim %d, out hidden %d", b.Heads, b.HeadDim, b.Hidden)
	case model.Down:
		return b.Intermediate, b.Hidden, fmt.Sprintf("in intermediate %d, out hidden %d", b.Intermediate, b.Hidden)
	default:
		return b.Hidden, b.Intermediate, fmt.Sprintf("in hidden %d, out intermediate %d", b.Hidden, b.Intermediate)
	}
}

// part tells the tensors of one adapted module apart.
type part int

const (
	partA part = iota
	partB
	partMagnitude // DoRA's lora_magnitude_vector
)

// loraKey locates one LoRA tensor.
type loraKey struct {
	layer  int
	module model.Module
	part   part
}

// parseLoRAKey maps a PEFT tensor name onto a decoder projection, and
// explains names that belong to features loraplex does not serve.
func parseLoRAKey(name string) (loraKey, error) {
	k := strings.TrimPrefix(name, peftPrefix)
	switch {
	case strings.HasSuffix(k, ".lora_B.bias"):
		return loraKey{}, fmt.Errorf("%w: tensor %q is a LoRA bias (lora_bias=true), which is not served", ErrUnsupported, name)
	case strings.Contains(k, "modules_to_save"):
		return loraKey{}, fmt.Errorf("%w: tensor %q keeps PEFT's in-memory modules_to_save name; PeftModel.save_pretrained writes the copies as %s%s and %s%s", ErrWeights, name, peftPrefix, headKey, peftPrefix, embedKey)
	case strings.Contains(k, "embed_tokens") || strings.HasPrefix(k, lmHead):
		return loraKey{}, fmt.Errorf("%w: tensor %q adapts the token embedding or the output head with LoRA; they can only be replaced by full copies (modules_to_save), and LoRA adapts the decoder projections (q,k,v,o,gate,up,down)", ErrUnsupported, name)
	}
	bad := fmt.Errorf("%w: unexpected tensor %q: not a PEFT LoRA key for a decoder projection (expected names like %smodel.layers.0.self_attn.q_proj.lora_A.weight)", ErrWeights, name, peftPrefix)
	rest, ok := strings.CutPrefix(k, "model.layers.")
	if !ok {
		return loraKey{}, bad
	}
	parts := strings.Split(rest, ".")
	// DoRA magnitudes are saved without ".weight" (PEFT strips it to keep
	// an older format); a ".weight" suffix is tolerated too.
	weight := len(parts) == 5 && parts[4] == "weight"
	var p part
	switch {
	case weight && parts[3] == "lora_A":
		p = partA
	case weight && parts[3] == "lora_B":
		p = partB
	case (weight || len(parts) == 4) && parts[3] == "lora_magnitude_vector":
		p = partMagnitude
	default:
		return loraKey{}, bad
	}
	layer, err := strconv.Atoi(parts[0])
	if err != nil || layer < 0 || strconv.Itoa(layer) != parts[0] {
		return loraKey{}, bad
	}
	m, ok := model.ModuleByName(parts[2])
	if !ok || parentOf(m) != parts[1] {
		return loraKey{}, bad
	}
	return loraKey{layer: layer, module: m, part: p}, nil
}

// moduleParts are the tensors found for one decoder projection.
type moduleParts struct{ a, b, mag *safetensors.Tensor }

func (p moduleParts) empty() bool { return p.a == nil && p.b == nil && p.mag == nil }

func readLoRA(f *safetensors.File, cfg *PEFTConfig, base *config.Config, warnings *[]string) (*model.Adapter, error) {
	mt, err := newMatcher(cfg)
	if err != nil {
		return nil, err
	}
	for _, name := range []string{lmHead, embedTokens} {
		sel, err := mt.selects(name)
		if err != nil {
			return nil, err
		}
		if sel {
			return nil, fmt.Errorf("%w: target_modules selects %s: LoRA on the token embedding or the output head is not served; retrain targeting the decoder projections only, listing the module in modules_to_save if it must change", ErrUnsupported, name)
		}
	}
	pairs := make([][model.NumModules]moduleParts, base.Layers)
	var head, embed *safetensors.Tensor
	names := f.Names()
	slices.Sort(names)
	for _, name := range names {
		var slot **safetensors.Tensor
		switch strings.TrimPrefix(name, peftPrefix) {
		case headKey:
			slot = &head
		case embedKey:
			slot = &embed
		default:
			k, err := parseLoRAKey(name)
			if err != nil {
				return nil, err
			}
			if k.layer >= base.Layers {
				return nil, fmt.Errorf("%w: tensor %q is for layer %d but the base model has %d layers", ErrIncompatible, name, k.layer, base.Layers)
			}
			p := &pairs[k.layer][k.module]
			switch k.part {
			case partA:
				slot = &p.a
			case partB:
				slot = &p.b
			default:
				if !cfg.UseDoRA {
					return nil, fmt.Errorf("%w: tensor %q is a DoRA magnitude vector but use_dora is false; set use_dora to true or remove the tensors", ErrConfig, name)
				}
				slot = &p.mag
			}
		}
		t, err := f.Get(name)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrWeights, err)
		}
		if *slot != nil {
			return nil, fmt.Errorf("%w: tensor %q appears twice (with and without the %q prefix)", ErrWeights, name, peftPrefix)
		}
		*slot = &t
	}

	// Selection is decided first, so a config that selects nothing is
	// reported as such rather than as a stray tensor.
	sel := make([][model.NumModules]bool, base.Layers)
	selected, unused := 0, []string{}
	for l := range base.Layers {
		for m := range model.NumModules {
			if sel[l][m], err = mt.selects(moduleName(l, m)); err != nil {
				return nil, err
			}
			if sel[l][m] {
				selected++
				if pairs[l][m].empty() {
					unused = append(unused, moduleName(l, m))
				}
			}
		}
	}
	if selected == 0 {
		return nil, fmt.Errorf("%w: %s selects no module of the base model (decoder projections are named like model.layers.0.self_attn.q_proj)", ErrIncompatible, cfg.selection())
	}
	for l := range base.Layers {
		for m := range model.NumModules {
			if !sel[l][m] && !pairs[l][m].empty() {
				return nil, fmt.Errorf("%w: the weights adapt %s, which %s does not select; fix the config or remove the tensors", ErrConfig, moduleName(l, m), cfg.selection())
			}
		}
	}
	if len(unused) == selected && head == nil && embed == nil {
		return nil, fmt.Errorf("%w: %s holds no LoRA weights for any of the %d modules the config selects (e.g. %s)", ErrWeights, WeightsFile, selected, unused[0])
	}
	if len(unused) > 0 {
		*warnings = append(*warnings, fmt.Sprintf("%d modules selected by target_modules have no weights and are left unadapted (e.g. %s)", len(unused), unused[0]))
	}
	if cfg.FanInFanOut {
		*warnings = append(*warnings, "fan_in_fan_out is true, but Llama projections are nn.Linear; like PEFT, loraplex uses lora_A [r, in] and lora_B [out, r] as stored (and transposes tensors stored [in, r] / [r, out])")
	}

	a := &model.Adapter{LoRA: make([][model.NumModules]*model.LoRA, base.Layers)}
	for l := range base.Layers {
		for m := range model.NumModules {
			p := pairs[l][m]
			if p.empty() {
				continue
			}
			lo, err := buildLoRA(p, l, m, mt, base)
			if err != nil {
				return nil, err
			}
			a.LoRA[l][m] = lo
		}
	}
	if err := readSaved(a, cfg, head, embed, base, warnings); err != nil {
		return nil, err
	}
	return a, nil
}

// readSaved fills in the adapter's modules_to_save copies of the output
// head and the token embedding.
func readSaved(a *model.Adapter, cfg *PEFTConfig, head, embed *safetensors.Tensor, base *config.Config, warnings *[]string) error {
	want, err := savedModules(cfg.ModulesToSave)
	if err != nil {
		return err
	}
	parts := []struct {
		name   string
		t      *safetensors.Tensor
		listed bool
		dst    *quant.Matrix
	}{{lmHead, head, want.head, &a.Head}, {"embed_tokens", embed, want.embed, &a.Embed}}
	for _, s := range parts {
		switch {
		case s.t == nil:
		case !s.listed:
			return fmt.Errorf("%w: tensor %q is a full copy of %s, which modules_to_save does not list; add %q to modules_to_save or remove the tensor", ErrConfig, s.t.Name, s.name, s.name)
		default:
			if *s.dst, err = fullMatrix(s.t, s.name, base); err != nil {
				return err
			}
		}
	}
	if cfg.EnsureWeightTying && base.TieEmbeddings {
		// PEFT keeps the copies tied as the base ties lm_head to the
		// embedding, so one saved copy stands for both.
		if a.Head == nil {
			a.Head = a.Embed
		} else if a.Embed == nil {
			a.Embed = a.Head
		}
	}
	for _, s := range parts {
		if s.listed && *s.dst == nil {
			*warnings = append(*warnings, fmt.Sprintf("modules_to_save lists %s but %s holds no copy of it; the base model's is used", s.name, WeightsFile))
		}
	}
	return nil
}

// fullMatrix checks a saved vocab × hidden table against the base and keeps
// it in its stored precision (a 16-bit copy costs half the memory).
func fullMatrix(t *safetensors.Tensor, what string, base *config.Config) (quant.Matrix, error) {
	if len(t.Shape) != 2 {
		return nil, fmt.Errorf("%w: %s copy %q has shape %v; it must be 2-D [vocab hidden]", ErrWeights, what, t.Name, t.Shape)
	}
	rows, cols := t.Shape[0], t.Shape[1]
	switch {
	case cols != base.Hidden:
		return nil, fmt.Errorf("%w: %s copy %q is [%d %d] but the base model's hidden size is %d", ErrIncompatible, what, t.Name, rows, cols, base.Hidden)
	case rows != base.Vocab:
		// New tokens would need the adapter's own tokenizer, while a batch
		// shares the base's tokenizer, sampler and logit width.
		return nil, fmt.Errorf("%w: %s copy %q has %d token rows but the base vocabulary has %d: the adapter was trained with a resized vocabulary, which the base's tokenizer can neither produce nor decode; merge the adapter into a full model and serve that instead", ErrIncompatible, what, t.Name, rows, base.Vocab)
	}
	if t.DType == safetensors.BF16 || t.DType == safetensors.F16 {
		u, err := t.Uint16()
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrWeights, err)
		}
		// The file is unmapped once read, so the bits are copied.
		u = slices.Clone(u)
		if i := nonFinite16(u, t.DType); i >= 0 {
			return nil, fmt.Errorf("%w: tensor %q holds a NaN or infinity at flat index %d; the adapter is corrupt or its training diverged", ErrWeights, t.Name, i)
		}
		if t.DType == safetensors.BF16 {
			return quant.NewBF16(rows, cols, u), nil
		}
		return quant.NewF16(rows, cols, u), nil
	}
	v, err := floats(t, false)
	if err != nil {
		return nil, err
	}
	return quant.NewF32(rows, cols, v), nil
}

// nonFinite16 is nonFinite for raw BF16 or F16 bits.
func nonFinite16(u []uint16, d safetensors.DType) int {
	exp := uint16(0x7c00) // F16
	if d == safetensors.BF16 {
		exp = 0x7f80
	}
	for i, x := range u {
		if x&exp == exp {
			return i
		}
	}
	return -1
}

func buildLoRA(p moduleParts, layer int, m model.Module, mt *matcher, base *config.Config) (*model.LoRA, error) {
	name := moduleName(layer, m)
	switch {
	case p.a == nil:
		return nil, fmt.Errorf("%w: %s has no lora_A", ErrWeights, name)
	case p.b == nil:
		return nil, fmt.Errorf("%w: %s has no lora_B", ErrWeights, name)
	}
	r, alpha, err := mt.rankAlpha(name)
	if err != nil {
		return nil, err
	}
	in, out, why := moduleDims(base, m)
	as, bs := p.a.Shape, p.b.Shape
	if len(as) != 2 || len(bs) != 2 {
		return nil, fmt.Errorf("%w: %s: lora_A %v and lora_B %v must both be 2-D", ErrWeights, name, as, bs)
	}
	transposed := false
	if mt.c.FanInFanOut && !(as[1] == in && bs[0] == out) && as[0] == in && bs[1] == out {
		as, bs = []int{as[1], as[0]}, []int{bs[1], bs[0]}
		transposed = true
	}
	if as[1] != in || bs[0] != out {
		return nil, fmt.Errorf("%w: %s: lora_A %v and lora_B %v do not fit the base module (want lora_A [r %d] and lora_B [%d r]; %s)", ErrIncompatible, name, p.a.Shape, p.b.Shape, in, out, why)
	}
	if as[0] != r || bs[1] != r {
		return nil, fmt.Errorf("%w: %s: config gives rank %d (%s) but lora_A is %v and lora_B is %v", ErrConfig, name, r, mt.describe(name), p.a.Shape, p.b.Shape)
	}
	av, err := floats(p.a, transposed)
	if err != nil {
		return nil, err
	}
	bv, err := floats(p.b, transposed)
	if err != nil {
		return nil, err
	}
	lo := &model.LoRA{R: r, Scale: mt.c.Scale(r, alpha), A: av, B: bv}
	if mt.c.UseDoRA {
		if p.mag == nil {
			return nil, fmt.Errorf("%w: %s has no lora_magnitude_vector, which use_dora=true requires for every adapted module", ErrWeights, name)
		}
		if len(p.mag.Shape) != 1 || p.mag.Shape[0] != out {
			return nil, fmt.Errorf("%w: %s: lora_magnitude_vector %v does not fit the base module (want [%d]; %s)", ErrIncompatible, name, p.mag.Shape, out, why)
		}
		if lo.Magnitude, err = floats(p.mag, false); err != nil {
			return nil, err
		}
	}
	return lo, nil
}

// floats widens a tensor to float32, transposing a 2-D one if asked, and
// rejects non-finite values, which would poison every output.
func floats(t *safetensors.Tensor, transpose bool) ([]float32, error) {
	v, err := t.Float32()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrWeights, err)
	}
	if transpose {
		rows, cols := t.Shape[0], t.Shape[1]
		w := make([]float32, len(v))
		for i := range rows {
			for j := range cols {
				w[j*rows+i] = v[i*cols+j]
			}
		}
		v = w
	}
	if i := nonFinite(v); i >= 0 {
		return nil, fmt.Errorf("%w: tensor %q holds %v at flat index %d; the adapter is corrupt or its training diverged", ErrWeights, t.Name, v[i], i)
	}
	return v, nil
}

// nonFinite returns the index of the first NaN or ±Inf in v, or -1. It
// tests the exponent bits, which is several times faster than math.IsNaN
// and math.IsInf on float64 conversions.
func nonFinite(v []float32) int {
	for i, x := range v {
		if math.Float32bits(x)&0x7f800000 == 0x7f800000 {
			return i
		}
	}
	return -1
}

func readPrompt(f *safetensors.File, cfg *PEFTConfig, base *config.Config) (*model.Adapter, error) {
	if cfg.TokenDim != base.Hidden {
		return nil, fmt.Errorf("%w: token_dim %d differs from the base model's hidden size %d", ErrIncompatible, cfg.TokenDim, base.Hidden)
	}
	for _, name := range f.Names() {
		if name != promptKey {
			return nil, fmt.Errorf("%w: unexpected tensor %q in a prompt-tuning adapter (only %q is expected)", ErrWeights, name, promptKey)
		}
	}
	t, err := f.Get(promptKey)
	if err != nil {
		return nil, fmt.Errorf("%w: %s has no %q tensor", ErrWeights, WeightsFile, promptKey)
	}
	n := cfg.NumVirtualTokens * cfg.NumTransformerSubmodules
	if len(t.Shape) != 2 || t.Shape[0] != n || t.Shape[1] != cfg.TokenDim {
		return nil, fmt.Errorf("%w: %q has shape %v; num_virtual_tokens %d and token_dim %d need [%d %d]", ErrWeights, promptKey, t.Shape, cfg.NumVirtualTokens, cfg.TokenDim, n, cfg.TokenDim)
	}
	v, err := floats(&t, false)
	if err != nil {
		return nil, err
	}
	return &model.Adapter{Prompt: v, NumVirtual: cfg.NumVirtualTokens}, nil
}

// selection describes the config's module-selection rules for errors.
func (c *PEFTConfig) selection() string {
	s := "target_modules " + c.TargetModules.String()
	if !c.ExcludeModules.IsZero() {
		s += " minus exclude_modules " + c.ExcludeModules.String()
	}
	if c.LayersToTransform != nil {
		s += fmt.Sprintf(" in layers_to_transform %v", c.LayersToTransform)
	}
	if c.LayersPattern != nil {
		s += fmt.Sprintf(" (layers_pattern %q)", c.LayersPattern)
	}
	return s
}

// String renders target_modules as it appears in the config.
func (m Modules) String() string {
	if m.Regex != "" {
		return strconv.Quote(m.Regex)
	}
	q := make([]string, len(m.Names))
	for i, n := range m.Names {
		q[i] = strconv.Quote(n)
	}
	return "[" + strings.Join(q, ", ") + "]"
}
