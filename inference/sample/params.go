package sample

import (
	"errors"
	"fmt"
	"math"
)

// ErrInvalid is wrapped by every parameter validation error.
var ErrInvalid = errors.New("invalid sampling parameters")

// Params selects how tokens are drawn. The zero value is greedy decoding
// with no penalties; a zero TopP, TopK, MinP or RepetitionPenalty means
// "off", so callers only set what a request asked for.
type Params struct {
	// Temperature divides the logits before sampling; 0 means greedy
	// (argmax, ties to the lowest id).
	Temperature float32
	// TopP keeps the smallest set of most likely tokens whose probability
	// mass reaches TopP (nucleus sampling); 0 or 1 keeps everything.
	TopP float32
	// MinP drops tokens less likely than MinP times the most likely one.
	MinP float32
	// TopK keeps only the K most likely tokens; 0 keeps everything.
	TopK int
	// Seed makes sampling reproducible; nil draws a random seed.
	Seed *int64
	// PresencePenalty and FrequencyPenalty follow OpenAI: over the tokens
	// generated so far, logit[t] -= presence·[count(t)>0] + frequency·count(t).
	PresencePenalty, FrequencyPenalty float32
	// RepetitionPenalty follows Hugging Face: over prompt and generated
	// tokens, positive logits are divided by it and negative ones multiplied.
	// 0 or 1 is off.
	RepetitionPenalty float32
	// LogitBias is added to the logits of the given token ids (OpenAI
	// logit_bias, -100..100).
	LogitBias map[int32]float32
}

// Greedy reports whether p always picks the most likely token.
func (p *Params) Greedy() bool { return p.Temperature <= 0 }

// Validate checks every field against its documented range. vocab, when
// positive, bounds the token ids of LogitBias.
func (p *Params) Validate(vocab int) error {
	check := func(name string, v, lo, hi float32) error {
		if math.IsNaN(float64(v)) || v < lo || v > hi {
			return fmt.Errorf("%w: %s = %v, want a value in [%v, %v]", ErrInvalid, name, v, lo, hi)
		}
		return nil
	}
	for _, c := range []struct {
		name      string
		v, lo, hi float32
	}{
		{"temperature", p.Temperature, 0, math.MaxFloat32},
		{"top_p", p.TopP, 0, 1},
		{"min_p", p.MinP, 0, 1},
		{"presence_penalty", p.PresencePenalty, -2, 2},
		{"frequency_penalty", p.FrequencyPenalty, -2, 2},
		{"repetition_penalty", p.RepetitionPenalty, 0, math.MaxFloat32},
	} {
		if err := check(c.name, c.v, c.lo, c.hi); err != nil {
			return err
		}
	}
	if p.TopK < 0 {
		return fmt.Errorf("%w: top_k = %d, want 0 (off) or a positive count", ErrInvalid, p.TopK)
	}
	for id, b := range p.LogitBias {
		if id < 0 || (vocab > 0 && int(id) >= vocab) {
			return fmt.Errorf("%w: logit_bias token id %d is outside the vocabulary [0, %d)", ErrInvalid, id, vocab)
		}
		if err := check(fmt.Sprintf("logit_bias[%d]", id), b, -100, 100); err != nil {
			return err
		}
	}
	return nil
}
