package server

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/loraplex/loraplex/server/openai"
)

func (s *Server) tokenizeRoutes(r *router) {
	r.User(http.MethodPost, "/tokenize", s.tokenize)
	r.User(http.MethodPost, "/detokenize", s.detokenize)
}

// tokenize is vLLM's POST /tokenize: a prompt (special tokens added by
// default) or chat messages (rendered with the template, generation prompt
// added by default).
func (s *Server) tokenize(c echo.Context) error {
	var req openai.TokenizeRequest
	if err := s.decode(c, &req); err != nil {
		return err
	}
	if err := s.knownModel(req.Model); err != nil {
		return err
	}
	var ids []int32
	switch {
	case req.Prompt != nil && req.Messages != nil:
		return badRequest("prompt", "", "send either 'prompt' or 'messages', not both")
	case req.Prompt != nil:
		ids = s.eng.Tokenize(*req.Prompt, req.AddSpecialTokens == nil || *req.AddSpecialTokens)
	case len(req.Messages) > 0:
		text, err := s.renderChat(req.Messages, req.AddGenerationPrompt == nil || *req.AddGenerationPrompt)
		if err != nil {
			return err
		}
		ids = s.eng.Tokenize(text, req.AddSpecialTokens != nil && *req.AddSpecialTokens)
	default:
		return badRequest("prompt", "", "send 'prompt' (a string) or 'messages' (a non-empty array)")
	}
	if ids == nil {
		ids = []int32{}
	}
	return c.JSON(http.StatusOK, openai.TokenizeResponse{Count: len(ids), MaxModelLen: s.eng.MaxModelLen(), Tokens: ids})
}

// detokenize is vLLM's POST /detokenize.
func (s *Server) detokenize(c echo.Context) error {
	var req openai.DetokenizeRequest
	if err := s.decode(c, &req); err != nil {
		return err
	}
	if err := s.knownModel(req.Model); err != nil {
		return err
	}
	ids := make([]int32, len(req.Tokens))
	v := int64(s.eng.VocabSize())
	for i, id := range req.Tokens {
		if id < 0 || id >= v {
			return badRequest("tokens", "invalid_token", "token id %d is outside the vocabulary (size %d)", id, v)
		}
		ids[i] = int32(id)
	}
	return c.JSON(http.StatusOK, openai.DetokenizeResponse{Prompt: s.eng.Detokenize(ids)})
}
