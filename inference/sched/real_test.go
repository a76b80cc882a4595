package sched

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"

	"github.com/loraplex/loraplex/inference/fixtures"
	"github.com/loraplex/loraplex/inference/kvcache"
	"github.com/loraplex/loraplex/inference/model"
	"github.com/loraplex/loraplex/inference/tokenizer"
)

type storyCase struct {
	Prompt     string  `json:"prompt"`
	PromptIDs  []int32 `json:"prompt_ids"`
	GreedyIDs  []int32 `json:"greedy_ids"`
	GreedyText string  `json:"greedy_text"`
}

func loadStories(t *testing.T) (*model.Model, *tokenizer.Tokenizer, []storyCase) {
	t.Helper()
	dir := fixtures.Path(t, "models", "stories260k")
	// Unquantized, so greedy decoding reproduces the float32 reference.
	m, err := model.Load(dir, model.LoadOptions{Quant: "none"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	tok, err := tokenizer.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(filepath.Join(dir, "reference-5.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var cases []storyCase
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var c storyCase
		if err := json.Unmarshal(sc.Bytes(), &c); err != nil {
			t.Fatal(err)
		}
		cases = append(cases, c)
	}
	if err := sc.Err(); err != nil || len(cases) != 5 {
		t.Fatalf("read %d reference cases: %v", len(cases), err)
	}
	return m, tok, cases
}

// TestStories260kGreedyBatched submits the five reference prompts at once
// and checks each continuation, token for token and as text, against the
// reference greedy decoding; once with room to spare, once through a KV
// cache so small that sequences are preempted and recomputed, in small
// prefill chunks.
func TestStories260kGreedyBatched(t *testing.T) {
	m, tok, cases := loadStories(t)
	c := m.Cfg
	block := kvcache.BlockBytes(c.Layers, c.KVHeads, c.HeadDim, 4)
	for _, tc := range []struct {
		name    string
		cfg     Config
		preempt bool
	}{
		{"roomy", Config{KVBytes: 4 << 20}, false},
		// 20 blocks of 4: one sequence needs 14 at full length.
		{"tiny KV", Config{BlockSize: 4, KVBytes: 20 * block, PrefillChunk: 3, MaxBatchTokens: 8}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := New(m, tok, tc.cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close(context.Background())
			var wg sync.WaitGroup
			results := make([]Result, len(cases))
			released := make([]int, len(cases))
			for i, rc := range cases {
				wg.Go(func() {
					r := &Request{Prompt: rc.PromptIDs, MaxTokens: len(rc.GreedyIDs), Logprobs: -1, Release: func() { released[i]++ }}
					res, err := Generate(context.Background(), s, r)
					if err != nil {
						t.Errorf("%q: %v", rc.Prompt, err)
					}
					results[i] = res
				})
			}
			wg.Wait()
			for i, rc := range cases {
				if got := results[i].Tokens; !slices.Equal(got, rc.GreedyIDs) {
					t.Errorf("%q:\n got %v\nwant %v", rc.Prompt, got, rc.GreedyIDs)
				}
				if results[i].Text != rc.GreedyText {
					t.Errorf("%q: text %q, want %q", rc.Prompt, results[i].Text, rc.GreedyText)
				}
				if results[i].Finish != FinishLength || released[i] != 1 {
					t.Errorf("%q: finish %q, released %d times", rc.Prompt, results[i].Finish, released[i])
				}
			}
			st := s.Stats()
			if (st.Preemptions > 0) != tc.preempt || st.KVBlocksUsed != 0 {
				t.Errorf("stats %+v: want preemptions %v and every block back", st, tc.preempt)
			}
		})
	}
}

// TestStories260kPromptLogprobs scores prompt plus reference continuation
// (as lm-evaluation-harness does): every continuation token is the argmax,
// and its logprob equals the one reported while generating it.
func TestStories260kPromptLogprobs(t *testing.T) {
	m, tok, cases := loadStories(t)
	s, err := New(m, tok, Config{PrefillChunk: 16, KVBytes: 4 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(context.Background())
	rc := cases[0]
	gen, err := Generate(context.Background(), s, &Request{Prompt: rc.PromptIDs, MaxTokens: 8, Logprobs: 0})
	if err != nil {
		t.Fatal(err)
	}
	full := append(slices.Clone(rc.PromptIDs), rc.GreedyIDs[:8]...)
	echo, err := Generate(context.Background(), s, &Request{Prompt: full, MaxTokens: 1, Logprobs: 1, PromptLogprobs: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(echo.Prompt) != len(full) || echo.Prompt[0].HasLogprob {
		t.Fatalf("prompt logprobs %+v", echo.Prompt)
	}
	for i, want := range gen.Logprobs {
		p := echo.Prompt[len(rc.PromptIDs)+i]
		if !p.HasLogprob || len(p.Top) != 1 || p.Top[0].ID != p.Token {
			t.Errorf("continuation token %d: %+v is not the greedy choice", i, p)
		}
		if d := p.Logprob - want; d > 1e-4 || d < -1e-4 {
			t.Errorf("continuation token %d: echo logprob %v, generation logprob %v", i, p.Logprob, want)
		}
	}
	if echo.Tokens[0] != rc.GreedyIDs[8] {
		t.Errorf("token after the echoed prompt %d, want %d", echo.Tokens[0], rc.GreedyIDs[8])
	}
}

// BenchmarkStories260kBatch generates 48 tokens for each of 8 concurrent
// requests: the scheduler's throughput over the smallest real model, where
// its own overhead weighs most.
func BenchmarkStories260kBatch(b *testing.B) {
	dir := fixtures.Path(b, "models", "stories260k")
	m, err := model.Load(dir, model.LoadOptions{Quant: "none"})
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	tok, err := tokenizer.Load(dir)
	if err != nil {
		b.Fatal(err)
	}
	s, err := New(m, tok, Config{KVBytes: 16 << 20})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close(context.Background())
	prompt := []int32{1, 403, 407, 261, 378}
	for b.Loop() {
		var wg sync.WaitGroup
		for range 8 {
			wg.Go(func() {
				if _, err := Generate(context.Background(), s, &Request{Prompt: prompt, MaxTokens: 48, Logprobs: -1}); err != nil {
					b.Error(err)
				}
			})
		}
		wg.Wait()
	}
	b.ReportMetric(float64(8*48*b.N)/b.Elapsed().Seconds(), "tokens/s")
}

// TestStories260kScoreOnly scores a prompt without generating (echo with
// max_tokens 0) and matches the logprobs of a request that also generates.
func TestStories260kScoreOnly(t *testing.T) {
	m, tok, cases := loadStories(t)
	s, err := New(m, tok, Config{KVBytes: 4 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(context.Background())
	prompt := cases[1].PromptIDs
	scored, err := Generate(context.Background(), s, &Request{Prompt: prompt, ScoreOnly: true, PromptLogprobs: true, Logprobs: -1})
	if err != nil {
		t.Fatal(err)
	}
	both, err := Generate(context.Background(), s, &Request{Prompt: prompt, MaxTokens: 1, PromptLogprobs: true, Logprobs: -1})
	if err != nil {
		t.Fatal(err)
	}
	if len(scored.Tokens) != 0 || scored.Finish != FinishLength || scored.Usage.CompletionTokens != 0 {
		t.Errorf("score-only result %+v", scored)
	}
	if len(scored.Prompt) != len(prompt) {
		t.Fatalf("%d prompt logprobs, want %d", len(scored.Prompt), len(prompt))
	}
	for i := range prompt {
		if scored.Prompt[i].Logprob != both.Prompt[i].Logprob || scored.Prompt[i].HasLogprob != (i > 0) {
			t.Errorf("token %d: %+v vs %+v", i, scored.Prompt[i], both.Prompt[i])
		}
	}
}

// TestStories260kCancel abandons a long generation after three tokens: its
// blocks return to the pool and Release runs once before the channel closes.
func TestStories260kCancel(t *testing.T) {
	m, tok, cases := loadStories(t)
	s, err := New(m, tok, Config{KVBytes: 4 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(context.Background())
	ctx, cancel := context.WithCancel(context.Background())
	released := 0
	ch, err := s.Submit(ctx, &Request{Prompt: cases[2].PromptIDs, MaxTokens: 400, Logprobs: -1, IgnoreEOS: true, Release: func() { released++ }})
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if ev := <-ch; ev.Token < 0 {
			t.Fatalf("event %+v before three tokens", ev)
		}
	}
	cancel()
	for range ch {
	}
	if st := s.Stats(); released != 1 || st.KVBlocksUsed != 0 || st.Running != 0 {
		t.Errorf("after cancel: released %d times, stats %+v", released, st)
	}
}

// TestStories260kPromptTuningAsEmbeddings uses, as a prompt-tuning prefix,
// the embedding rows of the reference prompt's first two tokens and feeds
// the rest as tokens: the model sees the same inputs, so the greedy
// continuation must equal the reference, even with the prefix split over
// steps (a one-row prefill chunk).
func TestStories260kPromptTuningAsEmbeddings(t *testing.T) {
	m, tok, cases := loadStories(t)
	h := m.Cfg.Hidden
	for _, chunk := range []int{1, 3, 128} {
		s, err := New(m, tok, Config{KVBytes: 4 << 20, PrefillChunk: chunk, MaxBatchTokens: 128})
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		for _, rc := range cases {
			a := &model.Adapter{ID: "pt-" + rc.Prompt, NumVirtual: 2, Prompt: make([]float32, 2*h)}
			for i := range 2 {
				m.Embed.Row(a.Prompt[i*h:(i+1)*h], int(rc.PromptIDs[i]))
			}
			wg.Go(func() {
				res, err := Generate(context.Background(), s, &Request{Prompt: rc.PromptIDs[2:], Adapter: a, MaxTokens: 16, Logprobs: -1})
				if err != nil {
					t.Error(err)
				}
				if !slices.Equal(res.Tokens, rc.GreedyIDs[:16]) {
					t.Errorf("chunk %d, %q: got %v, want %v", chunk, rc.Prompt, res.Tokens, rc.GreedyIDs[:16])
				}
			})
		}
		wg.Wait()
		s.Close(context.Background())
	}
}
