package model

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/loraplex/loraplex/inference/safetensors"
	"github.com/loraplex/loraplex/quant"
)

// ErrNotQuantized means SaveBnb was asked to write a model whose decoder
// weights are not all NF4.
var ErrNotQuantized = errors.New("model: weights are not NF4")

// SaveBnb writes the model as a Hugging Face bitsandbytes-NF4 checkpoint
// (double quantization, uint8 storage) into dir: config.json with a
// quantization_config, and model.safetensors. Embeddings, lm_head, norms and
// biases keep the embeddings' precision. Tokenizer files are not copied.
func (m *Model) SaveBnb(dir string) error {
	dt := storeDType(m.Embed)
	var ts []safetensors.Tensor
	dense := func(name string, w quant.Matrix) {
		v := make([]float32, w.Rows()*w.Cols())
		for r := range w.Rows() {
			w.Row(v[r*w.Cols():(r+1)*w.Cols()], r)
		}
		ts = append(ts, tensorOf(dt, name, []int{w.Rows(), w.Cols()}, v))
	}
	vector := func(name string, v []float32) { ts = append(ts, tensorOf(dt, name, []int{len(v)}, v)) }

	dense("model.embed_tokens.weight", m.Embed)
	if m.Head != m.Embed {
		dense("lm_head.weight", m.Head)
	}
	vector("model.norm.weight", m.Norm)
	source := "float32"
	for i, l := range m.Layers {
		vector(fmt.Sprintf("model.layers.%d.input_layernorm.weight", i), l.InNorm)
		vector(fmt.Sprintf("model.layers.%d.post_attention_layernorm.weight", i), l.PostNorm)
		for mod := range NumModules {
			name := TensorName(i, mod)
			q, ok := l.W[mod].(*quant.NF4)
			if !ok {
				return fmt.Errorf("%w: %s is %T; load the model with Quant \"nf4\" before saving", ErrNotQuantized, name, l.W[mod])
			}
			b := q.Bnb()
			var st struct {
				DType string `json:"dtype"`
			}
			if err := json.Unmarshal(b.QuantState, &st); err == nil && st.DType != "" {
				source = st.DType
			}
			ts = append(ts,
				safetensors.U8Tensor(name, []int{len(b.Weight), 1}, b.Weight),
				safetensors.U8Tensor(name+".absmax", []int{len(b.Absmax)}, b.Absmax),
				safetensors.F32Tensor(name+".quant_map", []int{len(b.QuantMap)}, b.QuantMap),
				safetensors.F32Tensor(name+".nested_absmax", []int{len(b.NestedAbsmax)}, b.NestedAbsmax),
				safetensors.F32Tensor(name+".nested_quant_map", []int{len(b.NestedQuantMap)}, b.NestedQuantMap),
				safetensors.U8Tensor(name+bnbStateSuffix, []int{len(b.QuantState)}, b.QuantState),
			)
			if bias := l.Bias[mod]; bias != nil {
				vector(name[:len(name)-len("weight")]+"bias", bias)
			}
		}
	}
	cfg, err := m.bnbConfig(source)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("model: save: %w", err)
	}
	if err := safetensors.Write(filepath.Join(dir, "model.safetensors"), ts, map[string]string{"format": "pt"}); err != nil {
		return fmt.Errorf("model: save: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), cfg, 0o644); err != nil {
		return fmt.Errorf("model: save: %w", err)
	}
	return nil
}

// bnbConfig is the source config.json with a bitsandbytes quantization_config
// added; unknown keys are kept.
func (m *Model) bnbConfig(computeDType string) ([]byte, error) {
	if m.rawConfig == nil {
		return nil, fmt.Errorf("model: save: the model was not loaded from a directory, so there is no config.json to extend")
	}
	var cfg map[string]any
	if err := json.Unmarshal(m.rawConfig, &cfg); err != nil {
		return nil, fmt.Errorf("model: save: config.json: %w", err)
	}
	cfg["quantization_config"] = map[string]any{
		"quant_method":              "bitsandbytes",
		"load_in_4bit":              true,
		"load_in_8bit":              false,
		"bnb_4bit_quant_type":       "nf4",
		"bnb_4bit_use_double_quant": true,
		"bnb_4bit_compute_dtype":    computeDType,
		"bnb_4bit_quant_storage":    "uint8",
		"llm_int8_skip_modules":     nil,
	}
	return json.MarshalIndent(cfg, "", "  ")
}

func storeDType(w quant.Matrix) safetensors.DType {
	switch w.(type) {
	case *quant.BF16:
		return safetensors.BF16
	case *quant.F16:
		return safetensors.F16
	}
	return safetensors.F32
}

func tensorOf(dt safetensors.DType, name string, shape []int, v []float32) safetensors.Tensor {
	switch dt {
	case safetensors.BF16:
		return safetensors.BF16Tensor(name, shape, v)
	case safetensors.F16:
		return safetensors.F16Tensor(name, shape, v)
	}
	return safetensors.F32Tensor(name, shape, v)
}
