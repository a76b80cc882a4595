package synth

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/loraplex/loraplex/inference/safetensors"
)

// ErrInvalid reports a bad shape or dtype.
var ErrInvalid = errors.New("invalid synthetic model request")

// Write writes a random-weight Llama model of shape s into dir (created if
// needed): config.json, generation_config.json, model.safetensors in dtype
// "F32" or "BF16", tokenizer.json, tokenizer_config.json and
// special_tokens_map.json. The output depends only on s, seed and dtype.
// Weights are generated and written tensor by tensor, so even M needs only
// a few MB of memory beyond the page cache.
func Write(dir string, s Shape, seed int64, dtype string) error {
	dt, err := parseDType(dtype)
	if err != nil {
		return err
	}
	if err := s.Validate(); err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("synth: %w", err)
	}
	tok := newBPE(s.Vocab - len(specialTokens))
	first := len(tok.tokens) // id of <|begin_of_text|>
	bos, eot, imEnd := first, first+1, first+3

	files := map[string]any{
		"config.json": s.config(torchDType(dt), bos, eot),
		"generation_config.json": map[string]any{
			"bos_token_id": bos,
			"eos_token_id": []int{imEnd, eot},
			"do_sample":    true,
			"temperature":  0.8,
			"top_p":        0.95,
		},
		"special_tokens_map.json": map[string]any{
			"bos_token": BeginOfText, "eos_token": IMEnd, "pad_token": EndOfText,
		},
	}
	for name, v := range files {
		b, err := json.MarshalIndent(v, "", "  ")
		if err != nil {
			return fmt.Errorf("synth: %s: %w", name, err)
		}
		if err := writeFile(filepath.Join(dir, name), b); err != nil {
			return err
		}
	}
	tj, err := tokenizerJSON(tok)
	if err != nil {
		return fmt.Errorf("synth: tokenizer.json: %w", err)
	}
	if err := writeFile(filepath.Join(dir, "tokenizer.json"), tj); err != nil {
		return err
	}
	tc, err := tokenizerConfigJSON(first, s.MaxPos)
	if err != nil {
		return fmt.Errorf("synth: tokenizer_config.json: %w", err)
	}
	if err := writeFile(filepath.Join(dir, "tokenizer_config.json"), tc); err != nil {
		return err
	}

	sp := specs(s, dt)
	byName := make(map[string]tensorSpec, len(sp))
	ts := make([]safetensors.Tensor, len(sp))
	for i, x := range sp {
		ts[i] = x.t
		byName[x.t.Name] = x
	}
	md := map[string]string{"format": "pt", "synth_shape": s.Name, "synth_seed": fmt.Sprint(seed)}
	return safetensors.WriteStream(filepath.Join(dir, safetensors.SingleFile), ts, md,
		func(t safetensors.Tensor, w io.Writer) error { return emit(byName[t.Name], seed, w) })
}

func writeFile(path string, b []byte) error {
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("synth: %w", err)
	}
	return nil
}

func parseDType(s string) (safetensors.DType, error) {
	switch strings.ToUpper(s) {
	case "F32", "FLOAT32":
		return safetensors.F32, nil
	case "BF16", "BFLOAT16":
		return safetensors.BF16, nil
	}
	return "", fmt.Errorf("synth: dtype %q: %w (want F32 or BF16)", s, ErrInvalid)
}

func torchDType(d safetensors.DType) string {
	if d == safetensors.BF16 {
		return "bfloat16"
	}
	return "float32"
}

// Demo model parameters: fixed so every install has the same demo model.
const (
	demoSeed  = 1
	demoDType = "F32"
	demoStamp = "synth-demo-v1"
)

// DemoDir returns cacheDir/demo, first writing the Tiny demo model there if
// it is not already complete. It is safe against concurrent callers and
// interrupted writes: the model is built in a temporary directory and renamed
// into place, and a stamp file marks a finished one.
func DemoDir(cacheDir string) (string, error) {
	dir := filepath.Join(cacheDir, "demo")
	if demoReady(dir) {
		return dir, nil
	}
	if err := os.MkdirAll(cacheDir, 0o755); err != nil {
		return "", fmt.Errorf("synth: demo model: %w", err)
	}
	tmp, err := os.MkdirTemp(cacheDir, ".demo-*")
	if err != nil {
		return "", fmt.Errorf("synth: demo model: %w", err)
	}
	defer os.RemoveAll(tmp) // a no-op once renamed
	if err := Write(tmp, Tiny, demoSeed, demoDType); err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(tmp, ".stamp"), []byte(demoStamp), 0o644); err != nil {
		return "", fmt.Errorf("synth: demo model: %w", err)
	}
	if !demoReady(dir) {
		os.RemoveAll(dir) // an incomplete leftover of an interrupted older version
	}
	if err := os.Rename(tmp, dir); err != nil && !demoReady(dir) {
		return "", fmt.Errorf("synth: demo model: %w", err)
	}
	return dir, nil
}

func demoReady(dir string) bool {
	b, err := os.ReadFile(filepath.Join(dir, ".stamp"))
	return err == nil && string(b) == demoStamp
}

// config is the config.json of a model of shape s whose tokenizer puts BOS
// and end-of-text at ids bos and eot.
func (s Shape) config(torchDType string, bos, eot int) map[string]any {
	return map[string]any{
		"architectures":           []string{"LlamaForCausalLM"},
		"model_type":              "llama",
		"hidden_size":             s.Hidden,
		"intermediate_size":       s.Intermediate,
		"num_hidden_layers":       s.Layers,
		"num_attention_heads":     s.Heads,
		"num_key_value_heads":     s.KVHeads,
		"head_dim":                s.Hidden / s.Heads,
		"vocab_size":              s.Vocab,
		"max_position_embeddings": s.MaxPos,
		"hidden_act":              "silu",
		"rms_norm_eps":            1e-5,
		"rope_theta":              10000.0,
		"rope_scaling":            nil,
		"attention_bias":          false,
		"mlp_bias":                false,
		"tie_word_embeddings":     s.Tied,
		"bos_token_id":            bos,
		"eos_token_id":            eot,
		"torch_dtype":             torchDType,
	}
}

// ConfigJSON is the config.json that Write gives a model of shape s stored
// in dtype ("BF16" or "F32"), for code that builds such a model in memory.
func (s Shape) ConfigJSON(dtype string) ([]byte, error) {
	dt, err := parseDType(dtype)
	if err != nil {
		return nil, err
	}
	if err := s.Validate(); err != nil {
		return nil, err
	}
	// The synthetic tokenizer holds Vocab−len(specialTokens) BPE tokens,
	// then the special tokens, <|begin_of_text|> and <|end_of_text|> first.
	first := s.Vocab - len(specialTokens)
	return json.Marshal(s.config(torchDType(dt), first, first+1))
}
