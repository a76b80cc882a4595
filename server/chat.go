package server

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/loraplex/loraplex/server/openai"
)

func (s *Server) chatRoutes(r *router) {
	r.User(http.MethodPost, "/v1/chat/completions", s.chat)
}

// chat serves POST /v1/chat/completions.
func (s *Server) chat(c echo.Context) error {
	start := s.now()
	req, n, err := readGeneration(s, c, openai.DecodeChatRequest)
	if err != nil {
		return err
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

	text, err := s.renderChat(req.Messages, true)
	if err != nil {
		return err
	}
	// The template already wrote BOS and friends where the model wants them.
	prompt := s.eng.Tokenize(text, false)
	maxTokens, err := s.budget(len(prompt)+t.virtual(), req.Limit(), "messages")
	if err != nil {
		return err
	}
	seqs := make([]*sequence, n)
	for i := range seqs {
		seqs[i] = &sequence{index: i, prompt: prompt}
	}
	g, err := s.generate(ctx, t, seqs, GenRequest{Sampling: samp, MaxTokens: maxTokens, Stop: req.Stop,
		IgnoreEOS: req.IgnoreEOS, Logprobs: req.NumLogprobs()}, start)
	if err != nil {
		return err
	}
	defer g.cancel()
	if req.Stream {
		return s.streamChat(c, g, req)
	}
	return s.collectChat(c, g, req)
}

// renderChat applies the chat template. Every template failure is the
// conversation's fault (templates raise on bad role orders), hence a 400.
func (s *Server) renderChat(msgs []openai.Message, addGenerationPrompt bool) (string, error) {
	cm := make([]ChatMessage, len(msgs))
	for i, m := range msgs {
		cm[i] = ChatMessage{Role: m.Role, Content: m.Content.Text}
	}
	text, err := s.eng.RenderChat(cm, addGenerationPrompt)
	if err != nil && !errors.Is(err, ErrTemplate) {
		err = fmt.Errorf("%w: %w", ErrTemplate, err)
	}
	return text, err
}

func (s *Server) collectChat(c echo.Context, g *generation, req *openai.ChatRequest) error {
	choices := make([]openai.ChatChoice, len(g.seqs))
	for g.remaining > 0 {
		sq, ev, err := g.next()
		if err != nil {
			return err
		}
		ch := &choices[sq.index]
		if req.NumLogprobs() >= 0 && ev.Token >= 0 {
			if ch.Logprobs == nil {
				ch.Logprobs = &openai.ChatLogprobs{Content: []openai.TokenLogprob{}}
			}
			ch.Logprobs.Content = append(ch.Logprobs.Content, s.chatLogprob(ev.Token, ev.Logprob, ev.Top))
		}
	}
	for i, sq := range g.seqs {
		choices[i].Index = i
		choices[i].Message = openai.ResponseMessage{Role: "assistant", Content: sq.text.String()}
		choices[i].FinishReason = sq.finish
	}
	return s.writeJSON(c, openai.ChatResponse{
		ID: s.newID("chatcmpl-"), Object: "chat.completion", Created: g.start.Unix(), Model: g.t.model,
		Choices: choices, Usage: g.usage(len(g.seqs)), SystemFingerprint: s.cfg.SystemFingerprint,
	})
}

// streamChat sends the conventional chunk sequence: a role chunk per
// choice, content deltas, an empty delta with the finish reason, the usage
// chunk when asked for, then [DONE]. A failed write means the client left;
// returning cancels the generation.
func (s *Server) streamChat(c echo.Context, g *generation, req *openai.ChatRequest) error {
	w := newSSE(c, s.cfg.WriteTimeout)
	chunk := openai.ChatChunk{ID: s.newID("chatcmpl-"), Object: "chat.completion.chunk", Created: g.start.Unix(),
		Model: g.t.model, SystemFingerprint: s.cfg.SystemFingerprint, Choices: make([]openai.ChunkChoice, 1)}
	send := func(choice openai.ChunkChoice) error {
		chunk.Choices[0] = choice
		return w.send(&chunk)
	}
	for i := range g.seqs {
		if err := send(openai.ChunkChoice{Index: i, Delta: openai.Delta{Role: "assistant", Content: ptr("")}}); err != nil {
			return nil
		}
	}
	for g.remaining > 0 {
		sq, ev, err := g.next()
		if err != nil {
			_ = w.fail(err)
			return nil
		}
		choice := openai.ChunkChoice{Index: sq.index}
		if req.NumLogprobs() >= 0 && ev.Token >= 0 {
			choice.Logprobs = &openai.ChatLogprobs{Content: []openai.TokenLogprob{s.chatLogprob(ev.Token, ev.Logprob, ev.Top)}}
		}
		if ev.Text != "" || choice.Logprobs != nil {
			choice.Delta.Content = ptr(ev.Text)
			if err := send(choice); err != nil {
				return nil
			}
		}
		if ev.Finish != "" {
			if err := send(openai.ChunkChoice{Index: sq.index, FinishReason: ptr(ev.Finish)}); err != nil {
				return nil
			}
		}
	}
	if req.IncludeUsage() {
		chunk.Choices = []openai.ChunkChoice{}
		chunk.Usage = g.usage(len(g.seqs))
		if err := w.send(&chunk); err != nil {
			return nil
		}
	}
	_ = w.done()
	return nil
}
