package server

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/loraplex/loraplex/server/openai"
)

func TestChatPicksAdapterByModel(t *testing.T) {
	h := start(t, nil)
	cases := []struct{ body, model, want string }{
		{`"model":"base"`, "base", "hello world."},
		{`"model":""`, "base", "hello world."},
		{`"model":"alpha"`, "alpha", "[alpha] hello world."},
		{`"model":"base:beta"`, "base:beta", "[beta] hello world."},
		{`"model":"org/gamma"`, "org/gamma", "[org/gamma] hello world."},
		{`"model":"ft:base:acme:tone:7p4l"`, "ft:base:acme:tone:7p4l", "[ft:base:acme:tone:7p4l] hello world."},
		{`"model":"base","adapter":"alpha"`, "base", "[alpha] hello world."},
	}
	for _, c := range cases {
		var r openai.ChatResponse
		h.postJSON("/v1/chat/completions", `{`+c.body+`,"messages":[{"role":"user","content":"hi"}],"unknown_field":{"x":1}}`, &r)
		if r.Object != "chat.completion" || r.Model != c.model || len(r.Choices) != 1 || r.SystemFingerprint == "" ||
			!strings.HasPrefix(r.ID, "chatcmpl-") {
			t.Fatalf("%s: response %+v", c.body, r)
		}
		ch := r.Choices[0]
		if ch.Message.Role != "assistant" || ch.Message.Content != c.want || ch.FinishReason != "stop" || ch.Logprobs != nil {
			t.Errorf("%s: choice %+v, want content %q", c.body, ch, c.want)
		}
		prompt := len("user: hi\nassistant:")
		if *r.Usage != (openai.Usage{PromptTokens: prompt, CompletionTokens: len(c.want), TotalTokens: prompt + len(c.want)}) {
			t.Errorf("%s: usage %+v", c.body, *r.Usage)
		}
	}
}

func TestChatLimitsStopAndN(t *testing.T) {
	h := start(t, nil)
	var r openai.ChatResponse
	h.postJSON("/v1/chat/completions", `{"model":"base","messages":[{"role":"user","content":"hi"}],"max_tokens":5}`, &r)
	if r.Choices[0].Message.Content != "hello" || r.Choices[0].FinishReason != "length" || r.Usage.CompletionTokens != 5 {
		t.Errorf("max_tokens 5: %+v", r)
	}
	h.postJSON("/v1/chat/completions", `{"messages":[{"role":"user","content":"hi"}],"max_tokens":100,"max_completion_tokens":3}`, &r)
	if r.Choices[0].Message.Content != "hel" || r.Choices[0].FinishReason != "length" {
		t.Errorf("max_completion_tokens wins: %+v", r.Choices[0])
	}
	h.postJSON("/v1/chat/completions", `{"messages":[{"role":"user","content":"hi"}],"stop":["xyz"," "]}`, &r)
	if r.Choices[0].Message.Content != "hello" || r.Choices[0].FinishReason != "stop" {
		t.Errorf("stop: %+v", r.Choices[0])
	}
	h.postJSON("/v1/chat/completions", `{"model":"alpha","messages":[{"role":"user","content":"hi"}],"n":3,"seed":7}`, &r)
	if len(r.Choices) != 3 || r.Usage.CompletionTokens != 3*len("[alpha] hello world.") {
		t.Fatalf("n=3: %+v", r)
	}
	for i, ch := range r.Choices {
		if ch.Index != i || ch.Message.Content != "[alpha] hello world." {
			t.Errorf("choice %d: %+v", i, ch)
		}
	}
	seeds := map[int64]bool{}
	for _, sub := range h.eng.submitted[len(h.eng.submitted)-3:] {
		seeds[*sub.Sampling.Seed] = true
	}
	if !seeds[7] || !seeds[8] || !seeds[9] {
		t.Errorf("each choice gets its own seed from 7: %v", seeds)
	}
}

func TestChatSamplingReachesEngine(t *testing.T) {
	h := start(t, nil)
	var r openai.ChatResponse
	h.postJSON("/v1/chat/completions", `{"messages":[{"role":"user","content":"hi"}],"temperature":0.5,"top_p":0.9,
		"presence_penalty":1.5,"frequency_penalty":-0.5,"logit_bias":{"42":-100,"7":3},"min_p":0.05,"top_k":40,
		"repetition_penalty":1.1,"ignore_eos":true,"max_tokens":4}`, &r)
	got := h.eng.submitted[0]
	want := Sampling{Temperature: 0.5, TopP: 0.9, MinP: 0.05, TopK: 40, PresencePenalty: 1.5, FrequencyPenalty: -0.5,
		RepetitionPenalty: 1.1, LogitBias: map[int32]float32{42: -100, 7: 3}}
	gb, _ := json.Marshal(got.Sampling)
	wb, _ := json.Marshal(want)
	if string(gb) != string(wb) || !got.IgnoreEOS || got.MaxTokens != 4 || got.Logprobs != -1 {
		t.Errorf("engine got %s ignoreEOS=%v max=%d logprobs=%d, want %s", gb, got.IgnoreEOS, got.MaxTokens, got.Logprobs, wb)
	}
	h.postJSON("/v1/chat/completions", `{"messages":[{"role":"user","content":"hi"}]}`, &r)
	def := h.eng.submitted[1]
	if def.Sampling.Temperature != 1 || def.Sampling.TopP != 1 || def.Sampling.RepetitionPenalty != 1 ||
		def.MaxTokens != h.eng.maxLen-len("user: hi\nassistant:") {
		t.Errorf("defaults: %+v max %d", def.Sampling, def.MaxTokens)
	}
}

func TestChatLogprobs(t *testing.T) {
	h := start(t, nil)
	var r openai.ChatResponse
	h.postJSON("/v1/chat/completions", `{"messages":[{"role":"user","content":"hi"}],"logprobs":true,"top_logprobs":2,"max_tokens":2}`, &r)
	lp := r.Choices[0].Logprobs
	if lp == nil || len(lp.Content) != 2 {
		t.Fatalf("logprobs %+v", lp)
	}
	e := lp.Content[0]
	if e.Token != "h" || e.Logprob != -0.5 || len(e.Bytes) != 1 || e.Bytes[0] != 'h' || len(e.TopLogprobs) != 2 ||
		e.TopLogprobs[1].Logprob != -2.5 || e.TopLogprobs[0].Bytes[0] != 0 {
		t.Errorf("entry %+v", e)
	}
}

func TestChatStream(t *testing.T) {
	h := start(t, nil)
	resp, body := h.post("/v1/chat/completions", `{"model":"alpha","messages":[{"role":"user","content":"hi"}],"stream":true,
		"stream_options":{"include_usage":true},"n":2,"max_tokens":4}`)
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		t.Fatalf("status %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	events := sseEvents(t, body)
	if events[len(events)-1] != "[DONE]" {
		t.Fatalf("stream does not end with [DONE]: %q", events[len(events)-1])
	}
	content := map[int]string{}
	finish := map[int]string{}
	var usage *openai.Usage
	for i, ev := range events[:len(events)-1] {
		var raw map[string]json.RawMessage
		if err := json.Unmarshal([]byte(ev), &raw); err != nil {
			t.Fatal(err)
		}
		if _, ok := raw["usage"]; !ok {
			t.Fatalf("chunk %d lacks the usage key: %s", i, ev)
		}
		var c openai.ChatChunk
		_ = json.Unmarshal([]byte(ev), &c)
		if c.Object != "chat.completion.chunk" || c.Model != "alpha" {
			t.Fatalf("chunk %s", ev)
		}
		if len(c.Choices) == 0 {
			if i != len(events)-2 || c.Usage == nil {
				t.Fatalf("usage chunk must be last before [DONE]: %s", ev)
			}
			usage = c.Usage
			continue
		}
		if c.Usage != nil {
			t.Fatalf("non-final chunk carries usage: %s", ev)
		}
		ch := c.Choices[0]
		if _, seen := content[ch.Index]; !seen {
			if ch.Delta.Role != "assistant" || ch.Delta.Content == nil || *ch.Delta.Content != "" {
				t.Fatalf("first chunk of choice %d: %s", ch.Index, ev)
			}
		}
		if ch.Delta.Content != nil {
			content[ch.Index] += *ch.Delta.Content
		}
		if ch.FinishReason != nil {
			finish[ch.Index] = *ch.FinishReason
		}
	}
	for i := range 2 {
		if content[i] != "[alp" || finish[i] != "length" {
			t.Errorf("choice %d: %q %q", i, content[i], finish[i])
		}
	}
	if usage == nil || usage.CompletionTokens != 8 || usage.PromptTokens != len("user: hi\nassistant:") {
		t.Errorf("usage %+v", usage)
	}
}

func TestChatTemplateErrorIs400(t *testing.T) {
	h := start(t, nil)
	resp, b := h.post("/v1/chat/completions", `{"model":"alpha","messages":[{"role":"user","content":"{% raise %}"}]}`)
	if resp.StatusCode != 400 || errorBody(t, b)["code"] != "chat_template_error" {
		t.Errorf("%d %s", resp.StatusCode, b)
	}
}
