package server

import (
	"net/http"
	"strings"
	"testing"
)

// TestBadInputs sends every kind of malformed request; each must get a 4xx
// with a complete OpenAI error object, and nothing may reach the engine.
func TestBadInputs(t *testing.T) {
	h := start(t, func(c *Config, e *fakeEngine, _ *Server) { c.MaxBodyBytes = 4096; e.maxLen = 64 })
	msgs := `"messages":[{"role":"user","content":"hi"}]`
	long := strings.Repeat("x", 80)
	cases := []struct {
		name, path, body string
		status           int
		param            string
	}{
		{"empty body", "/v1/chat/completions", ``, 400, ""},
		{"malformed json", "/v1/chat/completions", `{"model":`, 400, ""},
		{"not an object", "/v1/chat/completions", `[1,2]`, 400, ""},
		{"trailing data", "/v1/chat/completions", `{` + msgs + `} {}`, 400, ""},
		{"model wrong type", "/v1/chat/completions", `{"model":5,` + msgs + `}`, 400, "model"},
		{"messages wrong type", "/v1/chat/completions", `{"messages":"hi"}`, 400, "messages"},
		{"empty messages", "/v1/chat/completions", `{"messages":[]}`, 400, "messages"},
		{"missing messages", "/v1/chat/completions", `{"model":"base"}`, 400, "messages"},
		{"bad role", "/v1/chat/completions", `{"messages":[{"role":"wizard","content":"hi"}]}`, 400, "messages[0].role"},
		{"null user content", "/v1/chat/completions", `{"messages":[{"role":"user","content":null}]}`, 400, "messages[0].content"},
		{"image part", "/v1/chat/completions", `{"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"x"}}]}]}`, 400, "content"},
		{"content number", "/v1/chat/completions", `{"messages":[{"role":"user","content":5}]}`, 400, "content"},
		{"unknown model", "/v1/chat/completions", `{"model":"nope",` + msgs + `}`, 404, "model"},
		{"temperature type", "/v1/chat/completions", `{"temperature":"hot",` + msgs + `}`, 400, "temperature"},
		{"temperature range", "/v1/chat/completions", `{"temperature":2.5,` + msgs + `}`, 400, "temperature"},
		{"top_p range", "/v1/chat/completions", `{"top_p":-0.1,` + msgs + `}`, 400, "top_p"},
		{"n fraction", "/v1/chat/completions", `{"n":1.5,` + msgs + `}`, 400, "n"},
		{"n zero", "/v1/chat/completions", `{"n":0,` + msgs + `}`, 400, "n"},
		{"n above server limit", "/v1/chat/completions", `{"n":17,` + msgs + `}`, 400, "n"},
		{"n above spec", "/v1/chat/completions", `{"n":129,` + msgs + `}`, 400, "n"},
		{"five stops", "/v1/chat/completions", `{"stop":["a","b","c","d","e"],` + msgs + `}`, 400, "stop"},
		{"stop type", "/v1/chat/completions", `{"stop":5,` + msgs + `}`, 400, "stop"},
		{"max_tokens zero", "/v1/chat/completions", `{"max_tokens":0,` + msgs + `}`, 400, "max_tokens"},
		{"max_tokens beyond context", "/v1/chat/completions", `{"max_tokens":100,` + msgs + `}`, 400, "max_tokens"},
		{"prompt beyond context", "/v1/chat/completions", `{"messages":[{"role":"user","content":"` + long + `"}]}`, 400, "messages"},
		{"top_logprobs without logprobs", "/v1/chat/completions", `{"top_logprobs":3,` + msgs + `}`, 400, "top_logprobs"},
		{"top_logprobs range", "/v1/chat/completions", `{"logprobs":true,"top_logprobs":21,` + msgs + `}`, 400, "top_logprobs"},
		{"logit_bias key", "/v1/chat/completions", `{"logit_bias":{"abc":1},` + msgs + `}`, 400, "logit_bias"},
		{"logit_bias value", "/v1/chat/completions", `{"logit_bias":{"5":101},` + msgs + `}`, 400, "logit_bias"},
		{"logit_bias beyond vocab", "/v1/chat/completions", `{"logit_bias":{"9999":1},` + msgs + `}`, 400, "logit_bias"},
		{"penalty range", "/v1/chat/completions", `{"presence_penalty":3,` + msgs + `}`, 400, "presence_penalty"},
		{"repetition_penalty", "/v1/chat/completions", `{"repetition_penalty":0,` + msgs + `}`, 400, "repetition_penalty"},
		{"response_format", "/v1/chat/completions", `{"response_format":{"type":"xml"},` + msgs + `}`, 400, "response_format.type"},
		{"invalid utf-8", "/v1/chat/completions", "{\"messages\":[{\"role\":\"user\",\"content\":\"\xff\xfe\"}]}", 400, ""},
		{"lone surrogate", "/v1/chat/completions", `{"messages":[{"role":"user","content":"\ud800x"}]}`, 400, ""},
		{"huge body", "/v1/chat/completions", `{"messages":[{"role":"user","content":"` + strings.Repeat("y", 5000) + `"}]}`, 413, ""},
		{"completion no prompt", "/v1/completions", `{"model":"base"}`, 400, "prompt"},
		{"completion empty prompt list", "/v1/completions", `{"prompt":[]}`, 400, "prompt"},
		{"completion mixed prompt", "/v1/completions", `{"prompt":[1,"a"]}`, 400, "prompt"},
		{"completion negative token", "/v1/completions", `{"prompt":[1,-2]}`, 400, "prompt"},
		{"completion token beyond vocab", "/v1/completions", `{"prompt":[1,300]}`, 400, "prompt"},
		{"completion prompt type", "/v1/completions", `{"prompt":{"a":1}}`, 400, "prompt"},
		{"completion logprobs range", "/v1/completions", `{"prompt":"a","logprobs":21}`, 400, "logprobs"},
		{"completion logprobs bool", "/v1/completions", `{"prompt":"a","logprobs":true}`, 400, "logprobs"},
		{"completion suffix", "/v1/completions", `{"prompt":"a","suffix":"z"}`, 400, "suffix"},
		{"completion best_of", "/v1/completions", `{"prompt":"a","best_of":3}`, 400, "best_of"},
		{"completion too long", "/v1/completions", `{"prompt":"` + long + `"}`, 400, "prompt"},
		{"completion max_tokens beyond", "/v1/completions", `{"prompt":"a","max_tokens":64}`, 400, "max_tokens"},
		{"completion too many sequences", "/v1/completions", `{"prompt":["a","b","c","d","e","f","g","h","i","j","k","l","m","n","o","p","q"],"n":16}`, 400, "prompt"},
		{"unknown route", "/v1/nope", `{}`, 404, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			resp, b := h.post(c.path, c.body)
			if resp.StatusCode != c.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, c.status, b)
			}
			e := errorBody(t, b)
			if c.param != "" && e["param"] != c.param {
				t.Errorf("param %v, want %q: %s", e["param"], c.param, b)
			}
			if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
				t.Errorf("content type %q", ct)
			}
		})
	}
	resp, b := h.do(http.MethodGet, "/v1/chat/completions", "")
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET on a POST route: %d %s", resp.StatusCode, b)
	}
	errorBody(t, b)
	if len(h.eng.submitted) != 0 {
		t.Errorf("%d bad requests reached the engine", len(h.eng.submitted))
	}
}
