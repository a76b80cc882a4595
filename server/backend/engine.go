package backend

import (
	"context"
	"errors"
	"fmt"

	"github.com/loraplex/loraplex/inference/chat"
	"github.com/loraplex/loraplex/inference/model"
	"github.com/loraplex/loraplex/inference/sample"
	"github.com/loraplex/loraplex/inference/sched"
	"github.com/loraplex/loraplex/inference/tokenizer"
	"github.com/loraplex/loraplex/server"
)

// ErrConfig marks invalid EngineOptions.
var ErrConfig = errors.New("backend: invalid options")

// EngineOptions tune the engine glue.
type EngineOptions struct {
	// ChatTemplate overrides the tokenizer's chat template (Jinja source);
	// empty uses the model's own. A model with neither serves no chat.
	ChatTemplate string
	// MaxAdapters is reported as vllm:lora_requests_info's max_lora: how
	// many distinct adapters one batch may hold.
	MaxAdapters int
}

// Engine implements server.Engine.
type Engine struct {
	s       *sched.Scheduler
	tok     *tokenizer.Tokenizer
	tmpl    *chat.Template
	opts    EngineOptions
	special map[string]string
}

// NewEngine wraps a running scheduler and the tokenizer it was built with.
func NewEngine(s *sched.Scheduler, tok *tokenizer.Tokenizer, opts EngineOptions) (*Engine, error) {
	if opts.MaxAdapters < 0 {
		return nil, fmt.Errorf("%w: MaxAdapters %d is negative", ErrConfig, opts.MaxAdapters)
	}
	e := &Engine{s: s, tok: tok, opts: opts, special: tok.SpecialTokens()}
	src := opts.ChatTemplate
	if src == "" {
		src = tok.ChatTemplate()
	}
	if src != "" {
		t, err := chat.Compile(src)
		if err != nil {
			return nil, fmt.Errorf("backend: compiling the chat template: %w", err)
		}
		e.tmpl = t
	}
	return e, nil
}

// modelAdapter is implemented by the leases of Adapters.
type modelAdapter interface{ ModelAdapter() *model.Adapter }

// Submit translates the request, submits it and relays its events.
func (e *Engine) Submit(ctx context.Context, r *server.GenRequest) (<-chan server.Event, error) {
	req := &sched.Request{
		Prompt:  r.Prompt,
		Release: r.Release,
		Sampling: sample.Params{Temperature: r.Sampling.Temperature, TopP: r.Sampling.TopP, MinP: r.Sampling.MinP,
			TopK: r.Sampling.TopK, Seed: r.Sampling.Seed, PresencePenalty: r.Sampling.PresencePenalty,
			FrequencyPenalty: r.Sampling.FrequencyPenalty, RepetitionPenalty: r.Sampling.RepetitionPenalty,
			LogitBias: r.Sampling.LogitBias},
		MaxTokens:      r.MaxTokens,
		ScoreOnly:      r.MaxTokens == 0,
		Stop:           r.Stop,
		IgnoreEOS:      r.IgnoreEOS,
		Logprobs:       r.Logprobs,
		PromptLogprobs: r.PromptLogprobs,
	}
	if r.Adapter != nil {
		a, ok := r.Adapter.(modelAdapter)
		if !ok {
			r.Release()
			return nil, fmt.Errorf("backend: lease %T carries no adapter weights; use the leases of backend.Adapters", r.Adapter)
		}
		req.Adapter = a.ModelAdapter()
	}
	in, err := e.s.Submit(ctx, req)
	if err != nil {
		return nil, schedError(err)
	}
	out := make(chan server.Event)
	go relay(in, out)
	return out, nil
}

// relay converts events until the scheduler closes its channel. The server
// drains every channel it is given, so the sends cannot block forever.
func relay(in <-chan sched.Event, out chan<- server.Event) {
	defer close(out)
	for ev := range in {
		o := server.Event{Token: ev.Token, Text: ev.Text, Logprob: ev.Logprob, Top: logprobs(ev.Top),
			Finish: ev.Finish, Err: ev.Err}
		if ev.Err != nil {
			o.Err = schedError(ev.Err)
		}
		if ev.Prompt != nil {
			o.Prompt = make([]server.PromptToken, len(ev.Prompt))
			for i, p := range ev.Prompt {
				o.Prompt[i] = server.PromptToken{TokenLogprob: server.TokenLogprob{Token: p.Token, Logprob: p.Logprob},
					HasLogprob: p.HasLogprob, Top: logprobs(p.Top)}
			}
		}
		out <- o
	}
}

func logprobs(in []sched.TokenLogprob) []server.TokenLogprob {
	if in == nil {
		return nil
	}
	out := make([]server.TokenLogprob, len(in))
	for i, t := range in {
		out[i] = server.TokenLogprob{Token: t.ID, Logprob: t.Logprob}
	}
	return out
}

// schedError maps the scheduler's sentinels onto the server's.
func schedError(err error) error {
	switch {
	case errors.Is(err, sched.ErrQueueFull):
		return fmt.Errorf("%w: %w", server.ErrQueueFull, err)
	case errors.Is(err, sched.ErrTooLong):
		return fmt.Errorf("%w: %w", server.ErrTooLong, err)
	case errors.Is(err, sched.ErrInvalid):
		return fmt.Errorf("%w: %w", server.ErrBadRequest, err)
	case errors.Is(err, sched.ErrClosed):
		return fmt.Errorf("%w: %w", server.ErrUnavailable, err)
	}
	return err
}

// Stats reports the scheduler's load.
func (e *Engine) Stats() server.EngineStats {
	st := e.s.Stats()
	usage := 0.0
	if st.KVBlocksTotal > 0 {
		usage = float64(st.KVBlocksUsed) / float64(st.KVBlocksTotal)
	}
	return server.EngineStats{Waiting: st.Waiting, Running: st.Running, KVCacheUsage: usage, MaxAdapters: e.opts.MaxAdapters}
}

// Tokenize encodes text.
func (e *Engine) Tokenize(text string, addSpecial bool) []int32 {
	return e.tok.Encode(text, addSpecial)
}

// Detokenize decodes ids, leaving out special tokens as vLLM does.
func (e *Engine) Detokenize(ids []int32) string { return e.tok.Decode(ids, true) }

// TokenBytes is the bytes one token decodes to.
func (e *Engine) TokenBytes(id int32) []byte { return e.tok.TokenBytes(id) }

// VocabSize is the tokenizer's vocabulary size.
func (e *Engine) VocabSize() int { return e.tok.VocabSize() }

// MaxModelLen is the most positions one request may span.
func (e *Engine) MaxModelLen() int { return e.s.MaxContext() }

// RenderChat applies the chat template.
func (e *Engine) RenderChat(msgs []server.ChatMessage, addGenerationPrompt bool) (string, error) {
	if e.tmpl == nil {
		return "", fmt.Errorf("%w: this model has no chat template; use /v1/completions or start the server with a chat template", server.ErrTemplate)
	}
	cm := make([]chat.Message, len(msgs))
	for i, m := range msgs {
		cm[i] = chat.Message{Role: m.Role, Content: m.Content}
	}
	out, err := e.tmpl.Render(cm, chat.RenderOptions{AddGenerationPrompt: addGenerationPrompt,
		BOS: e.special["bos_token"], EOS: e.special["eos_token"]})
	if err != nil {
		return "", fmt.Errorf("%w: %w", server.ErrTemplate, err)
	}
	return out, nil
}
