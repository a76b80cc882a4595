package adapters

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"

	"github.com/loraplex/loraplex/inference/model"
	"github.com/loraplex/loraplex/inference/safetensors"
	"github.com/loraplex/loraplex/quant"
)

// safetensorsMeta is what PEFT's save_pretrained puts in the header.
var safetensorsMeta = map[string]string{"format": "pt"}

// SaveLoRA writes a as a PEFT LoRA adapter directory that PEFT, vLLM and
// loraplex load. cfg supplies r, lora_alpha and the targeting rules; if
// TargetModules is unset it becomes the list of module kinds a adapts. Every
// adapted module must be selected by cfg with the rank and scale a carries.
// DoRA magnitudes are written as PEFT writes them (use_dora becomes true),
// and a's own embedding and head as modules_to_save copies (ModulesToSave,
// if unset, becomes the list of them). The directory appears complete or
// not at all; dir must not exist or be empty.
func SaveLoRA(dir string, cfg *PEFTConfig, a *model.Adapter) error {
	if err := saveLoRA(dir, cfg, a); err != nil {
		return fmt.Errorf("adapters: save %s: %w", dir, err)
	}
	return nil
}

func saveLoRA(dir string, cfg *PEFTConfig, a *model.Adapter) error {
	if a == nil || len(a.LoRA) == 0 {
		return fmt.Errorf("%w: the adapter has no LoRA weights", ErrWeights)
	}
	if len(a.Prompt) > 0 {
		return fmt.Errorf("%w: a PEFT directory holds one method; save the prompt with SavePromptTuning separately", ErrConfig)
	}
	c := *cfg
	c.PeftType = TypeLoRA
	if c.TaskType == "" {
		c.TaskType = TaskCausalLM
	}
	c.InferenceMode = true
	if c.TargetModules.IsZero() {
		c.TargetModules.Names = adaptedKinds(a)
	}
	c.UseDoRA = c.UseDoRA || a.IsDoRA()
	if c.ModulesToSave == nil {
		c.ModulesToSave = savedNames(a)
	}
	if err := c.checkLoRA(); err != nil {
		return err
	}
	want, _ := savedModules(c.ModulesToSave)
	if want.head != (a.Head != nil) || want.embed != (a.Embed != nil) {
		return fmt.Errorf("%w: modules_to_save %q does not match the adapter's own modules %q", ErrConfig, c.ModulesToSave, savedNames(a))
	}
	mt, err := newMatcher(&c)
	if err != nil {
		return err
	}
	var tensors []safetensors.Tensor
	data := map[string][]float32{}
	for l, layer := range a.LoRA {
		for m, lo := range layer {
			if lo == nil {
				continue
			}
			name := moduleName(l, model.Module(m))
			if err := checkSaved(&c, mt, name, lo); err != nil {
				return err
			}
			in, out := len(lo.A)/lo.R, len(lo.B)/lo.R
			ka, kb := peftPrefix+name+".lora_A.weight", peftPrefix+name+".lora_B.weight"
			tensors = append(tensors,
				safetensors.Tensor{Name: ka, DType: safetensors.F32, Shape: []int{lo.R, in}},
				safetensors.Tensor{Name: kb, DType: safetensors.F32, Shape: []int{out, lo.R}})
			data[ka], data[kb] = lo.A, lo.B
			if c.UseDoRA {
				// PEFT writes the magnitude without ".weight".
				km := peftPrefix + name + ".lora_magnitude_vector"
				tensors = append(tensors, safetensors.Tensor{Name: km, DType: safetensors.F32, Shape: []int{out}})
				data[km] = lo.Magnitude
			}
		}
	}
	if len(tensors) == 0 {
		return fmt.Errorf("%w: the adapter has no LoRA weights", ErrWeights)
	}
	for _, s := range []struct {
		key string
		w   quant.Matrix
	}{{headKey, a.Head}, {embedKey, a.Embed}} {
		if s.w == nil {
			continue
		}
		k := peftPrefix + s.key
		tensors = append(tensors, safetensors.Tensor{Name: k, DType: safetensors.F32, Shape: []int{s.w.Rows(), s.w.Cols()}})
		data[k] = dense(s.w)
	}
	return writeAdapter(dir, &c, tensors, data)
}

// savedNames lists, as modules_to_save entries, the modules a replaces by
// full copies; nil when it has none.
func savedNames(a *model.Adapter) []string {
	var names []string
	if a.Embed != nil {
		names = append(names, "embed_tokens")
	}
	if a.Head != nil {
		names = append(names, lmHead)
	}
	return names
}

// dense widens a matrix to float32 values, row by row.
func dense(w quant.Matrix) []float32 {
	rows, cols := w.Rows(), w.Cols()
	v := make([]float32, rows*cols)
	for r := range rows {
		w.Row(v[r*cols:(r+1)*cols], r)
	}
	return v
}

// adaptedKinds lists the module kinds a adapts in any layer.
func adaptedKinds(a *model.Adapter) []string {
	var seen [model.NumModules]bool
	for _, layer := range a.LoRA {
		for m, lo := range layer {
			seen[m] = seen[m] || lo != nil
		}
	}
	names := []string{}
	for m, ok := range seen {
		if ok {
			names = append(names, model.Module(m).String())
		}
	}
	return names
}

// checkSaved verifies that reading the saved adapter back gives lo again.
func checkSaved(c *PEFTConfig, mt *matcher, name string, lo *model.LoRA) error {
	sel, err := mt.selects(name)
	if err != nil {
		return err
	}
	if !sel {
		return fmt.Errorf("%w: the adapter adapts %s, which %s does not select", ErrConfig, name, c.selection())
	}
	r, alpha, err := mt.rankAlpha(name)
	if err != nil {
		return err
	}
	if lo.R != r {
		return fmt.Errorf("%w: %s has rank %d but the config gives %s", ErrConfig, name, lo.R, mt.describe(name))
	}
	if want := c.Scale(r, alpha); math.Abs(float64(want-lo.Scale)) > 1e-6*math.Max(1, math.Abs(float64(want))) {
		return fmt.Errorf("%w: %s has scale %v but lora_alpha %v and rank %d give %v (use_rslora=%v)", ErrConfig, name, lo.Scale, alpha, r, want, c.UseRSLoRA)
	}
	if lo.R <= 0 || len(lo.A) == 0 || len(lo.B) == 0 || len(lo.A)%lo.R != 0 || len(lo.B)%lo.R != 0 {
		return fmt.Errorf("%w: %s: lora_A has %d values and lora_B %d, not multiples of rank %d", ErrWeights, name, len(lo.A), len(lo.B), lo.R)
	}
	if c.UseDoRA && len(lo.Magnitude) != len(lo.B)/lo.R {
		return fmt.Errorf("%w: %s has a DoRA magnitude of %d values, want one per output (%d); use_dora applies to every module", ErrWeights, name, len(lo.Magnitude), len(lo.B)/lo.R)
	}
	return nil
}

// SavePromptTuning writes a's prompt as a PEFT prompt-tuning directory.
// cfg may leave num_virtual_tokens and token_dim zero; they then come from
// a. The directory appears complete or not at all.
func SavePromptTuning(dir string, cfg *PEFTConfig, a *model.Adapter) error {
	if err := savePrompt(dir, cfg, a); err != nil {
		return fmt.Errorf("adapters: save %s: %w", dir, err)
	}
	return nil
}

func savePrompt(dir string, cfg *PEFTConfig, a *model.Adapter) error {
	if a == nil || a.NumVirtual <= 0 || len(a.Prompt) == 0 || len(a.Prompt)%a.NumVirtual != 0 {
		return fmt.Errorf("%w: the adapter has no prompt of whole rows", ErrWeights)
	}
	if len(a.LoRA) > 0 {
		return fmt.Errorf("%w: a PEFT directory holds one method; save the LoRA part with SaveLoRA separately", ErrConfig)
	}
	c := *cfg
	c.PeftType = TypePromptTuning
	if c.TaskType == "" {
		c.TaskType = TaskCausalLM
	}
	c.InferenceMode = true
	dim := len(a.Prompt) / a.NumVirtual
	if c.NumVirtualTokens == 0 {
		c.NumVirtualTokens = a.NumVirtual
	}
	if c.TokenDim == 0 {
		c.TokenDim = dim
	}
	if c.NumTransformerSubmodules == 0 {
		c.NumTransformerSubmodules = 1
	}
	if err := c.checkPromptTuning(); err != nil {
		return err
	}
	if c.NumVirtualTokens != a.NumVirtual || c.TokenDim != dim {
		return fmt.Errorf("%w: config says %d virtual tokens of %d values but the adapter has %d of %d", ErrConfig, c.NumVirtualTokens, c.TokenDim, a.NumVirtual, dim)
	}
	if i := nonFinite(a.Prompt); i >= 0 {
		return fmt.Errorf("%w: prompt value %d is %v", ErrWeights, i, a.Prompt[i])
	}
	t := safetensors.Tensor{Name: promptKey, DType: safetensors.F32, Shape: []int{a.NumVirtual, dim}}
	return writeAdapter(dir, &c, []safetensors.Tensor{t}, map[string][]float32{promptKey: a.Prompt})
}

// writeAdapter writes the config and F32 weights into a temporary directory
// beside dir, syncs them and renames the directory into place, so a reader
// never sees a half-written adapter.
func writeAdapter(dir string, c *PEFTConfig, tensors []safetensors.Tensor, data map[string][]float32) (err error) {
	js, err := c.MarshalJSON()
	if err != nil {
		return err
	}
	dir = filepath.Clean(dir)
	if entries, err := os.ReadDir(dir); err == nil && len(entries) > 0 {
		return fmt.Errorf("%w: %s is not empty; remove it or choose another directory", ErrExists, dir)
	} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	parent := filepath.Dir(dir)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp(parent, "."+filepath.Base(dir)+".tmp-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			os.RemoveAll(tmp)
		}
	}()
	if err := os.Chmod(tmp, 0o755); err != nil {
		return err
	}
	if err := writeFileSync(filepath.Join(tmp, ConfigFile), append(js, '\n')); err != nil {
		return err
	}
	wpath := filepath.Join(tmp, WeightsFile)
	err = safetensors.WriteStream(wpath, tensors, safetensorsMeta, func(t safetensors.Tensor, w io.Writer) error {
		return writeF32(w, data[t.Name])
	})
	if err != nil {
		return err
	}
	if err := os.Chmod(wpath, 0o644); err != nil {
		return err
	}
	if err := SyncDir(tmp); err != nil {
		return err
	}
	// rename replaces an empty directory at dir, and fails on a non-empty
	// one, so a racing writer cannot be overwritten.
	if err := os.Rename(tmp, dir); err != nil {
		return err
	}
	return SyncDir(parent)
}

// writeF32 writes v little-endian through a small reused buffer.
func writeF32(w io.Writer, v []float32) error {
	var buf [4096]byte
	for len(v) > 0 {
		n := min(len(v), len(buf)/4)
		for i, x := range v[:n] {
			binary.LittleEndian.PutUint32(buf[4*i:], math.Float32bits(x))
		}
		if _, err := w.Write(buf[:4*n]); err != nil {
			return err
		}
		v = v[n:]
	}
	return nil
}

// writeFileSync writes a file and syncs it to disk before returning.
func writeFileSync(path string, b []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// SyncDir makes a directory's entries durable, so a rename into or out of it
// survives a crash.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, os.ErrInvalid) {
		return err
	}
	return nil
}
