package synth

import (
	"fmt"
	"strings"
)

// Shape is the architecture of a synthetic model.
type Shape struct {
	Name         string
	Hidden       int
	Intermediate int
	Layers       int
	Heads        int
	KVHeads      int
	Vocab        int
	MaxPos       int
	Tied         bool // lm_head reuses the embedding table
}

// The shapes used across tests and benchmarks (see the performance anchors).
var (
	// Tiny is small enough for unit tests and the demo model.
	Tiny = Shape{Name: "tiny", Hidden: 64, Intermediate: 128, Layers: 2, Heads: 4, KVHeads: 2, Vocab: 512, MaxPos: 512}
	// S is SmolLM2-135M-like: ~125 M parameters, tied embeddings.
	S = Shape{Name: "S", Hidden: 576, Intermediate: 1536, Layers: 30, Heads: 9, KVHeads: 3, Vocab: 32000, MaxPos: 2048, Tied: true}
	// M is TinyLlama-1.1B-like: 1.10 B parameters, untied.
	M = Shape{Name: "M", Hidden: 2048, Intermediate: 5632, Layers: 22, Heads: 32, KVHeads: 4, Vocab: 32000, MaxPos: 2048}
)

// ShapeByName returns Tiny, S or M by name (case-insensitive).
func ShapeByName(name string) (Shape, error) {
	for _, s := range []Shape{Tiny, S, M} {
		if strings.EqualFold(s.Name, name) {
			return s, nil
		}
	}
	return Shape{}, fmt.Errorf("synth: unknown shape %q (want tiny, S or M): %w", name, ErrInvalid)
}

// Validate checks that the shape describes a model the engine can run.
func (s Shape) Validate() error {
	switch {
	case s.Hidden <= 0 || s.Intermediate <= 0 || s.Layers <= 0 || s.Heads <= 0 || s.KVHeads <= 0 || s.MaxPos <= 0:
		return fmt.Errorf("synth: shape %q: sizes must be positive: %w", s.Name, ErrInvalid)
	case s.Hidden%s.Heads != 0 || (s.Hidden/s.Heads)%2 != 0:
		return fmt.Errorf("synth: shape %q: hidden %d must split into heads of even size: %w", s.Name, s.Hidden, ErrInvalid)
	case s.Heads%s.KVHeads != 0:
		return fmt.Errorf("synth: shape %q: kv heads %d must divide heads %d: %w", s.Name, s.KVHeads, s.Heads, ErrInvalid)
	case s.Vocab < minVocab:
		return fmt.Errorf("synth: shape %q: vocab %d is below the %d byte and special tokens: %w", s.Name, s.Vocab, minVocab, ErrInvalid)
	}
	return nil
}

// Params is the number of weights.
func (s Shape) Params() int64 {
	hd := s.Hidden / s.Heads
	h, f, kv := int64(s.Hidden), int64(s.Intermediate), int64(s.KVHeads*hd)
	layer := 2*h + h*h + 2*kv*h + h*h + 3*h*f
	n := int64(s.Layers)*layer + h + int64(s.Vocab)*h
	if !s.Tied {
		n += int64(s.Vocab) * h
	}
	return n
}
