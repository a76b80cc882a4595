package server

import (
	"strconv"
	"strings"
	"testing"

	"github.com/loraplex/loraplex/server/openai"
)

func TestCompletionPromptForms(t *testing.T) {
	h := start(t, nil)
	ids := func(s string) string { // the fake tokenizer: byte + 3
		parts := []string{}
		for _, b := range []byte(s) {
			parts = append(parts, strconv.Itoa(int(b)+3))
		}
		return "[" + strings.Join(parts, ",") + "]"
	}
	cases := []struct {
		prompt  string
		choices int
		prompts int // prompt tokens in usage
	}{
		{`"Once"`, 1, 5}, // BOS + 4 bytes
		{`["Once","Lily"]`, 2, 10},
		{ids("Once"), 1, 4},
		{"[" + ids("Once") + "," + ids("Hi") + "]", 2, 6},
	}
	for _, c := range cases {
		var r openai.CompletionResponse
		h.postJSON("/v1/completions", `{"model":"beta","prompt":`+c.prompt+`,"max_tokens":6}`, &r)
		if r.Object != "text_completion" || len(r.Choices) != c.choices || r.Usage.PromptTokens != c.prompts ||
			r.Usage.CompletionTokens != 6*c.choices {
			t.Fatalf("%s: %+v usage %+v", c.prompt, r, r.Usage)
		}
		for i, ch := range r.Choices {
			if ch.Index != i || ch.Text != "[beta]" || *ch.FinishReason != "length" || ch.Logprobs != nil {
				t.Errorf("%s choice %d: %+v", c.prompt, i, ch)
			}
		}
	}
	var r openai.CompletionResponse
	h.postJSON("/v1/completions", `{"prompt":"x"}`, &r)
	if r.Usage.CompletionTokens != openai.DefaultCompletionMaxTokens && r.Choices[0].Text != "hello world." {
		t.Errorf("default max_tokens: %+v", r.Choices[0])
	}
}

// TestCompletionEchoLogprobs checks the request lm-evaluation-harness sends
// to score a continuation: token ids, echo, logprobs, max_tokens 0.
func TestCompletionEchoLogprobs(t *testing.T) {
	h := start(t, nil)
	var r openai.CompletionResponse
	h.postJSON("/v1/completions", `{"model":"base","prompt":[[1,75,76,77]],"echo":true,"logprobs":1,"max_tokens":0}`, &r)
	ch := r.Choices[0]
	if ch.Text != "HIJ" || *ch.FinishReason != "length" || r.Usage.CompletionTokens != 0 || r.Usage.PromptTokens != 4 {
		t.Fatalf("choice %+v usage %+v", ch, r.Usage)
	}
	lp := ch.Logprobs
	if lp == nil || len(lp.Tokens) != 4 || lp.TokenLogprobs[0] != nil || lp.TopLogprobs[0] != nil {
		t.Fatalf("logprobs %+v", lp)
	}
	if strings.Join(lp.Tokens, "|") != "|H|I|J" || *lp.TokenLogprobs[1] != -1.25 || lp.TopLogprobs[1]["H"] != -1.25 ||
		lp.TopLogprobs[1]["\x01"] != -2 {
		t.Errorf("logprobs %+v", lp)
	}
	if want := []int{0, 0, 1, 2}; len(lp.TextOffset) != 4 || lp.TextOffset[3] != want[3] || lp.TextOffset[1] != 0 {
		t.Errorf("text_offset %v, want %v", lp.TextOffset, want)
	}

	h.postJSON("/v1/completions", `{"prompt":"ab","echo":true,"logprobs":0,"max_tokens":2}`, &r)
	lp = r.Choices[0].Logprobs
	if r.Choices[0].Text != "abhe" || len(lp.Tokens) != 5 || strings.Join(lp.Tokens, "") != "abhe" || *lp.TokenLogprobs[3] != -0.5 ||
		len(lp.TopLogprobs[4]) != 1 || lp.TextOffset[4] != 3 {
		t.Errorf("echo with generation: %+v %+v", r.Choices[0], lp)
	}
}

func TestCompletionStream(t *testing.T) {
	h := start(t, nil)
	resp, body := h.post("/v1/completions", `{"prompt":"ab","stream":true,"echo":true,"max_tokens":3,"stream_options":{"include_usage":true}}`)
	if resp.StatusCode != 200 {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	events := sseEvents(t, body)
	if events[len(events)-1] != "[DONE]" {
		t.Fatal("no [DONE]")
	}
	var text, finish string
	var usage *openai.Usage
	for _, ev := range events[:len(events)-1] {
		var c openai.CompletionResponse
		if err := jsonUnmarshal(ev, &c); err != nil {
			t.Fatal(err)
		}
		if len(c.Choices) == 0 {
			usage = c.Usage
			continue
		}
		text += c.Choices[0].Text
		if c.Choices[0].FinishReason != nil {
			finish = *c.Choices[0].FinishReason
		}
	}
	if text != "abhel" || finish != "length" || usage == nil || usage.CompletionTokens != 3 {
		t.Errorf("text %q finish %q usage %+v", text, finish, usage)
	}
}
