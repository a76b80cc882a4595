package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// Sentinel errors.
var (
	// ErrInvalid marks a config that is malformed or internally inconsistent.
	ErrInvalid = errors.New("invalid model config")
	// ErrUnsupported marks a well-formed config the engine cannot run.
	ErrUnsupported = errors.New("unsupported model config")
)

// Supported lists what the engine runs, for error messages.
const Supported = "supported: architectures LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM; " +
	"hidden_act silu; rope_scaling null, default, linear or llama3; bitsandbytes 4-bit nf4 quantization"

// RopeScaling is a non-default RoPE frequency scaling.
type RopeScaling struct {
	Type           string  // "linear" or "llama3"
	Factor         float64 // both types
	LowFreqFactor  float64 // llama3
	HighFreqFactor float64 // llama3
	OriginalMaxPos int     // llama3: original_max_position_embeddings
}

// QuantConfig is a bitsandbytes 4-bit quantization_config.
type QuantConfig struct {
	Method       string   // "bitsandbytes"
	QuantType    string   // "nf4"
	DoubleQuant  bool     // bnb_4bit_use_double_quant
	ComputeDType string   // bnb_4bit_compute_dtype, e.g. "bfloat16"
	StorageDType string   // bnb_4bit_quant_storage, e.g. "uint8"
	SkipModules  []string // llm_int8_skip_modules: modules left unquantized
}

// Config is the architecture of a Llama-family model.
type Config struct {
	Arch          string // "llama", "mistral" or "qwen2"
	Hidden        int
	Intermediate  int
	Layers        int
	Heads         int
	KVHeads       int
	HeadDim       int
	Vocab         int
	MaxPos        int
	NormEps       float64
	RopeTheta     float64
	RopeScaling   *RopeScaling // nil: default RoPE
	TieEmbeddings bool         // lm_head reuses model.embed_tokens.weight
	QKVBias       bool         // q, k and v projections carry a bias (Qwen2)
	SlidingWindow int          // attention window in tokens; 0 = full attention
	BOS           int          // -1 when the model has none
	EOS           []int        // generation stops at any of these
	DType         string       // torch dtype of the checkpoint, e.g. "bfloat16"
	Quant         *QuantConfig // nil unless the checkpoint is pre-quantized
}

var archByName = map[string]string{
	"LlamaForCausalLM":   "llama",
	"MistralForCausalLM": "mistral",
	"Qwen2ForCausalLM":   "qwen2",
}

// defaults holds each architecture's transformers defaults for absent fields.
type defaults struct {
	vocab, hidden, inter, layers, heads, kvHeads, maxPos int // kvHeads 0: = heads
	eps, theta                                           float64
	bos, eos                                             int // -1: none
}

var archDefaults = map[string]defaults{
	"llama":   {32000, 4096, 11008, 32, 32, 0, 2048, 1e-6, 10000, 1, 2},
	"mistral": {32000, 4096, 14336, 32, 32, 8, 4096 * 32, 1e-6, 10000, 1, 2},
	"qwen2":   {151936, 4096, 22016, 32, 32, 32, 32768, 1e-6, 10000, -1, -1},
}

// raw mirrors config.json; pointers tell absent fields from zero values.
type raw struct {
	Architectures    []string        `json:"architectures"`
	ModelType        string          `json:"model_type"`
	Vocab            *int            `json:"vocab_size"`
	Hidden           *int            `json:"hidden_size"`
	Intermediate     *int            `json:"intermediate_size"`
	Layers           *int            `json:"num_hidden_layers"`
	Heads            *int            `json:"num_attention_heads"`
	KVHeads          json.RawMessage `json:"num_key_value_heads"` // absent: arch default; null: = heads
	HeadDim          *int            `json:"head_dim"`
	HiddenAct        *string         `json:"hidden_act"`
	MaxPos           *int            `json:"max_position_embeddings"`
	NormEps          *float64        `json:"rms_norm_eps"`
	RopeTheta        *float64        `json:"rope_theta"`
	RopeScaling      json.RawMessage `json:"rope_scaling"`
	RopeParameters   json.RawMessage `json:"rope_parameters"`
	Tie              *bool           `json:"tie_word_embeddings"`
	AttentionBias    bool            `json:"attention_bias"`
	MLPBias          bool            `json:"mlp_bias"`
	BOS              json.RawMessage `json:"bos_token_id"`
	EOS              json.RawMessage `json:"eos_token_id"`
	TorchDType       string          `json:"torch_dtype"`
	DType            string          `json:"dtype"`
	SlidingWindow    *int            `json:"sliding_window"`
	UseSlidingWindow *bool           `json:"use_sliding_window"`
	Quant            json.RawMessage `json:"quantization_config"`
}

// Load reads dir/config.json and, when present, dir/generation_config.json,
// whose bos/eos ids take precedence (its eos ids come first; the model
// config's are kept too, so generation stops at any of them).
func Load(dir string) (*Config, error) {
	path := filepath.Join(dir, "config.json")
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	c, err := Parse(b)
	if err != nil {
		return nil, fmt.Errorf("config: %s: %w", path, err)
	}
	gpath := filepath.Join(dir, "generation_config.json")
	g, err := os.ReadFile(gpath)
	if errors.Is(err, os.ErrNotExist) {
		return c, nil
	}
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	if err := c.mergeGeneration(g); err != nil {
		return nil, fmt.Errorf("config: %s: %w", gpath, err)
	}
	return c, nil
}

func (c *Config) mergeGeneration(b []byte) error {
	var gen struct {
		BOS json.RawMessage `json:"bos_token_id"`
		EOS json.RawMessage `json:"eos_token_id"`
	}
	if err := json.Unmarshal(b, &gen); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if len(gen.BOS) > 0 {
		bos, err := tokenIDs("bos_token_id", gen.BOS)
		if err != nil {
			return err
		}
		if len(bos) > 0 {
			c.BOS = bos[0]
		}
	}
	eos, err := tokenIDs("eos_token_id", gen.EOS)
	if err != nil {
		return err
	}
	for _, id := range c.EOS {
		if !slices.Contains(eos, id) {
			eos = append(eos, id)
		}
	}
	c.EOS = eos
	return nil
}

// Parse reads a config.json, fills transformers' defaults and validates.
func Parse(b []byte) (*Config, error) {
	var r raw
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	arch, err := archOf(&r)
	if err != nil {
		return nil, err
	}
	d := archDefaults[arch]
	c := &Config{
		Arch:          arch,
		Vocab:         orInt(r.Vocab, d.vocab),
		Hidden:        orInt(r.Hidden, d.hidden),
		Intermediate:  orInt(r.Intermediate, d.inter),
		Layers:        orInt(r.Layers, d.layers),
		Heads:         orInt(r.Heads, d.heads),
		MaxPos:        orInt(r.MaxPos, d.maxPos),
		NormEps:       orFloat(r.NormEps, d.eps),
		RopeTheta:     orFloat(r.RopeTheta, d.theta),
		TieEmbeddings: r.Tie != nil && *r.Tie,
		QKVBias:       arch == "qwen2", // Qwen2Attention hard-codes it
		DType:         r.TorchDType,
	}
	if r.DType != "" {
		c.DType = r.DType // transformers 5 spelling
	}
	switch {
	case len(r.KVHeads) == 0 && d.kvHeads != 0:
		c.KVHeads = d.kvHeads
	case isNull(r.KVHeads):
		c.KVHeads = c.Heads
	default:
		if err := json.Unmarshal(r.KVHeads, &c.KVHeads); err != nil {
			return nil, fmt.Errorf("%w: num_key_value_heads: %v", ErrInvalid, err)
		}
	}
	if r.HiddenAct != nil && *r.HiddenAct != "silu" {
		return nil, fmt.Errorf("%w: hidden_act %q (%s)", ErrUnsupported, *r.HiddenAct, Supported)
	}
	if r.AttentionBias && arch != "qwen2" {
		return nil, fmt.Errorf("%w: attention_bias true (%s)", ErrUnsupported, Supported)
	}
	if r.MLPBias {
		return nil, fmt.Errorf("%w: mlp_bias true (%s)", ErrUnsupported, Supported)
	}
	if r.HeadDim != nil {
		c.HeadDim = *r.HeadDim
	} else if c.Heads > 0 {
		if c.Hidden%c.Heads != 0 {
			return nil, fmt.Errorf("%w: num_attention_heads %d does not divide hidden_size %d and head_dim is not set", ErrInvalid, c.Heads, c.Hidden)
		}
		c.HeadDim = c.Hidden / c.Heads
	}
	if err := c.parseRope(&r); err != nil {
		return nil, err
	}
	if err := c.parseWindow(&r); err != nil {
		return nil, err
	}
	if c.BOS, err = firstID("bos_token_id", r.BOS, d.bos); err != nil {
		return nil, err
	}
	if len(r.EOS) == 0 {
		if d.eos >= 0 {
			c.EOS = []int{d.eos}
		}
	} else if c.EOS, err = tokenIDs("eos_token_id", r.EOS); err != nil {
		return nil, err
	}
	if c.Quant, err = parseQuant(r.Quant); err != nil {
		return nil, err
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return c, nil
}

func archOf(r *raw) (string, error) {
	if len(r.Architectures) > 0 {
		if a, ok := archByName[r.Architectures[0]]; ok {
			return a, nil
		}
		return "", fmt.Errorf("%w: architecture %q (%s)", ErrUnsupported, r.Architectures[0], Supported)
	}
	if _, ok := archDefaults[r.ModelType]; ok {
		return r.ModelType, nil
	}
	if r.ModelType == "" {
		return "", fmt.Errorf("%w: neither architectures nor model_type is set (%s)", ErrInvalid, Supported)
	}
	return "", fmt.Errorf("%w: model_type %q (%s)", ErrUnsupported, r.ModelType, Supported)
}

// parseWindow keeps a sliding window only where the architecture applies it:
// Mistral always, Qwen2 only with use_sliding_window.
func (c *Config) parseWindow(r *raw) error {
	if r.SlidingWindow == nil {
		return nil
	}
	switch {
	case c.Arch == "mistral", c.Arch == "qwen2" && r.UseSlidingWindow != nil && *r.UseSlidingWindow:
		if *r.SlidingWindow < 0 {
			return fmt.Errorf("%w: sliding_window %d is negative", ErrInvalid, *r.SlidingWindow)
		}
		c.SlidingWindow = *r.SlidingWindow
	}
	return nil
}

// ropeRaw is the rope_scaling dict, or transformers 5's rope_parameters,
// which also carries rope_theta.
type ropeRaw struct {
	RopeType       string   `json:"rope_type"`
	Type           string   `json:"type"` // older spelling of rope_type
	RopeTheta      *float64 `json:"rope_theta"`
	Factor         *float64 `json:"factor"`
	LowFreqFactor  *float64 `json:"low_freq_factor"`
	HighFreqFactor *float64 `json:"high_freq_factor"`
	OrigMaxPos     *int     `json:"original_max_position_embeddings"`
}

func (c *Config) parseRope(r *raw) error {
	src, field := r.RopeScaling, "rope_scaling"
	if !isNull(r.RopeParameters) {
		src, field = r.RopeParameters, "rope_parameters"
	}
	if isNull(src) {
		return nil
	}
	var rr ropeRaw
	if err := json.Unmarshal(src, &rr); err != nil {
		return fmt.Errorf("%w: %s: %v", ErrInvalid, field, err)
	}
	if rr.RopeTheta != nil {
		c.RopeTheta = *rr.RopeTheta
	}
	typ := rr.RopeType
	if typ == "" {
		typ = rr.Type
	}
	switch typ {
	case "", "default":
		return nil
	case "linear":
		if rr.Factor == nil {
			return fmt.Errorf("%w: %s: linear scaling needs factor", ErrInvalid, field)
		}
		c.RopeScaling = &RopeScaling{Type: typ, Factor: *rr.Factor}
	case "llama3":
		if rr.Factor == nil || rr.LowFreqFactor == nil || rr.HighFreqFactor == nil || rr.OrigMaxPos == nil {
			return fmt.Errorf("%w: %s: llama3 scaling needs factor, low_freq_factor, high_freq_factor and original_max_position_embeddings", ErrInvalid, field)
		}
		c.RopeScaling = &RopeScaling{Type: typ, Factor: *rr.Factor, LowFreqFactor: *rr.LowFreqFactor,
			HighFreqFactor: *rr.HighFreqFactor, OriginalMaxPos: *rr.OrigMaxPos}
	default:
		return fmt.Errorf("%w: %s type %q (%s)", ErrUnsupported, field, typ, Supported)
	}
	return nil
}

func parseQuant(b json.RawMessage) (*QuantConfig, error) {
	if isNull(b) {
		return nil, nil
	}
	var q struct {
		Method       string   `json:"quant_method"`
		Load4bit     bool     `json:"load_in_4bit"`
		Load8bit     bool     `json:"load_in_8bit"`
		QuantType    string   `json:"bnb_4bit_quant_type"`
		DoubleQuant  bool     `json:"bnb_4bit_use_double_quant"`
		ComputeDType string   `json:"bnb_4bit_compute_dtype"`
		StorageDType string   `json:"bnb_4bit_quant_storage"`
		SkipModules  []string `json:"llm_int8_skip_modules"`
	}
	if err := json.Unmarshal(b, &q); err != nil {
		return nil, fmt.Errorf("%w: quantization_config: %v", ErrInvalid, err)
	}
	if q.Method != "bitsandbytes" || !q.Load4bit || q.Load8bit {
		return nil, fmt.Errorf("%w: quantization_config (quant_method %q, load_in_4bit %t, load_in_8bit %t; %s)",
			ErrUnsupported, q.Method, q.Load4bit, q.Load8bit, Supported)
	}
	if q.QuantType == "" {
		q.QuantType = "fp4" // bitsandbytes' default
	}
	return &QuantConfig{Method: q.Method, QuantType: q.QuantType, DoubleQuant: q.DoubleQuant,
		ComputeDType: q.ComputeDType, StorageDType: q.StorageDType, SkipModules: q.SkipModules}, nil
}

func isNull(b json.RawMessage) bool {
	s := strings.TrimSpace(string(b))
	return s == "" || s == "null"
}

// tokenIDs reads an id field that may be null, an integer or a list.
func tokenIDs(field string, b json.RawMessage) ([]int, error) {
	if isNull(b) {
		return nil, nil
	}
	var one int
	if err := json.Unmarshal(b, &one); err == nil {
		return []int{one}, nil
	}
	var many []int
	if err := json.Unmarshal(b, &many); err != nil {
		return nil, fmt.Errorf("%w: %s must be an integer or a list of integers, got %s", ErrInvalid, field, b)
	}
	return many, nil
}

func firstID(field string, b json.RawMessage, def int) (int, error) {
	if len(b) == 0 {
		return def, nil
	}
	ids, err := tokenIDs(field, b)
	if err != nil || len(ids) == 0 {
		return -1, err
	}
	return ids[0], nil
}

func orInt(p *int, def int) int {
	if p == nil {
		return def
	}
	return *p
}

func orFloat(p *float64, def float64) float64 {
	if p == nil {
		return def
	}
	return *p
}

// Validate checks that the sizes are positive and consistent and that every
// option is one the engine supports.
func (c *Config) Validate() error {
	for _, f := range []struct {
		name string
		v    int
	}{
		{"hidden_size", c.Hidden}, {"intermediate_size", c.Intermediate}, {"num_hidden_layers", c.Layers},
		{"num_attention_heads", c.Heads}, {"num_key_value_heads", c.KVHeads}, {"head_dim", c.HeadDim},
		{"vocab_size", c.Vocab}, {"max_position_embeddings", c.MaxPos},
	} {
		if f.v <= 0 {
			return fmt.Errorf("%w: %s is %d, must be positive", ErrInvalid, f.name, f.v)
		}
	}
	if _, ok := archDefaults[c.Arch]; !ok {
		return fmt.Errorf("%w: arch %q (%s)", ErrUnsupported, c.Arch, Supported)
	}
	if c.Heads%c.KVHeads != 0 {
		return fmt.Errorf("%w: num_key_value_heads %d does not divide num_attention_heads %d", ErrInvalid, c.KVHeads, c.Heads)
	}
	if c.HeadDim%2 != 0 {
		return fmt.Errorf("%w: head_dim %d is odd; RoPE needs an even head_dim", ErrInvalid, c.HeadDim)
	}
	if !(c.NormEps > 0) || math.IsInf(c.NormEps, 0) {
		return fmt.Errorf("%w: rms_norm_eps %g must be a positive number", ErrInvalid, c.NormEps)
	}
	if !(c.RopeTheta > 1) || math.IsInf(c.RopeTheta, 0) {
		return fmt.Errorf("%w: rope_theta %g must be a number above 1", ErrInvalid, c.RopeTheta)
	}
	for _, id := range append([]int{c.BOS}, c.EOS...) {
		if id < -1 || id >= c.Vocab {
			return fmt.Errorf("%w: token id %d is outside the vocabulary of %d", ErrInvalid, id, c.Vocab)
		}
	}
	if err := c.RopeScaling.validate(); err != nil {
		return err
	}
	if q := c.Quant; q != nil && q.QuantType != "nf4" {
		return fmt.Errorf("%w: bnb_4bit_quant_type %q (%s)", ErrUnsupported, q.QuantType, Supported)
	}
	return nil
}

func (s *RopeScaling) validate() error {
	if s == nil {
		return nil
	}
	if !(s.Factor > 0) || math.IsInf(s.Factor, 0) {
		return fmt.Errorf("%w: rope scaling factor %g must be positive", ErrInvalid, s.Factor)
	}
	switch s.Type {
	case "linear":
		return nil
	case "llama3":
		if !(s.LowFreqFactor > 0) || !(s.HighFreqFactor > s.LowFreqFactor) || math.IsInf(s.HighFreqFactor, 0) || s.OriginalMaxPos <= 0 {
			return fmt.Errorf("%w: llama3 rope scaling needs 0 < low_freq_factor < high_freq_factor and original_max_position_embeddings > 0, got %g, %g, %d",
				ErrInvalid, s.LowFreqFactor, s.HighFreqFactor, s.OriginalMaxPos)
		}
		return nil
	}
	return fmt.Errorf("%w: rope scaling type %q (%s)", ErrUnsupported, s.Type, Supported)
}

// InvFreq returns the HeadDim/2 RoPE inverse frequencies θ^(−2i/HeadDim)
// with the configured scaling applied, following transformers'
// rope-initialisation functions (computed in float64; transformers rounds
// them to float32).
func (c *Config) InvFreq() []float64 {
	half := c.HeadDim / 2
	f := make([]float64, half)
	for i := range f {
		f[i] = 1 / math.Pow(c.RopeTheta, float64(2*i)/float64(c.HeadDim))
	}
	s := c.RopeScaling
	if s == nil {
		return f
	}
	switch s.Type {
	case "linear":
		for i := range f {
			f[i] /= s.Factor
		}
	case "llama3":
		orig := float64(s.OriginalMaxPos)
		lowWave := orig / s.LowFreqFactor   // longer wavelengths are scaled fully
		highWave := orig / s.HighFreqFactor // shorter ones are kept
		for i, x := range f {
			wave := 2 * math.Pi / x
			switch {
			case wave > lowWave:
				f[i] = x / s.Factor
			case wave < highWave:
			default:
				smooth := (orig/wave - s.LowFreqFactor) / (s.HighFreqFactor - s.LowFreqFactor)
				f[i] = (1-smooth)*x/s.Factor + smooth*x
			}
		}
	}
	return f
}
