package model

import (
	"errors"
	"fmt"

	"github.com/loraplex/loraplex/inference/config"
	"github.com/loraplex/loraplex/inference/safetensors"
	"github.com/loraplex/loraplex/quant"
)

// ErrBadCheckpoint means a model directory's weights do not match its
// config.json: a tensor is missing or has the wrong shape or type.
var ErrBadCheckpoint = errors.New("model: checkpoint does not match its config")

// ErrBadInput means a forward step was given something the model cannot
// process, such as a token id outside the vocabulary.
var ErrBadInput = errors.New("model: bad input")

// Layer is one decoder layer. W[m] is the [out, in] weight of module m; Bias
// is nil except for Qwen2's q, k and v projections.
type Layer struct {
	InNorm, PostNorm []float32
	W                [NumModules]quant.Matrix
	Bias             [NumModules][]float32
}

// Model is a loaded base model. It is read-only once built, so any number of
// Workspaces may run Forward on it concurrently.
type Model struct {
	Cfg    *config.Config
	Embed  quant.Matrix // vocab × hidden
	Layers []Layer
	Norm   []float32
	Head   quant.Matrix // vocab × hidden; the same Matrix as Embed when tied

	invFreq []float64
	file    *safetensors.File // keeps mmapped weights alive
}

// New assembles a model from weights already in memory (tests, benchmarks and
// synthetic models use it; Load builds on it). It checks every shape.
func New(cfg *config.Config, embed quant.Matrix, layers []Layer, norm []float32, head quant.Matrix) (*Model, error) {
	m := &Model{Cfg: cfg, Embed: embed, Layers: layers, Norm: norm, Head: head, invFreq: cfg.InvFreq()}
	return m, m.check()
}

// Close releases the mapped checkpoint file. The model must not be used after.
func (m *Model) Close() error {
	if m.file == nil {
		return nil
	}
	err := m.file.Close()
	m.file = nil
	return err
}

// Bytes is the resident size of the model's weights.
func (m *Model) Bytes() int64 {
	n := m.Embed.Bytes() + 4*int64(len(m.Norm))
	if m.Head != m.Embed {
		n += m.Head.Bytes()
	}
	for _, l := range m.Layers {
		n += 4 * int64(len(l.InNorm)+len(l.PostNorm))
		for mod, w := range l.W {
			n += w.Bytes() + 4*int64(len(l.Bias[mod]))
		}
	}
	return n
}

// ModuleShape is the [out, in] shape of module mod under cfg.
func ModuleShape(cfg *config.Config, mod Module) (out, in int) {
	q, kv := cfg.Heads*cfg.HeadDim, cfg.KVHeads*cfg.HeadDim
	switch mod {
	case Q:
		return q, cfg.Hidden
	case K, V:
		return kv, cfg.Hidden
	case O:
		return cfg.Hidden, q
	case Gate, Up:
		return cfg.Intermediate, cfg.Hidden
	case Down:
		return cfg.Hidden, cfg.Intermediate
	}
	panic(fmt.Sprintf("model: no module %d", mod))
}

// TensorName is the Hugging Face name of layer i's weight for mod, e.g.
// "model.layers.3.self_attn.q_proj.weight".
func TensorName(i int, mod Module) string {
	part := "self_attn"
	if mod >= Gate {
		part = "mlp"
	}
	return fmt.Sprintf("model.layers.%d.%s.%s.weight", i, part, mod)
}

func (m *Model) check() error {
	c := m.Cfg
	if c.Heads <= 0 || c.KVHeads <= 0 || c.Heads%c.KVHeads != 0 || c.HeadDim%2 != 0 {
		return fmt.Errorf("%w: %d heads, %d KV heads, head dim %d", ErrBadCheckpoint, c.Heads, c.KVHeads, c.HeadDim)
	}
	if err := shape("embeddings", m.Embed, c.Vocab, c.Hidden); err != nil {
		return err
	}
	if err := shape("lm_head", m.Head, c.Vocab, c.Hidden); err != nil {
		return err
	}
	if len(m.Norm) != c.Hidden {
		return fmt.Errorf("%w: final norm has %d weights, want %d", ErrBadCheckpoint, len(m.Norm), c.Hidden)
	}
	if len(m.Layers) != c.Layers {
		return fmt.Errorf("%w: %d layers, config says %d", ErrBadCheckpoint, len(m.Layers), c.Layers)
	}
	for i, l := range m.Layers {
		if len(l.InNorm) != c.Hidden || len(l.PostNorm) != c.Hidden {
			return fmt.Errorf("%w: layer %d norms have %d and %d weights, want %d", ErrBadCheckpoint, i, len(l.InNorm), len(l.PostNorm), c.Hidden)
		}
		for mod := range NumModules {
			out, in := ModuleShape(c, mod)
			if err := shape(TensorName(i, mod), l.W[mod], out, in); err != nil {
				return err
			}
			if b := l.Bias[mod]; b != nil && len(b) != out {
				return fmt.Errorf("%w: layer %d %s bias has %d values, want %d", ErrBadCheckpoint, i, mod, len(b), out)
			}
		}
	}
	return nil
}

func shape(name string, w quant.Matrix, rows, cols int) error {
	if w == nil {
		return fmt.Errorf("%w: %s is missing", ErrBadCheckpoint, name)
	}
	if w.Rows() != rows || w.Cols() != cols {
		return fmt.Errorf("%w: %s is [%d %d], want [%d %d]", ErrBadCheckpoint, name, w.Rows(), w.Cols(), rows, cols)
	}
	return nil
}
