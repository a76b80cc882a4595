package dataset

import (
	"errors"
	"fmt"
)

// Tokenizer is the part of the base model's tokenizer the dataset needs.
type Tokenizer interface {
	// Encode tokenises text; addSpecial adds BOS and the like per the
	// tokenizer's config. Special-token text (e.g. "<s>") maps to its id.
	Encode(text string, addSpecial bool) []int32
	// EOS lists the end-of-sequence ids; the first one ends completions.
	EOS() []int32
}

// Template renders chat messages exactly as the server does at inference,
// so that the adapter learns the same token sequence it will be served.
type Template interface {
	Render(msgs []Message, addGenerationPrompt bool) (string, error)
}

// Config says how records become token sequences.
type Config struct {
	// MaxTokens is the longest sequence trained on; default 2048.
	MaxTokens int
	// TooLong is "truncate" (default: keep the first MaxTokens tokens) or
	// "reject" (a too-long example is an error).
	TooLong string
	// NoCompletionEOS leaves the EOS token off prompt/completion examples;
	// by default it is appended (and trained) so the adapter learns to stop.
	NoCompletionEOS bool
	// MaxErrors bounds the errors collected before giving up; default 10.
	MaxErrors int
}

// Validate fills defaults and rejects nonsense.
func (c *Config) Validate() error {
	if c.MaxTokens == 0 {
		c.MaxTokens = 2048
	}
	if c.TooLong == "" {
		c.TooLong = "truncate"
	}
	if c.MaxErrors == 0 {
		c.MaxErrors = 10
	}
	if c.MaxTokens < 2 {
		return fmt.Errorf("%w: MaxTokens must be at least 2, got %d", ErrInvalid, c.MaxTokens)
	}
	if c.TooLong != "truncate" && c.TooLong != "reject" {
		return fmt.Errorf("%w: TooLong must be \"truncate\" or \"reject\", got %q", ErrInvalid, c.TooLong)
	}
	if c.MaxErrors < 1 {
		return fmt.Errorf("%w: MaxErrors must be positive", ErrInvalid)
	}
	return nil
}

// Example is one tokenised training sequence. Train[t] says token t is a
// label: the loss includes predicting Tokens[t] from the tokens before it.
// Train[0] is always false.
type Example struct {
	Line   int
	Tokens []int32
	Train  []bool
}

// Trainable counts the label tokens.
func (e *Example) Trainable() int {
	n := 0
	for _, b := range e.Train {
		if b {
			n++
		}
	}
	return n
}

// Stats summarises a tokenised dataset.
type Stats struct {
	Examples        int // examples kept
	Tokens          int // tokens over the kept examples
	TrainableTokens int
	Truncated       int // examples cut to MaxTokens
	Dropped         int // examples left with no label token after truncation
}

// Tokenize turns validated records into examples. tmpl may be nil when the
// records are prompt/completion. It fails with ErrNoTrainableTokens when no
// example keeps a label token.
func Tokenize(recs []Record, tok Tokenizer, tmpl Template, cfg Config) ([]Example, Stats, error) {
	if err := cfg.Validate(); err != nil {
		return nil, Stats{}, err
	}
	var (
		out  []Example
		st   Stats
		errs []error
	)
	for _, r := range recs {
		ex, err := tokenizeOne(r, tok, tmpl, &cfg)
		if err == nil && len(ex.Tokens) > cfg.MaxTokens {
			if cfg.TooLong == "reject" {
				err = fmt.Errorf("%w: %d tokens, limit %d; shorten it or allow truncation", ErrTooLong, len(ex.Tokens), cfg.MaxTokens)
			} else {
				ex.Tokens, ex.Train = ex.Tokens[:cfg.MaxTokens], ex.Train[:cfg.MaxTokens]
				st.Truncated++
			}
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("line %d: %w", r.Line, err))
			if len(errs) >= cfg.MaxErrors {
				break
			}
			continue
		}
		n := ex.Trainable()
		if n == 0 {
			st.Dropped++
			continue
		}
		st.Examples++
		st.Tokens += len(ex.Tokens)
		st.TrainableTokens += n
		out = append(out, ex)
	}
	if len(errs) > 0 {
		return nil, st, errors.Join(errs...)
	}
	if st.TrainableTokens == 0 {
		return nil, st, fmt.Errorf("%w: none of the %d examples has an assistant or completion token to learn (check weights and MaxTokens)", ErrNoTrainableTokens, len(recs))
	}
	return out, st, nil
}

func tokenizeOne(r Record, tok Tokenizer, tmpl Template, cfg *Config) (Example, error) {
	switch r.Format {
	case FormatCompletion:
		return tokenizeCompletion(r, tok, cfg), nil
	case FormatChat:
		if tmpl == nil {
			return Example{}, fmt.Errorf("%w: the base model has no chat template; use the prompt/completion format", ErrInvalid)
		}
		return tokenizeChat(r, tok, tmpl)
	}
	return Example{}, fmt.Errorf("%w: record has no format", ErrInvalid)
}

func tokenizeCompletion(r Record, tok Tokenizer, cfg *Config) Example {
	// Tokenising prompt+completion as one text keeps the tokens the model
	// sees at inference; the label span starts where it leaves the prompt's.
	prompt := tok.Encode(r.Prompt, true)
	ids := tok.Encode(r.Prompt+r.Completion, true)
	start := max(commonPrefix(prompt, ids), 1)
	if eos := tok.EOS(); !cfg.NoCompletionEOS && len(eos) > 0 {
		ids = append(ids, eos[0])
	}
	ex := Example{Line: r.Line, Tokens: ids, Train: make([]bool, len(ids))}
	for t := start; t < len(ids); t++ {
		ex.Train[t] = true
	}
	return ex
}

// tokenizeChat renders the conversation once, then prefix by prefix: the
// tokens of an assistant turn are those between the rendering that ends
// with the generation prompt before it and the rendering that ends with it.
// Comparing token prefixes (not text) keeps the labels aligned even when a
// tokenizer merges across a turn boundary.
func tokenizeChat(r Record, tok Tokenizer, tmpl Template) (Example, error) {
	full, err := tmpl.Render(r.Messages, false)
	if err != nil {
		return Example{}, fmt.Errorf("%w: chat template: %v", ErrInvalid, err)
	}
	ids := tok.Encode(full, false)
	ex := Example{Line: r.Line, Tokens: ids, Train: make([]bool, len(ids))}
	for i, m := range r.Messages {
		if m.Role != "assistant" || m.Weight == 0 {
			continue
		}
		before, err := tmpl.Render(r.Messages[:i], true)
		if err != nil {
			return Example{}, fmt.Errorf("%w: chat template: %v", ErrInvalid, err)
		}
		upto, err := tmpl.Render(r.Messages[:i+1], false)
		if err != nil {
			return Example{}, fmt.Errorf("%w: chat template: %v", ErrInvalid, err)
		}
		lo := max(commonPrefix(tok.Encode(before, false), ids), 1)
		hi := commonPrefix(tok.Encode(upto, false), ids)
		for t := lo; t < hi; t++ {
			ex.Train[t] = true
		}
	}
	return ex, nil
}

func commonPrefix(a, b []int32) int {
	n := min(len(a), len(b))
	for i := 0; i < n; i++ {
		if a[i] != b[i] {
			return i
		}
	}
	return n
}
