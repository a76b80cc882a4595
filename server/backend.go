package server

import (
	"context"
	"errors"
	"time"
)

// Errors that Engine and Adapters implementations wrap so the server can map
// them to HTTP statuses with errors.Is; their messages reach the client.
var (
	// ErrModelNotFound: no adapter of that name (404 model_not_found).
	ErrModelNotFound = errors.New("model not found")
	// ErrQueueFull: the engine cannot take more work now (429, Retry-After).
	ErrQueueFull = errors.New("server is at capacity")
	// ErrTooLong: the prompt or prompt plus max_tokens exceeds the context (400).
	ErrTooLong = errors.New("request exceeds the model's context length")
	// ErrTemplate: the chat template failed on these messages (400).
	ErrTemplate = errors.New("chat template error")
	// ErrInvalidName: an adapter name the store does not accept (400).
	ErrInvalidName = errors.New("invalid adapter name")
	// ErrBadRequest: the engine rejected the request's parameters (400).
	ErrBadRequest = errors.New("invalid request")
	// ErrAdapterExists: a load under a name already in the store (400, as vLLM).
	ErrAdapterExists = errors.New("adapter already exists")
	// ErrInvalidAdapter: the directory is not a usable adapter for this base (400).
	ErrInvalidAdapter = errors.New("invalid adapter")
	// ErrAdapterBusy: the adapter cannot be removed now (409).
	ErrAdapterBusy = errors.New("adapter is in use")
	// ErrUnavailable: the engine is shutting down or stopped (503).
	ErrUnavailable = errors.New("server is unavailable")
)

// Sampling mirrors the engine's sampling parameters.
type Sampling struct {
	Temperature, TopP, MinP float32
	TopK                    int
	Seed                    *int64
	PresencePenalty         float32
	FrequencyPenalty        float32
	RepetitionPenalty       float32
	LogitBias               map[int32]float32
}

// GenRequest is one sequence to generate; a request with n choices submits n.
type GenRequest struct {
	Prompt []int32
	// Adapter is the lease of the request's adapter, nil for the base. The
	// engine glue takes the adapter's weights from it; it must not release
	// it (Release below does that).
	Adapter Lease
	// Release is called exactly once when the engine is done with the
	// sequence (finished, cancelled or rejected).
	Release  func()
	Sampling Sampling
	// MaxTokens is the number of tokens to generate, always set by the
	// server; 0 means score the prompt only (echo with max_tokens 0).
	MaxTokens      int
	Stop           []string
	IgnoreEOS      bool
	Logprobs       int  // -1: none; 0..20: sampled token plus that many alternatives
	PromptLogprobs bool // report logprobs of the prompt tokens (echo)
}

// TokenLogprob is a token id with its log-probability.
type TokenLogprob struct {
	Token   int32
	Logprob float32
}

// PromptToken is one prompt position's logprob given the positions before
// it; the first has none unless prompt-tuning positions precede it.
type PromptToken struct {
	TokenLogprob
	HasLogprob bool
	Top        []TokenLogprob
}

// Event is one step of a sequence. The channel from Submit delivers events
// until one with Finish set, then is closed.
type Event struct {
	Token   int32 // -1 when the event carries no token
	Text    string
	Logprob float32
	Top     []TokenLogprob
	// Prompt is set on the first event when PromptLogprobs was asked for.
	Prompt []PromptToken
	Finish string // "" | "stop" | "length" | "cancelled" | "error"
	Err    error
}

// EngineStats is a snapshot of the scheduler.
type EngineStats struct {
	Waiting, Running int
	KVCacheUsage     float64 // 0..1
	// MaxAdapters is how many distinct adapters one batch may hold.
	MaxAdapters int
}

// Engine is the inference side: scheduler, tokenizer and chat template of
// the one resident base model.
type Engine interface {
	Submit(ctx context.Context, r *GenRequest) (<-chan Event, error)
	Stats() EngineStats
	// Tokenize encodes text; addSpecial adds BOS etc. as the model expects.
	Tokenize(text string, addSpecial bool) []int32
	Detokenize(ids []int32) string
	// TokenBytes is the raw bytes one token stands for.
	TokenBytes(id int32) []byte
	VocabSize() int
	MaxModelLen() int
	// RenderChat applies the chat template; failures wrap ErrTemplate.
	RenderChat(msgs []ChatMessage, addGenerationPrompt bool) (string, error)
}

// ChatMessage is a message after content parts were flattened to text.
type ChatMessage struct {
	Role, Content string
}

// Lease keeps an adapter resident while a request uses it. The server only
// counts and releases leases; the glue behind Engine knows what is inside,
// which keeps this package free of the engine's types.
type Lease interface {
	// Virtual is the number of prompt-tuning positions the adapter puts in
	// front of the prompt (they count against the context).
	Virtual() int
	Release()
}

// AdapterInfo describes one adapter of the store.
type AdapterInfo struct {
	Name    string
	Type    string // "lora" | "prompt_tuning"
	Path    string
	State   string // "cold" | "loaded" | "in use"
	Bytes   int64
	Rank    int
	Created time.Time
	// Requests and Loads count acquisitions and loads from disk.
	Requests, Loads int64
}

// AdapterStats are the registry's counters and gauges.
type AdapterStats struct {
	Hits, Misses, Loads, Evictions, LoadErrors int64
	Resident, Total                            int
	ResidentBytes, BudgetBytes                 int64
}

// Adapters is the adapter registry: the store of named adapters and the
// resident LRU that leases them to requests.
type Adapters interface {
	// Acquire leases the named adapter, loading it if cold; unknown names
	// wrap ErrModelNotFound.
	Acquire(ctx context.Context, name string) (Lease, error)
	// List is every adapter in the store, resident or not.
	List() []AdapterInfo
	// Import copies or links the PEFT directory dir into the store under
	// name; replace allows overwriting an existing name.
	Import(ctx context.Context, name, dir string, replace bool) error
	// Remove deletes name from the store; unknown names wrap ErrModelNotFound.
	Remove(name string) error
	Stats() AdapterStats
}
