package openai

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Limits fixed by the OpenAI specification.
const (
	MaxN           = 128
	MaxStop        = 4
	MaxTopLogprobs = 20
	// MaxCompletionLogprobs is vLLM's bound; OpenAI's legacy endpoint says 5,
	// but evaluation harnesses ask for more against local servers.
	MaxCompletionLogprobs = 20
	// DefaultCompletionMaxTokens is the legacy endpoint's documented default.
	DefaultCompletionMaxTokens = 16
)

// StreamOptions is the `stream_options` object.
type StreamOptions struct {
	IncludeUsage bool `json:"include_usage"`
}

// Stop is `stop`: null, one string, or up to four strings.
type Stop []string

// UnmarshalJSON accepts a string or an array of strings.
func (s *Stop) UnmarshalJSON(b []byte) error {
	switch firstByte(b) {
	case 'n':
		*s = nil
		return nil
	case '"':
		var one string
		if err := json.Unmarshal(b, &one); err != nil {
			return invalid("stop", "'stop' must be a string or an array of strings")
		}
		*s = Stop{one}
		return nil
	case '[':
		var many []string
		if err := json.Unmarshal(b, &many); err != nil {
			return invalid("stop", "'stop' must be a string or an array of strings")
		}
		*s = many
		return nil
	}
	return invalid("stop", "'stop' must be a string or an array of strings")
}

// Sampling holds the sampling fields the chat and legacy endpoints share,
// including vLLM's extensions (min_p, top_k, repetition_penalty, ignore_eos).
type Sampling struct {
	Temperature       *float64           `json:"temperature"`
	TopP              *float64           `json:"top_p"`
	N                 *int               `json:"n"`
	Stop              Stop               `json:"stop"`
	Seed              *int64             `json:"seed"`
	PresencePenalty   *float64           `json:"presence_penalty"`
	FrequencyPenalty  *float64           `json:"frequency_penalty"`
	LogitBias         map[string]float64 `json:"logit_bias"`
	MinP              *float64           `json:"min_p"`
	TopK              *int               `json:"top_k"`
	RepetitionPenalty *float64           `json:"repetition_penalty"`
	IgnoreEOS         bool               `json:"ignore_eos"`
	Stream            bool               `json:"stream"`
	StreamOptions     *StreamOptions     `json:"stream_options"`
	// Adapter is our extension: names the adapter explicitly, overriding
	// what `model` implies.
	Adapter string `json:"adapter"`
}

// Choices is n with its default.
func (s *Sampling) Choices() int {
	if s.N == nil {
		return 1
	}
	return *s.N
}

// IncludeUsage reports whether a streamed response ends with a usage chunk.
func (s *Sampling) IncludeUsage() bool {
	return s.Stream && s.StreamOptions != nil && s.StreamOptions.IncludeUsage
}

// Bias returns logit_bias with token ids parsed; keys were checked by validate.
func (s *Sampling) Bias() map[int32]float32 {
	if len(s.LogitBias) == 0 {
		return nil
	}
	m := make(map[int32]float32, len(s.LogitBias))
	for k, v := range s.LogitBias {
		id, _ := strconv.ParseInt(k, 10, 32)
		m[int32(id)] = float32(v)
	}
	return m
}

func (s *Sampling) validate() error {
	if err := inRange("temperature", s.Temperature, 0, 2); err != nil {
		return err
	}
	if s.TopP != nil && !(*s.TopP > 0 && *s.TopP <= 1) {
		return invalid("top_p", "'top_p' must be in (0, 1], got %g", *s.TopP)
	}
	if err := inRange("presence_penalty", s.PresencePenalty, -2, 2); err != nil {
		return err
	}
	if err := inRange("frequency_penalty", s.FrequencyPenalty, -2, 2); err != nil {
		return err
	}
	if err := inRange("min_p", s.MinP, 0, 1); err != nil {
		return err
	}
	if s.RepetitionPenalty != nil && !(*s.RepetitionPenalty > 0 && *s.RepetitionPenalty <= 10) {
		return invalid("repetition_penalty", "'repetition_penalty' must be in (0, 10], got %g", *s.RepetitionPenalty)
	}
	if s.TopK != nil && *s.TopK < -1 {
		return invalid("top_k", "'top_k' must be -1 (disabled), 0 (disabled) or positive, got %d", *s.TopK)
	}
	if s.N != nil && (*s.N < 1 || *s.N > MaxN) {
		return invalid("n", "'n' must be between 1 and %d, got %d", MaxN, *s.N)
	}
	if len(s.Stop) > MaxStop {
		return invalid("stop", "'stop' takes at most %d sequences, got %d", MaxStop, len(s.Stop))
	}
	for k, v := range s.LogitBias {
		id, err := strconv.ParseInt(k, 10, 32)
		if err != nil || id < 0 {
			return invalid("logit_bias", "'logit_bias' keys must be token ids (non-negative integers), got %q", k)
		}
		if v < -100 || v > 100 {
			return invalid("logit_bias", "'logit_bias' values must be between -100 and 100, got %g for token %s", v, k)
		}
	}
	return nil
}

func inRange(param string, v *float64, lo, hi float64) error {
	if v != nil && (math.IsNaN(*v) || *v < lo || *v > hi) {
		return invalid(param, "'%s' must be between %g and %g, got %g", param, lo, hi, *v)
	}
	return nil
}

// Content is a message's `content`: null, a string, or an array of parts of
// which only text parts are accepted. Text parts are joined with newlines,
// as vLLM does.
type Content struct {
	Text string
	Null bool
}

// UnmarshalJSON accepts null, a string, or an array of content parts.
func (c *Content) UnmarshalJSON(b []byte) error {
	switch firstByte(b) {
	case 'n':
		*c = Content{Null: true}
		return nil
	case '"':
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return invalid("content", "'content' must be a string or an array of text parts")
		}
		*c = Content{Text: s}
		return nil
	case '[':
		var parts []struct {
			Type    string  `json:"type"`
			Text    *string `json:"text"`
			Refusal *string `json:"refusal"`
		}
		if err := json.Unmarshal(b, &parts); err != nil {
			return invalid("content", "'content' parts must be objects like {\"type\":\"text\",\"text\":\"...\"}")
		}
		texts := make([]string, 0, len(parts))
		for i, p := range parts {
			switch {
			case p.Type == "text" && p.Text != nil:
				texts = append(texts, *p.Text)
			case p.Type == "refusal" && p.Refusal != nil:
				texts = append(texts, *p.Refusal)
			case p.Type == "text" || p.Type == "refusal":
				return invalid("content", "content part %d of type %q has no text", i, p.Type)
			default:
				return invalid("content", "content part type %q is not supported: this server accepts text only", p.Type)
			}
		}
		*c = Content{Text: strings.Join(texts, "\n")}
		return nil
	}
	return invalid("content", "'content' must be a string or an array of text parts")
}

// Message is one chat message. Fields for tools are accepted and ignored.
type Message struct {
	Role    string  `json:"role"`
	Content Content `json:"content"`
	Name    string  `json:"name"`
}

// ResponseFormat is `response_format`.
type ResponseFormat struct {
	Type       string `json:"type"`
	JSONSchema *struct {
		Name   string          `json:"name"`
		Schema json.RawMessage `json:"schema"`
	} `json:"json_schema"`
}

// ChatRequest is CreateChatCompletionRequest, with the fields we use.
type ChatRequest struct {
	Model               string          `json:"model"`
	Messages            []Message       `json:"messages"`
	MaxTokens           *int            `json:"max_tokens"`
	MaxCompletionTokens *int            `json:"max_completion_tokens"`
	Logprobs            *bool           `json:"logprobs"`
	TopLogprobs         *int            `json:"top_logprobs"`
	ResponseFormat      *ResponseFormat `json:"response_format"`
	Sampling
}

// Limit is max_completion_tokens, else max_tokens, else nil (the context).
func (r *ChatRequest) Limit() *int {
	if r.MaxCompletionTokens != nil {
		return r.MaxCompletionTokens
	}
	return r.MaxTokens
}

// NumLogprobs is -1 when logprobs are off, else the number of alternatives.
func (r *ChatRequest) NumLogprobs() int {
	if r.Logprobs == nil || !*r.Logprobs {
		return -1
	}
	if r.TopLogprobs == nil {
		return 0
	}
	return *r.TopLogprobs
}

// DecodeChatRequest parses and validates a chat completion request body.
func DecodeChatRequest(body []byte) (*ChatRequest, error) {
	var r ChatRequest
	if err := decode(body, &r); err != nil {
		return nil, err
	}
	if err := r.validate(); err != nil {
		return nil, err
	}
	return &r, nil
}

var roles = map[string]bool{"system": true, "developer": true, "user": true, "assistant": true, "tool": true, "function": true}

func (r *ChatRequest) validate() error {
	if len(r.Messages) == 0 {
		return invalid("messages", "'messages' must contain at least one message")
	}
	for i, m := range r.Messages {
		p := fmt.Sprintf("messages[%d]", i)
		if !roles[m.Role] {
			return invalid(p+".role", "%s.role must be one of system, developer, user, assistant, tool, function; got %q", p, m.Role)
		}
		if m.Content.Null && m.Role != "assistant" {
			return invalid(p+".content", "%s.content is required for role %q", p, m.Role)
		}
	}
	for _, lim := range []struct {
		name string
		v    *int
	}{{"max_tokens", r.MaxTokens}, {"max_completion_tokens", r.MaxCompletionTokens}} {
		if lim.v != nil && *lim.v < 1 {
			return invalid(lim.name, "'%s' must be at least 1, got %d", lim.name, *lim.v)
		}
	}
	if r.TopLogprobs != nil {
		if *r.TopLogprobs < 0 || *r.TopLogprobs > MaxTopLogprobs {
			return invalid("top_logprobs", "'top_logprobs' must be between 0 and %d, got %d", MaxTopLogprobs, *r.TopLogprobs)
		}
		if *r.TopLogprobs > 0 && (r.Logprobs == nil || !*r.Logprobs) {
			return invalid("top_logprobs", "'top_logprobs' requires 'logprobs' to be true")
		}
	}
	if f := r.ResponseFormat; f != nil {
		switch f.Type {
		case "text", "json_object":
		case "json_schema":
			if f.JSONSchema == nil || f.JSONSchema.Name == "" {
				return invalid("response_format.json_schema", "'response_format' of type json_schema needs json_schema.name")
			}
		default:
			return invalid("response_format.type", "'response_format.type' must be text, json_object or json_schema, got %q", f.Type)
		}
	}
	return r.Sampling.validate()
}

// Prompt is the legacy endpoint's `prompt`: a string, an array of strings, an
// array of token ids, or an array of such arrays. Exactly one of Texts and
// Tokens is set after decoding; each entry is one prompt.
type Prompt struct {
	Texts  []string
	Tokens [][]int32
}

// Len is the number of prompts.
func (p *Prompt) Len() int { return len(p.Texts) + len(p.Tokens) }

// UnmarshalJSON accepts the four prompt forms.
func (p *Prompt) UnmarshalJSON(b []byte) error {
	const msg = "'prompt' must be a string, an array of strings, an array of token ids, or an array of token-id arrays"
	*p = Prompt{}
	switch firstByte(b) {
	case 'n':
		return nil
	case '"':
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return invalid("prompt", msg)
		}
		p.Texts = []string{s}
		return nil
	case '[':
	default:
		return invalid("prompt", msg)
	}
	var items []json.RawMessage
	if err := json.Unmarshal(b, &items); err != nil {
		return invalid("prompt", msg)
	}
	if len(items) == 0 {
		return invalid("prompt", "'prompt' must not be an empty array")
	}
	switch firstByte(items[0]) {
	case '"':
		if err := json.Unmarshal(b, &p.Texts); err != nil {
			return invalid("prompt", msg)
		}
	case '[':
		var ids [][]int64
		if err := json.Unmarshal(b, &ids); err != nil {
			return invalid("prompt", msg)
		}
		for _, one := range ids {
			t, err := tokenIDs(one)
			if err != nil {
				return err
			}
			p.Tokens = append(p.Tokens, t)
		}
	default:
		var ids []int64
		if err := json.Unmarshal(b, &ids); err != nil {
			return invalid("prompt", msg)
		}
		t, err := tokenIDs(ids)
		if err != nil {
			return err
		}
		p.Tokens = [][]int32{t}
	}
	return nil
}

func tokenIDs(ids []int64) ([]int32, error) {
	if len(ids) == 0 {
		return nil, invalid("prompt", "a token-id prompt must not be empty")
	}
	out := make([]int32, len(ids))
	for i, id := range ids {
		if id < 0 || id > math.MaxInt32 {
			return nil, invalid("prompt", "token id %d is out of range", id)
		}
		out[i] = int32(id)
	}
	return out, nil
}

// CompletionRequest is CreateCompletionRequest.
type CompletionRequest struct {
	Model     string  `json:"model"`
	Prompt    Prompt  `json:"prompt"`
	MaxTokens *int    `json:"max_tokens"`
	Logprobs  *int    `json:"logprobs"`
	Echo      bool    `json:"echo"`
	Suffix    *string `json:"suffix"`
	BestOf    *int    `json:"best_of"`
	Sampling
}

// Limit is max_tokens with the legacy default of 16.
func (r *CompletionRequest) Limit() int {
	if r.MaxTokens == nil {
		return DefaultCompletionMaxTokens
	}
	return *r.MaxTokens
}

// NumLogprobs is -1 when logprobs are off, else the number of alternatives.
func (r *CompletionRequest) NumLogprobs() int {
	if r.Logprobs == nil {
		return -1
	}
	return *r.Logprobs
}

// DecodeCompletionRequest parses and validates a legacy completion request.
func DecodeCompletionRequest(body []byte) (*CompletionRequest, error) {
	var r CompletionRequest
	if err := decode(body, &r); err != nil {
		return nil, err
	}
	if err := r.validate(); err != nil {
		return nil, err
	}
	return &r, nil
}

func (r *CompletionRequest) validate() error {
	if r.Prompt.Len() == 0 {
		return invalid("prompt", "'prompt' is required")
	}
	if r.MaxTokens != nil && *r.MaxTokens < 0 {
		return invalid("max_tokens", "'max_tokens' must not be negative, got %d", *r.MaxTokens)
	}
	if r.Logprobs != nil && (*r.Logprobs < 0 || *r.Logprobs > MaxCompletionLogprobs) {
		return invalid("logprobs", "'logprobs' must be between 0 and %d, got %d", MaxCompletionLogprobs, *r.Logprobs)
	}
	if r.Suffix != nil && *r.Suffix != "" {
		return invalid("suffix", "'suffix' (insertion) is not supported by this server")
	}
	if r.BestOf != nil && *r.BestOf != r.Choices() {
		return invalid("best_of", "'best_of' must equal 'n' on this server (got best_of=%d, n=%d)", *r.BestOf, r.Choices())
	}
	if r.Echo && r.Stream && r.Logprobs != nil {
		return invalid("echo", "'echo' with 'logprobs' is not supported when streaming")
	}
	return r.Sampling.validate()
}

func firstByte(b []byte) byte {
	b = bytes.TrimLeft(b, " \t\r\n")
	if len(b) == 0 {
		return 0
	}
	return b[0]
}
