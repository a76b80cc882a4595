package openai

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestPromptForms(t *testing.T) {
	cases := []struct {
		in     string
		texts  []string
		tokens [][]int32
		bad    bool
	}{
		{in: `"hi"`, texts: []string{"hi"}},
		{in: `""`, texts: []string{""}},
		{in: `["a","b"]`, texts: []string{"a", "b"}},
		{in: `[1,2,3]`, tokens: [][]int32{{1, 2, 3}}},
		{in: `[[1],[2,3]]`, tokens: [][]int32{{1}, {2, 3}}},
		{in: `[]`, bad: true},
		{in: `[[]]`, bad: true},
		{in: `[1,"a"]`, bad: true},
		{in: `["a",1]`, bad: true},
		{in: `[1.5]`, bad: true},
		{in: `[-1]`, bad: true},
		{in: `[4294967296]`, bad: true},
		{in: `{"a":1}`, bad: true},
		{in: `true`, bad: true},
	}
	for _, c := range cases {
		var p Prompt
		err := json.Unmarshal([]byte(c.in), &p)
		if c.bad {
			var re *RequestError
			if !errors.As(err, &re) || re.Param != "prompt" {
				t.Errorf("%s: want a prompt RequestError, got %v", c.in, err)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(p.Texts, c.texts) || !reflect.DeepEqual(p.Tokens, c.tokens) {
			t.Errorf("%s: got %+v %v", c.in, p, err)
		}
	}
}

func TestContentForms(t *testing.T) {
	cases := []struct {
		in, want string
		null     bool
		bad      bool
	}{
		{in: `"hi"`, want: "hi"},
		{in: `null`, null: true},
		{in: `[{"type":"text","text":"a"},{"type":"text","text":"b"}]`, want: "a\nb"},
		{in: `[]`, want: ""},
		{in: `[{"type":"image_url","image_url":{"url":"x"}}]`, bad: true},
		{in: `[{"type":"text"}]`, bad: true},
		{in: `[1]`, bad: true},
		{in: `{}`, bad: true},
	}
	for _, c := range cases {
		var got Content
		err := json.Unmarshal([]byte(c.in), &got)
		if (err != nil) != c.bad || (!c.bad && (got.Text != c.want || got.Null != c.null)) {
			t.Errorf("%s: got %+v %v", c.in, got, err)
		}
	}
}

func TestStopForms(t *testing.T) {
	for in, want := range map[string]Stop{`"x"`: {"x"}, `["a","b"]`: {"a", "b"}, `null`: nil} {
		var s Stop
		if err := json.Unmarshal([]byte(in), &s); err != nil || !reflect.DeepEqual(s, want) {
			t.Errorf("%s: %v %v", in, s, err)
		}
	}
	for _, in := range []string{`5`, `[1]`, `{"a":"b"}`} {
		var s Stop
		if err := json.Unmarshal([]byte(in), &s); err == nil {
			t.Errorf("%s accepted", in)
		}
	}
}

func TestCheckEscapes(t *testing.T) {
	ok := []string{`"\u00e9"`, `"\ud83d\ude00"`, `"\\ud800"`, `"\\\ud83d\ude00"`, `"plain"`}
	bad := []string{`"\ud800"`, `"\udc00"`, `"\ud83d\u0041"`, `"\ud83dx"`, `"\\\ud800"`}
	for _, s := range ok {
		if err := checkEscapes([]byte(s)); err != nil {
			t.Errorf("%s rejected: %v", s, err)
		}
	}
	for _, s := range bad {
		if err := checkEscapes([]byte(s)); err == nil {
			t.Errorf("%s accepted", s)
		}
	}
}

func TestDecodeChatDefaults(t *testing.T) {
	r, err := DecodeChatRequest([]byte(`{"model":"m","messages":[{"role":"developer","content":"x"},
		{"role":"assistant","content":null,"tool_calls":[]},{"role":"user","content":"y"}],
		"tools":[{"type":"function"}],"metadata":{"a":"b"},"store":false,"logprobs":true}`))
	if err != nil {
		t.Fatal(err)
	}
	if r.Choices() != 1 || r.Limit() != nil || r.NumLogprobs() != 0 || r.IncludeUsage() || len(r.Messages) != 3 {
		t.Errorf("%+v", r)
	}
}

var chatSeeds = []string{
	`{"model":"m","messages":[{"role":"user","content":"hi"}]}`,
	`{"model":"a","messages":[{"role":"system","content":[{"type":"text","text":"s"}]},{"role":"user","content":"q"}],"stream":true,"stream_options":{"include_usage":true},"n":2,"stop":["x"],"logit_bias":{"5":-100},"logprobs":true,"top_logprobs":3,"seed":1,"max_completion_tokens":9}`,
	`{"messages":[{"role":"user","content":"\ud83d\ude00"}],"temperature":0,"top_p":1,"min_p":0.1,"top_k":-1}`,
	`{"messages":[]}`, `[]`, `{"messages":"x"}`, `{"n":1e400}`, "\xff",
}

// FuzzDecodeChatRequest: no input may panic, and whatever is accepted
// satisfies the documented bounds; every rejection is a RequestError.
func FuzzDecodeChatRequest(f *testing.F) {
	for _, s := range chatSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := DecodeChatRequest(b)
		if err != nil {
			var re *RequestError
			if !errors.As(err, &re) || re.Message == "" {
				t.Fatalf("rejection is not a RequestError: %v", err)
			}
			return
		}
		if len(r.Messages) == 0 || r.Choices() < 1 || r.Choices() > MaxN || len(r.Stop) > MaxStop || r.NumLogprobs() > MaxTopLogprobs {
			t.Fatalf("accepted out-of-bounds request %s", b)
		}
		if l := r.Limit(); l != nil && *l < 1 {
			t.Fatalf("accepted max tokens %d", *l)
		}
		for _, m := range r.Messages {
			if !roles[m.Role] || strings.ContainsRune(m.Content.Text, '\uFFFD') && !strings.Contains(string(b), "\uFFFD") && !strings.Contains(strings.ToLower(string(b)), `\ufffd`) {
				t.Fatalf("accepted bad message %+v from %q", m, b)
			}
		}
	})
}

// FuzzDecodeCompletionRequest: as above for the legacy endpoint.
func FuzzDecodeCompletionRequest(f *testing.F) {
	for _, s := range []string{
		`{"model":"m","prompt":"hi"}`, `{"prompt":["a","b"],"n":2,"echo":true,"logprobs":1,"max_tokens":0}`,
		`{"prompt":[1,2,3]}`, `{"prompt":[[1],[2,3]],"best_of":1}`, `{"prompt":[]}`, `{"prompt":[1,"a"]}`,
		`{"prompt":"x","suffix":"y"}`, `{"prompt":{}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := DecodeCompletionRequest(b)
		if err != nil {
			var re *RequestError
			if !errors.As(err, &re) || re.Message == "" {
				t.Fatalf("rejection is not a RequestError: %v", err)
			}
			return
		}
		if r.Prompt.Len() == 0 || (r.Prompt.Texts != nil) == (r.Prompt.Tokens != nil) || r.Limit() < 0 ||
			r.NumLogprobs() > MaxCompletionLogprobs || r.Choices() > MaxN {
			t.Fatalf("accepted bad request %s: %+v", b, r)
		}
		for _, p := range r.Prompt.Tokens {
			if len(p) == 0 {
				t.Fatalf("accepted empty token prompt from %s", b)
			}
		}
	})
}
