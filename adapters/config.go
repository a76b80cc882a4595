package adapters

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strings"
)

// PEFT method and task names as they appear in adapter_config.json.
const (
	TypeLoRA         = "LORA"
	TypePromptTuning = "PROMPT_TUNING"
	TaskCausalLM     = "CAUSAL_LM"
	// AllLinear is PEFT's target_modules shorthand for every linear layer
	// except the output head.
	AllLinear = "all-linear"
)

// Modules is PEFT's target_modules or exclude_modules value, which is either
// a list of names or a single regular expression.
type Modules struct {
	// Names is the list form: a module is selected when its full name equals
	// an entry or ends with "." + entry. An empty non-nil list selects none.
	Names []string
	// Regex is the string form: a regular expression that must match the
	// whole module name (Python re.fullmatch), or AllLinear.
	Regex string
}

// IsZero reports whether neither form is set (JSON null or absent).
func (m Modules) IsZero() bool { return m.Names == nil && m.Regex == "" }

// RankRule is one rank_pattern entry; rules apply in file order and the
// first whose pattern matches a module wins.
type RankRule struct {
	Pattern string
	R       int
}

// AlphaRule is one alpha_pattern entry, matched like RankRule.
type AlphaRule struct {
	Pattern string
	Alpha   float64
}

// PEFTConfig is the part of adapter_config.json that loraplex reads and
// writes. Fields of the other method are zero. Options loraplex cannot serve
// (bias tensors, modules_to_save beyond lm_head and embed_tokens, ...) are
// rejected when parsing, so they have no field here.
type PEFTConfig struct {
	PeftType      string // TypeLoRA or TypePromptTuning
	TaskType      string // TaskCausalLM, or "" for null
	BaseModel     string // base_model_name_or_path, "" for null
	Revision      string
	InferenceMode bool

	// LoRA.
	R                 int
	Alpha             float64 // lora_alpha
	UseRSLoRA         bool    // scale alpha/sqrt(r) instead of alpha/r
	TargetModules     Modules
	ExcludeModules    Modules
	RankPattern       []RankRule
	AlphaPattern      []AlphaRule
	FanInFanOut       bool
	Dropout           float64 // lora_dropout, training only
	LayersToTransform []int   // nil: every layer
	LayersPattern     []string
	UseDoRA           bool // weight-decomposed LoRA: a magnitude vector per module
	// ModulesToSave lists modules the adapter replaces by full trained
	// copies. Only entries that name the output head or the token embedding
	// (PEFT matches them as suffixes of module names, e.g. "lm_head",
	// "embed_tokens") are served.
	ModulesToSave []string
	// EnsureWeightTying makes copies of tied modules stay tied: on a base
	// whose lm_head is its embedding, one saved copy serves as both.
	EnsureWeightTying bool

	// Prompt tuning.
	NumVirtualTokens         int
	TokenDim                 int
	NumTransformerSubmodules int
	NumAttentionHeads        int
	NumLayers                int
	PromptTuningInit         string // "RANDOM", "TEXT" or "SAMPLE_VOCAB"
	PromptTuningInitText     string
	TokenizerNameOrPath      string
}

// defaultLlamaTargets is what PEFT targets on Llama, Mistral and Qwen2 when
// a config leaves target_modules unset.
var defaultLlamaTargets = []string{"q_proj", "v_proj"}

// ParseConfig parses and checks adapter_config.json. Unknown keys are
// ignored, as newer PEFT versions keep adding them; known keys with the
// wrong type, and features loraplex does not serve, are errors that name the
// field.
func ParseConfig(b []byte) (*PEFTConfig, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("%w: not a JSON object: %v", ErrConfig, err)
	}
	if m == nil {
		return nil, fmt.Errorf("%w: not a JSON object", ErrConfig)
	}
	f := fields(m)
	c := &PEFTConfig{}
	var err error
	c.PeftType, _ = f.str("peft_type", &err)
	c.TaskType, _ = f.str("task_type", &err)
	c.BaseModel, _ = f.str("base_model_name_or_path", &err)
	c.Revision, _ = f.str("revision", &err)
	c.InferenceMode, _ = f.boolean("inference_mode", &err)
	if err != nil {
		return nil, err
	}
	switch strings.ToUpper(c.PeftType) {
	case "":
		return nil, fmt.Errorf("%w: peft_type is missing; set it to %q or %q", ErrConfig, TypeLoRA, TypePromptTuning)
	case TypeLoRA:
		c.PeftType = TypeLoRA
	case TypePromptTuning:
		c.PeftType = TypePromptTuning
	default:
		return nil, fmt.Errorf("%w: peft_type %q: loraplex serves only %q and %q adapters", ErrUnsupported, c.PeftType, TypeLoRA, TypePromptTuning)
	}
	switch strings.ToUpper(c.TaskType) {
	case "":
	case TaskCausalLM:
		c.TaskType = TaskCausalLM
	default:
		return nil, fmt.Errorf("%w: task_type %q: only %q (or null) adapters generate text", ErrUnsupported, c.TaskType, TaskCausalLM)
	}
	mts, _ := f.strOrList("modules_to_save", &err)
	if err != nil {
		return nil, err
	}
	if c.PeftType == TypeLoRA {
		c.ModulesToSave = mts
		err = c.parseLoRA(f)
	} else {
		if len(mts) > 0 {
			return nil, fmt.Errorf("%w: modules_to_save %q: only LoRA adapters may carry full module copies; retrain the prompt without modules_to_save", ErrUnsupported, mts)
		}
		err = c.parsePromptTuning(f)
	}
	if err != nil {
		return nil, err
	}
	return c, nil
}

func (c *PEFTConfig) parseLoRA(f fields) error {
	var err error
	r, ok := f.integer("r", &err)
	if !ok {
		r = 8 // PEFT's default
	}
	c.R = r
	alpha, ok := f.number("lora_alpha", &err)
	if !ok {
		alpha = 8
	}
	c.Alpha = alpha
	c.UseRSLoRA, _ = f.boolean("use_rslora", &err)
	c.TargetModules, _ = f.modules("target_modules", &err)
	c.ExcludeModules, _ = f.modules("exclude_modules", &err)
	c.RankPattern = f.rankPattern(&err)
	c.AlphaPattern = f.alphaPattern(&err)
	c.FanInFanOut, _ = f.boolean("fan_in_fan_out", &err)
	c.Dropout, _ = f.number("lora_dropout", &err)
	c.LayersToTransform, _ = f.intOrList("layers_to_transform", &err)
	c.LayersPattern, _ = f.strOrList("layers_pattern", &err)
	bias, hasBias := f.str("bias", &err)
	c.UseDoRA, _ = f.boolean("use_dora", &err)
	c.EnsureWeightTying, _ = f.boolean("ensure_weight_tying", &err)
	loraBias, _ := f.boolean("lora_bias", &err)
	if err != nil {
		return err
	}
	switch {
	case loraBias:
		return fmt.Errorf("%w: lora_bias is true: LoRA B bias vectors are not served; retrain with lora_bias=false", ErrUnsupported)
	case hasBias && bias != "none":
		return fmt.Errorf("%w: bias %q: only \"none\" is served, since trained biases would change the shared base; retrain with bias=\"none\"", ErrUnsupported, bias)
	}
	if c.TargetModules.IsZero() {
		c.TargetModules = Modules{Names: slices.Clone(defaultLlamaTargets)}
	}
	return c.checkLoRA()
}

// checkLoRA validates the LoRA fields independently of any base model; it
// runs on parsed configs and on configs handed to SaveLoRA.
func (c *PEFTConfig) checkLoRA() error {
	switch {
	case c.R <= 0:
		return fmt.Errorf("%w: r is %d; the rank must be positive", ErrConfig, c.R)
	case !finite(c.Alpha):
		return fmt.Errorf("%w: lora_alpha is %v; it must be a finite number", ErrConfig, c.Alpha)
	case c.TargetModules.Regex != "" && c.LayersToTransform != nil:
		return fmt.Errorf("%w: layers_to_transform cannot be used when target_modules is a string (PEFT refuses it too); list the module names instead", ErrConfig)
	case len(c.LayersPattern) > 0 && len(c.LayersToTransform) == 0:
		return fmt.Errorf("%w: layers_pattern is set but layers_to_transform is not; set both or neither", ErrConfig)
	}
	for _, l := range c.LayersToTransform {
		if l < 0 {
			return fmt.Errorf("%w: layers_to_transform holds %d; layer indices start at 0", ErrConfig, l)
		}
	}
	for _, p := range c.RankPattern {
		if p.R <= 0 {
			return fmt.Errorf("%w: rank_pattern[%q] is %d; ranks must be positive", ErrConfig, p.Pattern, p.R)
		}
	}
	for _, p := range c.AlphaPattern {
		if !finite(p.Alpha) {
			return fmt.Errorf("%w: alpha_pattern[%q] is %v; it must be a finite number", ErrConfig, p.Pattern, p.Alpha)
		}
	}
	if _, err := savedModules(c.ModulesToSave); err != nil {
		return err
	}
	_, err := newMatcher(c)
	return err
}

func (c *PEFTConfig) parsePromptTuning(f fields) error {
	var err error
	c.NumVirtualTokens, _ = f.integer("num_virtual_tokens", &err)
	c.TokenDim, _ = f.integer("token_dim", &err)
	c.NumTransformerSubmodules, _ = f.integer("num_transformer_submodules", &err)
	c.NumAttentionHeads, _ = f.integer("num_attention_heads", &err)
	c.NumLayers, _ = f.integer("num_layers", &err)
	c.PromptTuningInit, _ = f.str("prompt_tuning_init", &err)
	c.PromptTuningInitText, _ = f.str("prompt_tuning_init_text", &err)
	c.TokenizerNameOrPath, _ = f.str("tokenizer_name_or_path", &err)
	if err != nil {
		return err
	}
	if c.PromptTuningInit == "" {
		c.PromptTuningInit = "RANDOM"
	}
	if c.NumTransformerSubmodules == 0 {
		// PEFT fills this in from the model at training time; a decoder-only
		// model has one.
		c.NumTransformerSubmodules = 1
	}
	return c.checkPromptTuning()
}

func (c *PEFTConfig) checkPromptTuning() error {
	switch {
	case c.NumVirtualTokens <= 0:
		return fmt.Errorf("%w: num_virtual_tokens is %d; it must be positive", ErrConfig, c.NumVirtualTokens)
	case c.TokenDim <= 0:
		return fmt.Errorf("%w: token_dim is %d; it must be the base model's hidden size", ErrConfig, c.TokenDim)
	case c.NumTransformerSubmodules != 1:
		return fmt.Errorf("%w: num_transformer_submodules is %d: only decoder-only prompt tuning (1) is served", ErrUnsupported, c.NumTransformerSubmodules)
	}
	return nil
}

// Scale is PEFT's LoRA scaling for a module with rank r and alpha.
func (c *PEFTConfig) Scale(r int, alpha float64) float32 {
	if c.UseRSLoRA {
		return float32(alpha / math.Sqrt(float64(r)))
	}
	return float32(alpha / float64(r))
}

// MarshalJSON writes the config the way PEFT's save_pretrained does: every
// field PEFT expects for the method, keys sorted, so PEFT (including older
// versions that reject unknown keys) loads it.
func (c *PEFTConfig) MarshalJSON() ([]byte, error) {
	null := func(s string) any {
		if s == "" {
			return nil
		}
		return s
	}
	m := map[string]any{
		"auto_mapping":            nil,
		"base_model_name_or_path": null(c.BaseModel),
		"inference_mode":          c.InferenceMode,
		"peft_type":               c.PeftType,
		"revision":                null(c.Revision),
		"task_type":               null(c.TaskType),
	}
	switch c.PeftType {
	case TypeLoRA:
		m["r"] = c.R
		m["lora_alpha"] = jsonNumber(c.Alpha)
		m["use_rslora"] = c.UseRSLoRA
		m["target_modules"] = c.TargetModules.value()
		if !c.ExcludeModules.IsZero() {
			// Only newer PEFT knows exclude_modules; older versions would
			// refuse the key, so it is written only when it matters.
			m["exclude_modules"] = c.ExcludeModules.value()
		}
		m["rank_pattern"] = ruleList[RankRule](c.RankPattern)
		m["alpha_pattern"] = ruleList[AlphaRule](c.AlphaPattern)
		m["fan_in_fan_out"] = c.FanInFanOut
		m["lora_dropout"] = jsonNumber(c.Dropout)
		m["bias"] = "none"
		m["modules_to_save"] = nil
		if c.ModulesToSave != nil {
			m["modules_to_save"] = c.ModulesToSave
		}
		if c.EnsureWeightTying {
			// Only newer PEFT knows the key, as with exclude_modules.
			m["ensure_weight_tying"] = true
		}
		m["init_lora_weights"] = true
		m["use_dora"] = c.UseDoRA
		m["layers_to_transform"] = nil
		if c.LayersToTransform != nil {
			m["layers_to_transform"] = c.LayersToTransform
		}
		m["layers_pattern"] = nil
		if c.LayersPattern != nil {
			m["layers_pattern"] = c.LayersPattern
		}
	case TypePromptTuning:
		m["num_virtual_tokens"] = c.NumVirtualTokens
		m["token_dim"] = c.TokenDim
		m["num_transformer_submodules"] = c.NumTransformerSubmodules
		m["num_attention_heads"] = c.NumAttentionHeads
		m["num_layers"] = c.NumLayers
		init := c.PromptTuningInit
		if init == "" {
			init = "RANDOM"
		}
		m["prompt_tuning_init"] = init
		m["prompt_tuning_init_text"] = null(c.PromptTuningInitText)
		m["tokenizer_name_or_path"] = null(c.TokenizerNameOrPath)
		m["tokenizer_kwargs"] = nil
	default:
		return nil, fmt.Errorf("%w: peft_type %q cannot be written", ErrConfig, c.PeftType)
	}
	return json.MarshalIndent(m, "", "  ")
}

func (m Modules) value() any {
	if m.Regex != "" {
		return m.Regex
	}
	if m.Names == nil {
		return nil
	}
	return m.Names
}

// jsonNumber writes integral values without a fraction, as Python writes
// the ints PEFT declares for lora_alpha.
func jsonNumber(v float64) json.Number {
	if v == math.Trunc(v) && math.Abs(v) < 1<<53 {
		return json.Number(fmt.Sprintf("%d", int64(v)))
	}
	return json.Number(fmt.Sprintf("%v", v))
}

// ruleList writes rank_pattern or alpha_pattern as a JSON object that keeps
// its key order, since PEFT uses the first matching pattern.
type ruleList[T RankRule | AlphaRule] []T

func (l ruleList[T]) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, r := range l {
		if i > 0 {
			b.WriteByte(',')
		}
		var key string
		var val any
		switch r := any(r).(type) {
		case RankRule:
			key, val = r.Pattern, r.R
		case AlphaRule:
			key, val = r.Pattern, jsonNumber(r.Alpha)
		}
		k, err := json.Marshal(key)
		if err != nil {
			return nil, err
		}
		v, err := json.Marshal(val)
		if err != nil {
			return nil, err
		}
		b.Write(k)
		b.WriteByte(':')
		b.Write(v)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }
