package server

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/loraplex/loraplex/server/openai"
)

func (s *Server) completionRoutes(r *router) {
	r.User(http.MethodPost, "/v1/completions", s.completions)
}

// completions serves the legacy POST /v1/completions, including what
// evaluation harnesses rely on: token-id prompts, echo with prompt logprobs
// and max_tokens 0 (score the prompt, generate nothing).
func (s *Server) completions(c echo.Context) error {
	start := s.now()
	req, n, err := readGeneration(s, c, openai.DecodeCompletionRequest)
	if err != nil {
		return err
	}
	if total := req.Prompt.Len() * n; total > s.cfg.MaxSequences {
		return badRequest("prompt", "", "prompts × n is %d; this server takes at most %d sequences per request", total, s.cfg.MaxSequences)
	}
	samp, err := s.sampling(&req.Sampling)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	t, err := s.acquire(ctx, c, req.Model, req.Adapter)
	if err != nil {
		return err
	}
	defer t.done()

	prompts, texts := req.Prompt.Tokens, req.Prompt.Texts
	for _, p := range prompts {
		if err := s.checkTokens("prompt", p); err != nil {
			return err
		}
		texts = append(texts, s.eng.Detokenize(p))
	}
	if len(prompts) == 0 {
		for _, text := range texts {
			prompts = append(prompts, s.eng.Tokenize(text, true))
		}
	}
	limit := req.Limit()
	seqs := make([]*sequence, 0, len(prompts)*n)
	for _, p := range prompts {
		if _, err := s.budget(len(p)+t.virtual(), &limit, "prompt"); err != nil {
			return err
		}
		for range n {
			seqs = append(seqs, &sequence{index: len(seqs), prompt: p})
		}
	}
	k := req.NumLogprobs()
	tmpl := GenRequest{Sampling: samp, MaxTokens: limit, Stop: req.Stop, IgnoreEOS: req.IgnoreEOS, Logprobs: k,
		PromptLogprobs: req.Echo && k >= 0}
	g, err := s.generate(ctx, t, seqs, tmpl, start)
	if err != nil {
		return err
	}
	defer g.cancel()
	cr := &completionRun{s: s, g: g, req: req, texts: texts, n: n, k: k, resp: openai.CompletionResponse{
		ID: s.newID("cmpl-"), Object: "text_completion", Created: start.Unix(), Model: t.model, SystemFingerprint: s.cfg.SystemFingerprint,
	}}
	if req.Stream {
		return cr.stream(c)
	}
	return cr.collect(c)
}

// completionRun builds one legacy completion response, streamed or not.
type completionRun struct {
	s     *Server
	g     *generation
	req   *openai.CompletionRequest
	texts []string // the prompt text of each prompt, for echo
	n, k  int
	resp  openai.CompletionResponse
}

func (r *completionRun) collect(c echo.Context) error {
	choices := make([]openai.CompletionChoice, len(r.g.seqs))
	offsets := make([]int, len(choices))
	for r.g.remaining > 0 {
		sq, ev, err := r.g.next()
		if err != nil {
			return err
		}
		r.logprobs(&choices[sq.index], &offsets[sq.index], ev)
	}
	for i, sq := range r.g.seqs {
		choices[i].Index = i
		choices[i].Text = sq.text.String()
		if r.req.Echo {
			choices[i].Text = r.texts[i/r.n] + choices[i].Text
		}
		choices[i].FinishReason = ptr(sq.finish)
	}
	r.resp.Choices = choices
	r.resp.Usage = r.g.usage(r.n)
	return r.s.writeJSON(c, r.resp)
}

// stream sends one chunk per generated text piece, the echoed prompt
// first when asked for, a final chunk per choice with its finish reason,
// the usage chunk if asked for, then [DONE].
func (r *completionRun) stream(c echo.Context) error {
	w := newSSE(c, r.s.cfg.WriteTimeout)
	if err := w.start(); err != nil {
		return nil
	}
	r.resp.Choices = make([]openai.CompletionChoice, 1)
	send := func(ch openai.CompletionChoice) error {
		r.resp.Choices[0] = ch
		return w.send(&r.resp)
	}
	offsets := make([]int, len(r.g.seqs))
	if r.req.Echo {
		for i := range r.g.seqs {
			if err := send(openai.CompletionChoice{Index: i, Text: r.texts[i/r.n]}); err != nil {
				return nil
			}
		}
	}
	for r.g.remaining > 0 {
		sq, ev, err := r.g.next()
		if err != nil {
			_ = w.fail(err)
			return nil
		}
		ch := openai.CompletionChoice{Index: sq.index, Text: ev.Text}
		r.logprobs(&ch, &offsets[sq.index], ev)
		if ev.Text != "" || ch.Logprobs != nil {
			if err := send(ch); err != nil {
				return nil
			}
		}
		if ev.Finish != "" {
			if err := send(openai.CompletionChoice{Index: sq.index, FinishReason: ptr(ev.Finish)}); err != nil {
				return nil
			}
		}
	}
	if r.req.IncludeUsage() {
		r.resp.Choices = []openai.CompletionChoice{}
		r.resp.Usage = r.g.usage(r.n)
		if err := w.send(&r.resp); err != nil {
			return nil
		}
	}
	_ = w.done()
	return nil
}

// logprobs appends ev's prompt and token logprobs to ch in the legacy
// parallel-array form. An echoed prompt's first token has null logprob
// and null alternatives; each alternatives map also holds the chosen
// token, as vLLM does, so "is the chosen token the argmax" can be read off.
func (r *completionRun) logprobs(ch *openai.CompletionChoice, offset *int, ev Event) {
	if r.k < 0 || (ev.Token < 0 && len(ev.Prompt) == 0) {
		return
	}
	if ch.Logprobs == nil {
		ch.Logprobs = &openai.CompletionLogprobs{Tokens: []string{}, TokenLogprobs: []*float64{}, TopLogprobs: []map[string]float64{}, TextOffset: []int{}}
	}
	for _, p := range ev.Prompt {
		if !p.HasLogprob {
			r.appendLP(ch.Logprobs, offset, p.Token, nil, nil)
			continue
		}
		r.appendLP(ch.Logprobs, offset, p.Token, ptr(openai.Logprob(p.Logprob)), p.Top)
	}
	if ev.Token >= 0 {
		r.appendLP(ch.Logprobs, offset, ev.Token, ptr(openai.Logprob(ev.Logprob)), ev.Top)
	}
}

func (r *completionRun) appendLP(l *openai.CompletionLogprobs, offset *int, tok int32, lp *float64, top []TokenLogprob) {
	text := r.s.tokenText(tok)
	l.Tokens = append(l.Tokens, text)
	l.TokenLogprobs = append(l.TokenLogprobs, lp)
	l.TextOffset = append(l.TextOffset, *offset)
	*offset += len(text)
	if lp == nil {
		l.TopLogprobs = append(l.TopLogprobs, nil)
		return
	}
	m := make(map[string]float64, len(top)+1)
	for _, t := range top {
		m[r.s.tokenText(t.Token)] = openai.Logprob(t.Logprob)
	}
	m[text] = *lp
	l.TopLogprobs = append(l.TopLogprobs, m)
}
