package sched

import (
	"errors"

	"github.com/loraplex/loraplex/inference/model"
	"github.com/loraplex/loraplex/inference/sample"
)

// Sentinel errors. Submit's errors wrap ErrQueueFull, ErrTooLong, ErrInvalid
// or ErrClosed; a request cancelled by shutdown ends with ErrClosed.
var (
	// ErrQueueFull means too many requests are waiting; retry later (the
	// server answers 429 with Retry-After).
	ErrQueueFull = errors.New("sched: too many requests waiting")
	// ErrTooLong means prompt plus max_tokens does not fit the context or
	// the KV cache; shorten the prompt or lower max_tokens.
	ErrTooLong = errors.New("sched: request exceeds the context length")
	// ErrInvalid means the request itself is malformed.
	ErrInvalid = errors.New("sched: invalid request")
	// ErrClosed means the scheduler is shutting down.
	ErrClosed = errors.New("sched: scheduler is closed")
	// ErrConfig means a Config field is out of range.
	ErrConfig = errors.New("sched: invalid config")
)

// Finish reasons carried by a request's last Event.
const (
	FinishStop      = "stop"      // EOS, a stop id or a stop string
	FinishLength    = "length"    // max tokens or the context limit
	FinishCancelled = "cancelled" // the request's context ended, or shutdown
	FinishError     = "error"     // the forward pass failed; see Event.Err
)

// MaxTopLogprobs is the most alternatives a request may ask for per token
// (OpenAI allows 20).
const MaxTopLogprobs = 20

// Request is one generation. The scheduler owns it from Submit on and does
// not modify it.
type Request struct {
	Prompt  []int32        // token ids, BOS included where the model wants it
	Adapter *model.Adapter // nil = base model

	// Release is called exactly once when the scheduler is done with the
	// request, however it ends, including when Submit returns an error.
	// The caller releases the adapter lease here.
	Release func()

	Sampling  sample.Params
	MaxTokens int     // tokens to generate; 0 = up to the context limit
	StopIDs   []int32 // token ids that end generation besides EOS
	Stop      []string
	IgnoreEOS bool

	// Logprobs asks for each generated token's log-probability and that
	// many most likely alternatives (0..20); -1 asks for none.
	Logprobs int
	// PromptLogprobs asks for the log-probability of every prompt token
	// given the ones before it (OpenAI completions echo with logprobs).
	PromptLogprobs bool
	// ScoreOnly runs the prompt and generates nothing (echo with
	// max_tokens 0): the request ends with FinishLength after the prompt,
	// and its only event carries the prompt logprobs if asked.
	ScoreOnly bool
}

// TokenLogprob is a token and its log-probability.
type TokenLogprob = sample.TokenLogprob

// Usage counts a request's tokens, as in OpenAI responses.
type Usage struct {
	PromptTokens, CompletionTokens, TotalTokens int
}

// PromptToken is one prompt token's log-probability given the tokens (and
// prompt-tuning prefix) before it. The first prompt token has none unless an
// adapter's virtual tokens precede it.
type PromptToken struct {
	Token      int32
	HasLogprob bool
	Logprob    float32
	Top        []TokenLogprob // most likely alternatives, Request.Logprobs of them
}

// Event is one step of a request's output. Every generated token yields one
// event in order; the last event has Finish set and carries Usage, and the
// channel is closed after it.
type Event struct {
	Token int32 // the generated token; -1 on the final event, which carries none
	// Text is output text that became final with this event: a token's
	// text can be held back while it might start a stop string, and text
	// that completes one is never emitted.
	Text    string
	Logprob float32        // Token's log-probability (raw model distribution), if asked
	Top     []TokenLogprob // the most likely alternatives at this position, if asked

	// Prompt holds the prompt log-probabilities on the first event of a
	// request that asked for them.
	Prompt []PromptToken

	Finish string // "" until the last event, then a Finish constant
	Err    error  // why a request failed or was cut off
	Usage  Usage  // on the last event
}
