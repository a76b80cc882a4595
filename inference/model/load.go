package model

import (
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/loraplex/loraplex/inference/config"
	"github.com/loraplex/loraplex/inference/safetensors"
	"github.com/loraplex/loraplex/quant"
	"github.com/loraplex/loraplex/quant/par"
)

// LoadOptions controls how Load builds the weights.
type LoadOptions struct {
	// Quant is "nf4" (the default when empty) to quantize every decoder
	// linear weight to bitsandbytes NF4, "none" to keep them as stored, or
	// "auto" to quantize 16-bit checkpoints and keep float32 ones as stored
	// (a float32 checkpoint is a deliberate choice of precision, such as a
	// reference model). Checkpoints that are already NF4 load as NF4 always.
	Quant string

	Pool *par.Pool // quantizes tensors in parallel; nil means par.Serial

	// Int8 lets NF4 products use int8 activations and integer dot products
	// (AVX512-VNNI): about twice the decode and prefill speed, at about 1%
	// relative RMS error against the exact bitsandbytes product (quant's
	// q8.go documents and tests the bound). Off by default: the exact path
	// matches PyTorch references to 1e-5.
	Int8 bool

	// QuantHead is "keep" (the default when empty) to keep the lm_head in
	// its stored precision, as bitsandbytes does, or "nf4" to quantize a
	// copy of it to NF4: a quarter of the bytes a bf16 head streams per
	// decoded token (at TinyLlama's shape 34 MB instead of 131 MB of ~640),
	// with logits moved by about 10% of their RMS (NF4's error per weight;
	// TestQuantHead checks the bound). With tied embeddings the lookup keeps
	// the stored matrix. Int8 applies to an NF4 head too.
	QuantHead string

	// Progress, when set, is called after each tensor with how many of the
	// total are done. Calls are serialized.
	Progress func(done, total int)
}

// Validate reports an unknown Quant.
func (o LoadOptions) Validate() error {
	if !slices.Contains([]string{"", "nf4", "none", "auto"}, o.Quant) {
		return fmt.Errorf("model: unknown quantization %q: use \"nf4\", \"none\" or \"auto\"", o.Quant)
	}
	if !slices.Contains([]string{"", "keep", "nf4"}, o.QuantHead) {
		return fmt.Errorf("model: unknown lm_head quantization %q: use \"keep\" or \"nf4\"", o.QuantHead)
	}
	return nil
}

const bnbStateSuffix = ".quant_state.bitsandbytes__nf4"

// Load reads a Hugging Face Llama-family model directory (config.json plus
// model.safetensors or its shards). Embeddings, an untied lm_head and norms
// keep their stored precision (F32, or BF16/F16 used in place from the memory
// map); decoder linear weights become NF4 unless opt.Quant is "none", and
// the lm_head becomes an NF4 copy when opt.QuantHead is "nf4".
func Load(dir string, opt LoadOptions) (*Model, error) {
	if err := opt.Validate(); err != nil {
		return nil, err
	}
	cfg, err := config.Load(dir)
	if err != nil {
		return nil, fmt.Errorf("model: %w", err)
	}
	f, err := safetensors.OpenDir(dir)
	if err != nil {
		return nil, fmt.Errorf("model: %w", err)
	}
	m := &Model{Cfg: cfg, Layers: make([]Layer, cfg.Layers), invFreq: cfg.InvFreq(), file: f}
	ld := &loader{f: f, nf4: opt.Quant != "none", auto: opt.Quant == "auto"}

	var jobs []func() error
	dense := func(dst *quant.Matrix, name string, rows, cols int) {
		jobs = append(jobs, func() (err error) { *dst, err = ld.dense(name, rows, cols); return err })
	}
	vector := func(dst *[]float32, name string, n int) {
		jobs = append(jobs, func() (err error) { *dst, err = ld.vector(name, n); return err })
	}
	dense(&m.Embed, "model.embed_tokens.weight", cfg.Vocab, cfg.Hidden)
	if !cfg.TieEmbeddings {
		dense(&m.Head, "lm_head.weight", cfg.Vocab, cfg.Hidden)
	}
	vector(&m.Norm, "model.norm.weight", cfg.Hidden)
	for i := range m.Layers {
		l := &m.Layers[i]
		vector(&l.InNorm, fmt.Sprintf("model.layers.%d.input_layernorm.weight", i), cfg.Hidden)
		vector(&l.PostNorm, fmt.Sprintf("model.layers.%d.post_attention_layernorm.weight", i), cfg.Hidden)
		for mod := range NumModules {
			name := TensorName(i, mod)
			out, in := ModuleShape(cfg, mod)
			jobs = append(jobs, func() (err error) { l.W[mod], err = ld.linear(name, out, in); return err })
			if cfg.QKVBias && mod <= V {
				vector(&l.Bias[mod], name[:len(name)-len("weight")]+"bias", out)
			}
		}
	}

	p := opt.Pool
	if p == nil {
		p = par.Serial
	}
	errs := make([]error, len(jobs))
	var mu sync.Mutex
	done := 0
	p.For(len(jobs), 1, func(lo, hi int) {
		for j := lo; j < hi; j++ {
			errs[j] = jobs[j]()
			if opt.Progress != nil {
				mu.Lock()
				done++
				opt.Progress(done, len(jobs))
				mu.Unlock()
			}
		}
	})
	if err := errors.Join(errs...); err != nil {
		f.Close()
		return nil, fmt.Errorf("model: loading %s: %w", dir, err)
	}
	if cfg.TieEmbeddings {
		m.Head = m.Embed
	}
	if opt.QuantHead == "nf4" {
		m.Head = quantizeHead(m.Head)
	}
	if opt.Int8 {
		for i := range m.Layers {
			for _, w := range m.Layers[i].W {
				setInt8(w)
			}
		}
		setInt8(m.Head)
	}
	if err := m.check(); err != nil {
		f.Close()
		return nil, err
	}
	return m, nil
}

// setInt8 opts w into the int8 products if it is NF4.
func setInt8(w quant.Matrix) {
	if q, ok := w.(*quant.NF4); ok {
		q.SetInt8Decode(true)
		q.SetInt8Prefill(true)
	}
}

// quantizeHead returns an NF4 copy of the lm_head h, leaving h (which may
// also be the embedding table) as it is.
func quantizeHead(h quant.Matrix) quant.Matrix {
	if _, ok := h.(*quant.NF4); ok {
		return h
	}
	rows, cols := h.Rows(), h.Cols()
	w := make([]float32, rows*cols)
	for r := range rows {
		h.Row(w[r*cols:(r+1)*cols], r)
	}
	return quant.QuantizeNF4(rows, cols, w)
}

type loader struct {
	f    *safetensors.File
	nf4  bool
	auto bool // quantize only weights stored in 16 bits
}

func (ld *loader) get(name string, shape ...int) (safetensors.Tensor, error) {
	t, err := ld.f.Get(name)
	if err != nil {
		return t, fmt.Errorf("%w: tensor %q is missing (%v)", ErrBadCheckpoint, name, err)
	}
	if !slices.Equal(t.Shape, shape) {
		return t, fmt.Errorf("%w: tensor %q has shape %v, want %v", ErrBadCheckpoint, name, t.Shape, shape)
	}
	return t, nil
}

func (ld *loader) vector(name string, n int) ([]float32, error) {
	t, err := ld.get(name, n)
	if err != nil {
		return nil, err
	}
	v, err := t.Float32()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadCheckpoint, err)
	}
	return v, nil
}

// dense keeps the stored precision; 16-bit weights stay in the memory map.
func (ld *loader) dense(name string, rows, cols int) (quant.Matrix, error) {
	t, err := ld.get(name, rows, cols)
	if err != nil {
		return nil, err
	}
	switch t.DType {
	case safetensors.BF16, safetensors.F16:
		u, err := t.Uint16()
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrBadCheckpoint, err)
		}
		if t.DType == safetensors.BF16 {
			return quant.NewBF16(rows, cols, u), nil
		}
		return quant.NewF16(rows, cols, u), nil
	}
	w, err := t.Float32()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadCheckpoint, err)
	}
	return quant.NewF32(rows, cols, w), nil
}

// linear loads a decoder projection: bitsandbytes NF4 as is, otherwise
// quantized to NF4 or kept dense.
func (ld *loader) linear(name string, rows, cols int) (quant.Matrix, error) {
	if ld.f.Has(name + bnbStateSuffix) {
		return ld.bnb(name, rows, cols)
	}
	if !ld.nf4 {
		return ld.dense(name, rows, cols)
	}
	t, err := ld.get(name, rows, cols)
	if err != nil {
		return nil, err
	}
	if ld.auto && t.DType == safetensors.F32 {
		return ld.dense(name, rows, cols)
	}
	w, err := t.Float32()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadCheckpoint, err)
	}
	q := quant.QuantizeNF4(rows, cols, w)
	q.SetSourceDType(t.DType.TorchName())
	return q, nil
}

func (ld *loader) bnb(name string, rows, cols int) (quant.Matrix, error) {
	var bt quant.BnbTensors
	raw := func(suffix string) ([]byte, error) {
		t, err := ld.f.Get(name + suffix)
		if err != nil {
			return nil, fmt.Errorf("%w: bitsandbytes tensor %q is missing (%v)", ErrBadCheckpoint, name+suffix, err)
		}
		return t.Data, nil
	}
	floats := func(suffix string) ([]float32, error) {
		t, err := ld.f.Get(name + suffix)
		if err != nil {
			return nil, fmt.Errorf("%w: bitsandbytes tensor %q is missing (%v)", ErrBadCheckpoint, name+suffix, err)
		}
		v, err := t.Float32()
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrBadCheckpoint, err)
		}
		return v, nil
	}
	var err error
	if bt.Weight, err = raw(""); err != nil {
		return nil, err
	}
	if bt.QuantState, err = raw(bnbStateSuffix); err != nil {
		return nil, err
	}
	if bt.QuantMap, err = floats(".quant_map"); err != nil {
		return nil, err
	}
	absmax, err := ld.f.Get(name + ".absmax")
	if err != nil {
		return nil, fmt.Errorf("%w: bitsandbytes tensor %q is missing (%v)", ErrBadCheckpoint, name+".absmax", err)
	}
	if absmax.DType == safetensors.U8 {
		bt.Absmax = absmax.Data
		if bt.NestedAbsmax, err = floats(".nested_absmax"); err != nil {
			return nil, err
		}
		if bt.NestedQuantMap, err = floats(".nested_quant_map"); err != nil {
			return nil, err
		}
	} else if bt.AbsmaxF32, err = absmax.Float32(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadCheckpoint, err)
	}
	q, err := quant.NF4FromBnb(rows, cols, bt)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrBadCheckpoint, name, err)
	}
	return q, nil
}
