package server

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/loraplex/loraplex/server/openai"
)

// errEngineClosed reports an event channel that closed without a final event.
var errEngineClosed = errors.New("the engine ended a sequence without finishing it")

func modelNotFound(name string) error {
	return fmt.Errorf("%w: the model '%s' does not exist; GET /v1/models lists the base model and its adapters", ErrModelNotFound, name)
}

// adapterName maps a request's model (and our `adapter` extension) to an
// adapter name, "" meaning the base: the base's id or "" → base;
// "<base>:<adapter>" (SGLang) → adapter; anything else is an adapter name
// (vLLM, TGI, LoRAX).
func (s *Server) adapterName(model, explicit string) string {
	if explicit != "" {
		return explicit
	}
	if model == "" || model == s.cfg.ModelName {
		return ""
	}
	if rest, ok := strings.CutPrefix(model, s.cfg.ModelName+":"); ok && rest != "" {
		return rest
	}
	return model
}

// target is what a request's model resolved to. Its lease is shared by
// every sequence of the request and by the handler; the last one to let go
// releases it, so the adapter stays resident exactly as long as needed.
type target struct {
	model   string // echoed in responses
	adapter string // "" for the base
	lease   Lease
	refs    atomic.Int32
}

func (t *target) hold() { t.refs.Add(1) }

func (t *target) done() {
	if t.refs.Add(-1) == 0 && t.lease != nil {
		t.lease.Release()
	}
}

// virtual is the number of prompt-tuning positions the adapter prepends.
func (t *target) virtual() int {
	if t.lease == nil {
		return 0
	}
	return t.lease.Virtual()
}

// acquire resolves model and leases its adapter. The caller must call done.
func (s *Server) acquire(ctx context.Context, c echo.Context, model, explicit string) (*target, error) {
	t := &target{model: model, adapter: s.adapterName(model, explicit)}
	if t.model == "" {
		t.model = s.cfg.ModelName
	}
	t.refs.Store(1)
	if t.adapter != "" {
		lease, err := s.ads.Acquire(ctx, t.adapter)
		if errors.Is(err, ErrModelNotFound) || errors.Is(err, ErrInvalidName) {
			return nil, modelNotFound(t.adapter)
		}
		if err != nil {
			return nil, err
		}
		t.lease = lease
	}
	c.Set(adapterKey, t.adapter) // only known names: metric labels stay bounded
	return t, nil
}

// budget checks a prompt against the context and returns the number of
// tokens that may be generated: the limit asked for, or all that fit.
func (s *Server) budget(promptLen int, limit *int, param string) (int, error) {
	ctxLen := s.eng.MaxModelLen()
	if promptLen > ctxLen || (limit == nil && promptLen >= ctxLen) {
		return 0, badRequest(param, "context_length_exceeded",
			"this model's maximum context length is %d tokens, but the prompt has %d tokens; shorten the prompt", ctxLen, promptLen)
	}
	if limit == nil {
		return ctxLen - promptLen, nil
	}
	if promptLen+*limit > ctxLen {
		return 0, badRequest("max_tokens", "context_length_exceeded",
			"this model's maximum context length is %d tokens, but %d tokens were requested (%d in the prompt, %d for the completion); lower max_tokens or shorten the prompt",
			ctxLen, promptLen+*limit, promptLen, *limit)
	}
	return *limit, nil
}

// checkTokens rejects ids outside the vocabulary.
func (s *Server) checkTokens(param string, ids []int32) error {
	v := int32(s.eng.VocabSize())
	for _, id := range ids {
		if id < 0 || id >= v {
			return badRequest(param, "invalid_token", "token id %d is outside the vocabulary (size %d)", id, v)
		}
	}
	return nil
}

// sampling converts the wire sampling fields, applying OpenAI's defaults.
func (s *Server) sampling(o *openai.Sampling) (Sampling, error) {
	p := Sampling{Temperature: 1, TopP: 1, RepetitionPenalty: 1, Seed: o.Seed}
	set := func(dst *float32, v *float64) {
		if v != nil {
			*dst = float32(*v)
		}
	}
	set(&p.Temperature, o.Temperature)
	set(&p.TopP, o.TopP)
	set(&p.MinP, o.MinP)
	set(&p.PresencePenalty, o.PresencePenalty)
	set(&p.FrequencyPenalty, o.FrequencyPenalty)
	set(&p.RepetitionPenalty, o.RepetitionPenalty)
	if o.TopK != nil && *o.TopK > 0 {
		p.TopK = *o.TopK
	}
	p.LogitBias = o.Bias()
	for id := range p.LogitBias {
		if err := s.checkTokens("logit_bias", []int32{id}); err != nil {
			return p, err
		}
	}
	return p, nil
}

// sequence is one generated choice and what the handler learned about it.
type sequence struct {
	index  int
	prompt []int32
	text   strings.Builder
	tokens int
	finish string
	first  time.Time
	last   time.Time
	// state moves 0 (waiting) → 1 (generating) → 2 (released) for the
	// lora tracker; the engine's Release and the handler race on it.
	state atomic.Int32
}

type indexed struct {
	i  int
	ev Event
}

// generation is a request's sequences in flight, their events merged into
// one channel. Its context is cancelled when the handler returns, which
// tells the engine to drop whatever still runs.
type generation struct {
	s         *Server
	t         *target
	seqs      []*sequence
	start     time.Time
	events    chan indexed
	ctx       context.Context
	cancel    context.CancelFunc
	remaining int
}

// generate submits one engine request per sequence, tmpl supplying all but
// the prompt. On error nothing is left running or leased.
func (s *Server) generate(ctx context.Context, t *target, seqs []*sequence, tmpl GenRequest, start time.Time) (*generation, error) {
	ctx, cancel := context.WithCancel(ctx)
	g := &generation{s: s, t: t, seqs: seqs, start: start, events: make(chan indexed), ctx: ctx, cancel: cancel, remaining: len(seqs)}
	tmpl.Adapter = t.lease
	for i, sq := range seqs {
		req := tmpl
		req.Prompt = sq.prompt
		if tmpl.Sampling.Seed != nil {
			seed := *tmpl.Sampling.Seed + int64(sq.index) // choices differ, yet each is reproducible
			req.Sampling.Seed = &seed
		}
		t.hold()
		s.loras.wait(t.adapter)
		var once sync.Once
		req.Release = func() { once.Do(func() { g.release(sq) }) }
		ch, err := s.eng.Submit(ctx, &req)
		if err != nil {
			req.Release()
			cancel()
			return nil, err
		}
		s.workers.Add(1)
		go g.forward(i, ch)
	}
	return g, nil
}

func (g *generation) release(sq *sequence) {
	if old := sq.state.Swap(2); old != 2 {
		g.s.loras.end(g.t.adapter, old == 1)
	}
	g.t.done()
}

// forward copies one sequence's events into the merged channel. After the
// handler has gone it keeps draining so the engine never blocks on us.
func (g *generation) forward(i int, ch <-chan Event) {
	defer g.s.workers.Done()
	finished := false
	for ev := range ch {
		finished = finished || ev.Finish != ""
		select {
		case g.events <- indexed{i, ev}:
		case <-g.ctx.Done():
		}
	}
	if !finished {
		select {
		case g.events <- indexed{i, Event{Token: -1, Finish: "error", Err: errEngineClosed}}:
		case <-g.ctx.Done():
		}
	}
}

// next waits for the next event of any sequence and does the bookkeeping
// every endpoint shares. It fails when the request is cancelled, times out,
// or a sequence ends in error.
func (g *generation) next() (*sequence, Event, error) {
	var ie indexed
	select {
	case <-g.ctx.Done():
		// The cause tells a timeout or a shutdown from a client that left.
		return nil, Event{}, context.Cause(g.ctx)
	case ie = <-g.events:
	}
	sq, ev, now := g.seqs[ie.i], ie.ev, g.s.now()
	if sq.state.CompareAndSwap(0, 1) {
		g.s.loras.run(g.t.adapter)
	}
	if ev.Token >= 0 {
		if sq.tokens == 0 {
			sq.first = now
		}
		sq.tokens++
		sq.last = now
	}
	sq.text.WriteString(ev.Text)
	if ev.Finish == "" {
		return sq, ev, nil
	}
	sq.finish = ev.Finish
	g.remaining--
	var tpot time.Duration
	if sq.tokens > 1 {
		tpot = sq.last.Sub(sq.first) / time.Duration(sq.tokens-1)
	}
	g.s.metrics.sequence(g.t.adapter, len(sq.prompt), sq.tokens, sq.first.Sub(g.start), tpot)
	switch ev.Finish {
	case "stop", "length":
		if g.remaining == 0 {
			g.s.metrics.endToEnd(g.t.adapter, now.Sub(g.start))
		}
		return sq, ev, nil
	case "cancelled":
		if g.ctx.Err() != nil {
			return nil, ev, context.Cause(g.ctx)
		}
		return nil, ev, fmt.Errorf("%w: the engine cancelled the request", ErrUnavailable)
	}
	if ev.Err != nil {
		return nil, ev, ev.Err
	}
	return nil, ev, fmt.Errorf("generation failed (finish reason %q)", ev.Finish)
}

// usage counts the prompt once per prompt, as OpenAI does for n > 1.
func (g *generation) usage(n int) *openai.Usage {
	prompt, completion := 0, 0
	for i, sq := range g.seqs {
		if i%n == 0 {
			prompt += len(sq.prompt)
		}
		completion += sq.tokens
	}
	return openai.NewUsage(prompt, completion)
}

// tokenText is a token's text as logprobs report it.
func (s *Server) tokenText(id int32) string { return string(s.eng.TokenBytes(id)) }

func (s *Server) chatLogprob(id int32, lp float32, top []TokenLogprob) openai.TokenLogprob {
	out := openai.TokenLogprob{Token: s.tokenText(id), Logprob: openai.Logprob(lp), Bytes: s.byteInts(id), TopLogprobs: make([]openai.TopLogprob, len(top))}
	for i, t := range top {
		out.TopLogprobs[i] = openai.TopLogprob{Token: s.tokenText(t.Token), Logprob: openai.Logprob(t.Logprob), Bytes: s.byteInts(t.Token)}
	}
	return out
}

func (s *Server) byteInts(id int32) []int {
	b := s.eng.TokenBytes(id)
	out := make([]int, len(b))
	for i, c := range b {
		out[i] = int(c)
	}
	return out
}

func ptr[T any](v T) *T { return &v }

// readGeneration reads and decodes a generation request body and enforces
// the server's limit on choices per request, which both completion
// endpoints share.
func readGeneration[R interface{ Choices() int }](s *Server, c echo.Context, decode func([]byte) (R, error)) (R, int, error) {
	var zero R
	body, err := s.readBody(c)
	if err != nil {
		return zero, 0, err
	}
	req, err := decode(body)
	if err != nil {
		return zero, 0, err
	}
	n := req.Choices()
	if n > s.cfg.MaxN {
		return zero, 0, badRequest("n", "", "'n' must be at most %d on this server, got %d", s.cfg.MaxN, n)
	}
	return req, n, nil
}
