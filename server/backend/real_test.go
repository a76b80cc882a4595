package backend

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/loraplex/loraplex/adapters"
	"github.com/loraplex/loraplex/inference/fixtures"
	"github.com/loraplex/loraplex/inference/model"
	"github.com/loraplex/loraplex/inference/sched"
	"github.com/loraplex/loraplex/inference/tokenizer"
	"github.com/loraplex/loraplex/registry"
	"github.com/loraplex/loraplex/server"
	"github.com/loraplex/loraplex/server/openai"
)

type storyCase struct {
	Prompt     string  `json:"prompt"`
	PromptIDs  []int32 `json:"prompt_ids"`
	GreedyIDs  []int32 `json:"greedy_ids"`
	GreedyText string  `json:"greedy_text"`
}

// stack is the real engine and registry behind a server on a loopback port.
type stack struct {
	url   string
	m     *model.Model
	sch   *sched.Scheduler
	reg   *registry.Registry
	root  string // adapter import root
	cases []storyCase
}

// chatTemplate turns a conversation into plain story text, so a chat
// request over stories260k must reproduce the completion reference.
const chatTemplate = "{{ bos_token }}{% for m in messages %}{{ m['content'] }}{% endfor %}"

func startStack(t *testing.T) *stack {
	t.Helper()
	dir := fixtures.Path(t, "models", "stories260k")
	m, err := model.Load(dir, model.LoadOptions{Quant: "none"}) // float32: greedy matches the reference exactly
	if err != nil {
		t.Fatal(err)
	}
	tok, err := tokenizer.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	sch, err := sched.New(m, tok, sched.Config{KVBytes: 8 << 20})
	if err != nil {
		t.Fatal(err)
	}
	eng, err := NewEngine(sch, tok, EngineOptions{ChatTemplate: chatTemplate, MaxAdapters: 16})
	if err != nil {
		t.Fatal(err)
	}
	store, err := registry.OpenStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	rcfg := registry.DefaultConfig()
	reg := registry.New(store, adapters.NewLoader(m.Cfg, "stories260k", nil), rcfg)
	cfg := server.DefaultConfig()
	cfg.ModelName = "stories260k"
	st := &stack{m: m, sch: sch, reg: reg, root: t.TempDir()}
	cfg.AdapterImportRoots = []string{st.root}
	srv, err := server.New(cfg, server.Deps{Engine: eng, Adapters: NewAdapters(reg, rcfg.MaxBytes)})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	st.url = "http://" + ln.Addr().String()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		if err := <-errc; err != nil {
			t.Errorf("serve: %v", err)
		}
		if err := sch.Close(ctx); err != nil {
			t.Errorf("scheduler close: %v", err)
		}
		if s := sch.Stats(); s.Running != 0 || s.Waiting != 0 {
			t.Errorf("scheduler still holds sequences: %+v", s)
		}
		if s := reg.Stats(); s.Leases != 0 {
			t.Errorf("%d adapter leases leaked", s.Leases)
		}
		reg.Close()
		m.Close()
	})
	f, err := os.Open(filepath.Join(dir, "reference-5.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var c storyCase
		if err := json.Unmarshal(sc.Bytes(), &c); err != nil {
			t.Fatal(err)
		}
		st.cases = append(st.cases, c)
	}
	if len(st.cases) == 0 {
		t.Fatal("no reference cases")
	}
	return st
}

func (s *stack) post(t *testing.T, path, body string) (int, []byte) {
	t.Helper()
	resp, err := http.Post(s.url+path, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, b
}

func (s *stack) postJSON(t *testing.T, path, body string, v any) {
	t.Helper()
	code, b := s.post(t, path, body)
	if code != 200 {
		t.Fatalf("POST %s %s: %d %s", path, body, code, b)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatal(err)
	}
}

// saveLoRA writes a rank-4 LoRA on q and v of every layer; with zero B it
// leaves the model's output unchanged.
func (s *stack) saveLoRA(t *testing.T, name string, zeroB bool) string {
	t.Helper()
	c := s.m.Cfg
	rng := rand.New(rand.NewPCG(7, uint64(len(name))))
	const r = 4
	a := &model.Adapter{ID: name, LoRA: make([][model.NumModules]*model.LoRA, c.Layers)}
	for l := range a.LoRA {
		for _, mod := range []model.Module{model.Q, model.V} {
			out := c.Heads * c.HeadDim
			if mod == model.V {
				out = c.KVHeads * c.HeadDim
			}
			lo := &model.LoRA{R: r, Scale: 2, A: make([]float32, r*c.Hidden), B: make([]float32, out*r)}
			for i := range lo.A {
				lo.A[i] = float32(rng.NormFloat64()) * 0.5
			}
			if !zeroB {
				for i := range lo.B {
					lo.B[i] = float32(rng.NormFloat64()) * 0.5
				}
			}
			a.LoRA[l][mod] = lo
		}
	}
	dir := filepath.Join(s.root, name)
	if err := adapters.SaveLoRA(dir, &adapters.PEFTConfig{R: r, Alpha: 8}, a); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestRealGreedyCompletionsAndChat(t *testing.T) {
	s := startStack(t)
	for _, c := range s.cases {
		body := fmt.Sprintf(`{"model":"stories260k","prompt":%q,"max_tokens":%d,"temperature":0}`, c.Prompt, len(c.GreedyIDs))
		var r openai.CompletionResponse
		s.postJSON(t, "/v1/completions", body, &r)
		if got := r.Choices[0].Text; got != c.GreedyText {
			t.Errorf("%q: completion\n got %q\nwant %q", c.Prompt, got, c.GreedyText)
		}
		if r.Usage.PromptTokens != len(c.PromptIDs) || r.Usage.CompletionTokens != len(c.GreedyIDs) || *r.Choices[0].FinishReason != "length" {
			t.Errorf("%q: usage %+v finish %s", c.Prompt, r.Usage, *r.Choices[0].FinishReason)
		}
		ids, _ := json.Marshal(c.PromptIDs)
		s.postJSON(t, "/v1/completions", fmt.Sprintf(`{"prompt":%s,"max_tokens":%d,"temperature":0}`, ids, len(c.GreedyIDs)), &r)
		if r.Choices[0].Text != c.GreedyText {
			t.Errorf("%q: token-id prompt gave %q", c.Prompt, r.Choices[0].Text)
		}
		var cr openai.ChatResponse
		s.postJSON(t, "/v1/chat/completions", fmt.Sprintf(`{"model":"stories260k","messages":[{"role":"user","content":%q}],"max_tokens":%d,"temperature":0}`,
			c.Prompt, len(c.GreedyIDs)), &cr)
		if cr.Choices[0].Message.Content != c.GreedyText {
			t.Errorf("%q: chat\n got %q\nwant %q", c.Prompt, cr.Choices[0].Message.Content, c.GreedyText)
		}
	}
}

func TestRealStreamMatchesReference(t *testing.T) {
	s := startStack(t)
	c := s.cases[0]
	code, b := s.post(t, "/v1/chat/completions", fmt.Sprintf(`{"messages":[{"role":"user","content":%q}],"max_tokens":%d,
		"temperature":0,"stream":true,"stream_options":{"include_usage":true},"logprobs":true,"top_logprobs":2}`, c.Prompt, len(c.GreedyIDs)))
	if code != 200 {
		t.Fatalf("%d %s", code, b)
	}
	var text strings.Builder
	var usage *openai.Usage
	tokens := 0
	for _, line := range strings.Split(string(b), "\n\n") {
		data, ok := strings.CutPrefix(line, "data: ")
		if !ok || data == "[DONE]" {
			continue
		}
		var ch openai.ChatChunk
		if err := json.Unmarshal([]byte(data), &ch); err != nil {
			t.Fatalf("%v: %s", err, data)
		}
		if ch.Usage != nil {
			usage = ch.Usage
		}
		for _, cc := range ch.Choices {
			if cc.Delta.Content != nil {
				text.WriteString(*cc.Delta.Content)
			}
			if cc.Logprobs != nil {
				for _, e := range cc.Logprobs.Content {
					tokens++
					// Greedy: the chosen token is the most likely one.
					if len(e.TopLogprobs) != 2 || e.TopLogprobs[0].Logprob > e.Logprob+1e-5 || e.Logprob > 0 {
						t.Errorf("logprob entry %+v", e)
					}
				}
			}
		}
	}
	if text.String() != c.GreedyText || tokens != len(c.GreedyIDs) || usage == nil || usage.CompletionTokens != len(c.GreedyIDs) {
		t.Errorf("stream: %q, %d logprob entries, usage %+v", text.String(), tokens, usage)
	}
}

// TestRealEchoScoring is lm-evaluation-harness's loglikelihood request: the
// reference continuation is greedy, so every continuation token must be
// the argmax of its top_logprobs.
func TestRealEchoScoring(t *testing.T) {
	s := startStack(t)
	c := s.cases[0]
	all, _ := json.Marshal(append(append([]int32{}, c.PromptIDs...), c.GreedyIDs[:10]...))
	var r openai.CompletionResponse
	s.postJSON(t, "/v1/completions", fmt.Sprintf(`{"prompt":[%s],"echo":true,"logprobs":1,"max_tokens":0}`, all), &r)
	lp := r.Choices[0].Logprobs
	n := len(c.PromptIDs) + 10
	if lp == nil || len(lp.Tokens) != n || len(lp.TokenLogprobs) != n || len(lp.TopLogprobs) != n || len(lp.TextOffset) != n {
		t.Fatalf("logprobs %+v", lp)
	}
	if lp.TokenLogprobs[0] != nil || lp.TopLogprobs[0] != nil || r.Usage.CompletionTokens != 0 {
		t.Errorf("first prompt token must have null logprobs: %v %v", lp.TokenLogprobs[0], lp.TopLogprobs[0])
	}
	for i := len(c.PromptIDs); i < n; i++ {
		best, bestLP := "", -1e9
		for tok, v := range lp.TopLogprobs[i] {
			if v > bestLP {
				best, bestLP = tok, v
			}
		}
		if best != lp.Tokens[i] || *lp.TokenLogprobs[i] > 0 {
			t.Errorf("position %d: token %q logprob %v, top %v: not greedy", i, lp.Tokens[i], *lp.TokenLogprobs[i], lp.TopLogprobs[i])
		}
	}
}

func TestRealAdapters(t *testing.T) {
	s := startStack(t)
	c := s.cases[0]
	zero, rand := s.saveLoRA(t, "zero", true), s.saveLoRA(t, "org/noisy", false)
	for name, dir := range map[string]string{"zero": zero, "org/noisy": rand} {
		code, b := s.post(t, "/v1/load_lora_adapter", fmt.Sprintf(`{"lora_name":%q,"lora_path":%q}`, name, dir))
		if code != 200 || string(b) != fmt.Sprintf("Success: LoRA adapter '%s' added successfully.", name) {
			t.Fatalf("load %s: %d %s", name, code, b)
		}
	}
	body := func(model string) string {
		return fmt.Sprintf(`{"model":%q,"prompt":%q,"max_tokens":%d,"temperature":0}`, model, c.Prompt, len(c.GreedyIDs))
	}
	var r openai.CompletionResponse
	s.postJSON(t, "/v1/completions", body("zero"), &r)
	if r.Choices[0].Text != c.GreedyText {
		t.Errorf("a LoRA with B = 0 changed the output: %q", r.Choices[0].Text)
	}
	s.postJSON(t, "/v1/completions", body("stories260k:org/noisy"), &r)
	if r.Choices[0].Text == c.GreedyText {
		t.Error("a random LoRA left the output unchanged: the adapter was not applied")
	}
	// Each adapter was loaded once (to validate it) and served one request.
	resp, err := http.Get(s.url + "/v1/adapters")
	if err != nil {
		t.Fatal(err)
	}
	var ads struct {
		Data []struct {
			ID              string
			Requests, Loads int64
		}
	}
	_ = json.NewDecoder(resp.Body).Decode(&ads)
	resp.Body.Close()
	if len(ads.Data) != 2 {
		t.Fatalf("GET /v1/adapters listed %+v", ads.Data)
	}
	for _, a := range ads.Data {
		if a.Requests != 1 || a.Loads != 1 {
			t.Errorf("%s: %d requests, %d loads; want 1 and 1", a.ID, a.Requests, a.Loads)
		}
	}
	var list openai.ModelList
	resp, err = http.Get(s.url + "/v1/models")
	if err != nil {
		t.Fatal(err)
	}
	_ = json.NewDecoder(resp.Body).Decode(&list)
	resp.Body.Close()
	if len(list.Data) != 3 || list.Data[1].Parent == nil || *list.Data[1].Parent != "stories260k" {
		t.Errorf("models %+v", list.Data)
	}
	code, b := s.post(t, "/v1/load_lora_adapter", fmt.Sprintf(`{"lora_name":"bad","lora_path":%q}`, s.root))
	if code != 400 {
		t.Errorf("loading a non-adapter directory: %d %s", code, b)
	}
}

// TestRealConcurrentMixedAdapters: many clients over the base and two
// adapters, some leaving mid-stream; every finished answer is the one its
// adapter gives alone, and nothing leaks (checked at cleanup).
func TestRealConcurrentMixedAdapters(t *testing.T) {
	s := startStack(t)
	c := s.cases[1]
	for _, name := range []string{"zero", "noisy"} {
		dir := s.saveLoRA(t, name, name == "zero")
		if code, b := s.post(t, "/v1/load_lora_adapter", fmt.Sprintf(`{"lora_name":%q,"lora_path":%q}`, name, dir)); code != 200 {
			t.Fatalf("%d %s", code, b)
		}
	}
	body := func(model string, stream bool) string {
		return fmt.Sprintf(`{"model":%q,"prompt":%q,"max_tokens":24,"temperature":0,"stream":%v}`, model, c.Prompt, stream)
	}
	want := map[string]string{}
	for _, m := range []string{"stories260k", "zero", "noisy"} {
		var r openai.CompletionResponse
		s.postJSON(t, "/v1/completions", body(m, false), &r)
		want[m] = r.Choices[0].Text
	}
	if want["zero"] != want["stories260k"] || want["noisy"] == want["stories260k"] {
		t.Fatalf("solo answers %q", want)
	}
	models := []string{"stories260k", "zero", "noisy"}
	var wg sync.WaitGroup
	for i := range 12 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			m, stream, leave := models[i%3], i%2 == 0, i%4 == 1
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			req, _ := http.NewRequestWithContext(ctx, "POST", s.url+"/v1/completions", strings.NewReader(body(m, stream || leave)))
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			defer resp.Body.Close()
			if leave {
				_, _ = resp.Body.Read(make([]byte, 32))
				cancel()
				return
			}
			b, _ := io.ReadAll(resp.Body)
			var text string
			if stream {
				for _, line := range strings.Split(string(b), "\n\n") {
					var ch openai.CompletionResponse
					if d, ok := strings.CutPrefix(line, "data: "); ok && json.Unmarshal([]byte(d), &ch) == nil && len(ch.Choices) > 0 {
						text += ch.Choices[0].Text
					}
				}
			} else {
				var r openai.CompletionResponse
				_ = json.Unmarshal(b, &r)
				if len(r.Choices) > 0 {
					text = r.Choices[0].Text
				}
			}
			if text != want[m] {
				t.Errorf("%s (stream %v): %q, want %q", m, stream, text, want[m])
			}
		}()
	}
	wg.Wait()
}
