package sched

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/loraplex/loraplex/inference/model"
	"github.com/loraplex/loraplex/inference/sample"
	"github.com/loraplex/loraplex/quant/par"
)

// TestConcurrentMatchesReference submits many requests at once over a mix of
// adapters, prompt lengths and limits, with a KV cache small enough to
// force preemption, and checks every output against one-at-a-time greedy
// decoding.
func TestConcurrentMatchesReference(t *testing.T) {
	cfg := Config{MaxRunning: 5, MaxBatchTokens: 24, PrefillChunk: 8, MaxQueue: 100, Pool: par.New(3)}
	s, f := newFake(t, cfg, 4, 20)
	start(t, s)
	adapters := []*model.Adapter{nil, {ID: "lora-a"}, {ID: "lora-b"}, promptAdapter("pt", 3)}
	rng := rand.New(rand.NewPCG(1, 1))
	const n = 40
	reqs := make([]*Request, n)
	var rel releaseCounter
	rel.n = make([]atomicInt32, n)
	for i := range reqs {
		reqs[i] = &Request{
			Prompt:    seqOf(1+rng.IntN(30), i),
			Adapter:   adapters[i%len(adapters)],
			MaxTokens: 1 + rng.IntN(25),
			Logprobs:  -1,
			IgnoreEOS: i%3 == 0,
			Release:   rel.fn(i),
		}
	}
	var wg sync.WaitGroup
	results := make([]Result, n)
	for i, r := range reqs {
		wg.Go(func() {
			res, err := Generate(context.Background(), s, r)
			if err != nil {
				t.Errorf("request %d: %v", i, err)
			}
			results[i] = res
		})
	}
	wg.Wait()
	for i, r := range reqs {
		want, text := reference(r)
		if !slices.Equal(results[i].Tokens, want) || results[i].Text != text {
			t.Errorf("request %d: got %v %q, want %v %q", i, results[i].Tokens, results[i].Text, want, text)
		}
		wantFinish := FinishLength
		if len(want) < r.MaxTokens {
			wantFinish = FinishStop
		}
		if results[i].Finish != wantFinish {
			t.Errorf("request %d: finish %q, want %q", i, results[i].Finish, wantFinish)
		}
		u := results[i].Usage
		if u.PromptTokens != len(r.Prompt) || u.TotalTokens != u.PromptTokens+u.CompletionTokens || u.CompletionTokens < len(want) {
			t.Errorf("request %d: usage %+v for %d prompt and %d generated tokens", i, u, len(r.Prompt), len(want))
		}
	}
	rel.check(t)
	for _, rows := range f.steps {
		total := 0
		for _, r := range rows {
			total += r
			if r > cfg.PrefillChunk {
				t.Fatalf("a sequence fed %d rows in one step, above PrefillChunk %d", r, cfg.PrefillChunk)
			}
		}
		if total > cfg.MaxBatchTokens || len(rows) > cfg.MaxRunning {
			t.Fatalf("step of %d rows over %d sequences exceeds the limits", total, len(rows))
		}
	}
	st := s.Stats()
	if st.Preemptions == 0 {
		t.Errorf("expected preemptions with 20 blocks of 4 tokens; stats %+v", st)
	}
	if st.KVBlocksUsed != 0 || st.Running != 0 || st.Waiting != 0 {
		t.Errorf("after all requests: %+v", st)
	}
}

// TestPreemptionKeepsEmittedTokens runs three long requests through a cache
// that holds only one of them at full length: the newest is preempted and
// recomputed, and nothing is emitted twice.
func TestPreemptionKeepsEmittedTokens(t *testing.T) {
	s, _ := newFake(t, Config{MaxRunning: 3, PrefillChunk: 4, MaxBatchTokens: 12}, 2, 12)
	var chans []<-chan Event
	var reqs []*Request
	for i := range 3 {
		r := &Request{Prompt: seqOf(6, i), MaxTokens: 16, IgnoreEOS: true, Logprobs: -1}
		ch, err := s.Submit(context.Background(), r)
		if err != nil {
			t.Fatal(err)
		}
		reqs, chans = append(reqs, r), append(chans, ch)
	}
	for s.Stats().Running+s.Stats().Waiting > 0 {
		s.step()
	}
	for i, ch := range chans {
		evs := drain(ch)
		want, _ := reference(reqs[i])
		if got := tokensOf(evs); !slices.Equal(got, want) {
			t.Errorf("request %d: got %v, want %v", i, got, want)
		}
		if n := len(evs); n != len(want)+1 {
			t.Errorf("request %d: %d events for %d tokens", i, n, len(want))
		}
	}
	if st := s.Stats(); st.Preemptions == 0 || st.KVBlocksUsed != 0 {
		t.Errorf("stats %+v: want preemptions and no blocks left", st)
	}
}

// TestCancel covers a client going away while running and while queued:
// the blocks come back, Release runs once and the channel closes.
func TestCancel(t *testing.T) {
	s, _ := newFake(t, Config{MaxRunning: 1}, 4, 16)
	var rel releaseCounter
	rel.n = make([]atomicInt32, 2)
	ctx0, cancel0 := context.WithCancel(context.Background())
	ctx1, cancel1 := context.WithCancel(context.Background())
	ch0, err := s.Submit(ctx0, &Request{Prompt: seqOf(5, 0), MaxTokens: 40, IgnoreEOS: true, Logprobs: -1, Release: rel.fn(0)})
	if err != nil {
		t.Fatal(err)
	}
	ch1, err := s.Submit(ctx1, &Request{Prompt: seqOf(5, 1), MaxTokens: 40, IgnoreEOS: true, Logprobs: -1, Release: rel.fn(1)})
	if err != nil {
		t.Fatal(err)
	}
	s.step()
	s.step()
	if ev := <-ch0; ev.Token < 0 {
		t.Fatalf("first event %+v, want a token", ev)
	}
	if st := s.Stats(); st.Running != 1 || st.Waiting != 1 || st.KVBlocksUsed == 0 {
		t.Fatalf("stats %+v, want one running with blocks and one waiting", st)
	}
	cancel0()
	cancel1()
	s.step()
	drain(ch0)
	drain(ch1)
	rel.check(t)
	if st := s.Stats(); st.Running != 0 || st.Waiting != 0 || st.KVBlocksUsed != 0 {
		t.Errorf("after cancel: %+v", st)
	}
}

func TestQueueFull(t *testing.T) {
	s, _ := newFake(t, Config{MaxQueue: 2}, 4, 16)
	var rel releaseCounter
	rel.n = make([]atomicInt32, 3)
	for i := range 3 {
		_, err := s.Submit(context.Background(), &Request{Prompt: seqOf(3, i), MaxTokens: 2, Release: rel.fn(i)})
		if i < 2 && err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		if i == 2 && !errors.Is(err, ErrQueueFull) {
			t.Fatalf("third request: %v, want ErrQueueFull", err)
		}
	}
	if rel.n[2].Load() != 1 {
		t.Errorf("rejected request released %d times, want 1", rel.n[2].Load())
	}
	for s.Stats().Waiting+s.Stats().Running > 0 {
		s.step()
	}
	rel.check(t)
}

func TestSubmitRejects(t *testing.T) {
	s, _ := newFake(t, Config{}, 4, 16) // 64 KV positions, context 512
	for _, c := range []struct {
		name string
		r    Request
		want error
	}{
		{"empty prompt", Request{}, ErrInvalid},
		{"token outside vocabulary", Request{Prompt: []int32{fakeVocab}}, ErrInvalid},
		{"too many top logprobs", Request{Prompt: []int32{1}, Logprobs: 21}, ErrInvalid},
		{"bad sampling", Request{Prompt: []int32{1}, Sampling: sample.Params{TopP: 2}}, ErrInvalid},
		{"bad prompt-tuning shape", Request{Prompt: []int32{1}, Adapter: &model.Adapter{ID: "x", NumVirtual: 2, Prompt: make([]float32, 3)}}, ErrInvalid},
		{"beyond KV cache", Request{Prompt: seqOf(60, 0), MaxTokens: 5}, ErrTooLong},
		{"virtual tokens count", Request{Prompt: seqOf(50, 0), MaxTokens: 10, Adapter: promptAdapter("pt", 5)}, ErrTooLong},
	} {
		t.Run(c.name, func(t *testing.T) {
			released := 0
			c.r.Release = func() { released++ }
			if _, err := s.Submit(context.Background(), &c.r); !errors.Is(err, c.want) {
				t.Errorf("Submit = %v, want %v", err, c.want)
			}
			if released != 1 {
				t.Errorf("Release called %d times, want 1", released)
			}
		})
	}
	// Without max_tokens a request may fill what is left of the cache.
	res, err := generateBySteps(s, &Request{Prompt: seqOf(60, 0), IgnoreEOS: true, Logprobs: -1})
	if err != nil || len(res) != 4 {
		t.Errorf("unbounded request: %d tokens, %v; want 4 (64 positions - 60)", len(res), err)
	}
}

// generateBySteps runs one request to completion by stepping by hand.
func generateBySteps(s *Scheduler, r *Request) ([]int32, error) {
	ch, err := s.Submit(context.Background(), r)
	if err != nil {
		return nil, err
	}
	for s.Stats().Waiting+s.Stats().Running > 0 {
		s.step()
	}
	evs := drain(ch)
	return tokensOf(evs), last(evs).Err
}

// TestStopStrings scripts the generated tokens and checks what text comes
// out, including stop strings that span several tokens.
func TestStopStrings(t *testing.T) {
	texts := []string{"", "Hel", "lo", " wor", "ld", "!", " EN", "D", "é"}
	for _, c := range []struct {
		name       string
		script     []int32
		stop       []string
		stopIDs    []int32
		max        int
		wantText   string
		wantTokens []int32
		wantFinish string
	}{
		{"no stop", []int32{1, 2, 3, 4}, nil, nil, 4, "Hello world", []int32{1, 2, 3, 4}, FinishLength},
		{"across three tokens", []int32{1, 2, 3, 4}, []string{"lo wo"}, nil, 4, "Hel", []int32{1, 2, 3}, FinishStop},
		{"earliest of several", []int32{1, 2, 3, 4, 5}, []string{"world", "o w"}, nil, 5, "Hell", []int32{1, 2, 3}, FinishStop},
		{"held prefix released at length", []int32{1, 2, 3, 4}, []string{"ld!?"}, nil, 4, "Hello world", []int32{1, 2, 3, 4}, FinishLength},
		{"held prefix released on next token", []int32{1, 2, 3, 4, 5}, []string{"ld?"}, nil, 5, "Hello world!", []int32{1, 2, 3, 4, 5}, FinishLength},
		{"stop at very start", []int32{1, 2}, []string{"Hel"}, nil, 4, "", []int32{1}, FinishStop},
		{"stop id", []int32{1, 2, 7, 3}, nil, []int32{7}, 4, "Hello", []int32{1, 2}, FinishStop},
		{"eos", []int32{1, fakeEOS}, nil, nil, 4, "Hel", []int32{1}, FinishStop},
		{"multibyte", []int32{8, 6, 7}, []string{"é E"}, nil, 3, "", []int32{8, 6}, FinishStop},
	} {
		t.Run(c.name, func(t *testing.T) {
			s, f := newFake(t, Config{}, 4, 16)
			s.vocab = &fakeVocabulary{texts: texts}
			// Script the model: the logits of the script's next token win.
			f.before = func(batch []model.SeqInput) {}
			s.fwd = scripted{f, c.script, 2}
			r := &Request{Prompt: []int32{9, 9}, MaxTokens: c.max, Stop: c.stop, StopIDs: c.stopIDs, Logprobs: -1}
			ch, err := s.Submit(context.Background(), r)
			if err != nil {
				t.Fatal(err)
			}
			for s.Stats().Running+s.Stats().Waiting > 0 {
				s.step()
			}
			evs := drain(ch)
			if got := textOf(evs); got != c.wantText {
				t.Errorf("text %q, want %q", got, c.wantText)
			}
			if got := tokensOf(evs); !slices.Equal(got, c.wantTokens) {
				t.Errorf("tokens %v, want %v", got, c.wantTokens)
			}
			if f := last(evs).Finish; f != c.wantFinish {
				t.Errorf("finish %q, want %q", f, c.wantFinish)
			}
		})
	}
}

// scripted wraps the fake so the token after the prompt is script[i].
type scripted struct {
	f         *fakeModel
	script    []int32
	promptLen int
}

func (s scripted) step(batch []model.SeqInput) ([][]float32, error) {
	out, err := s.f.step(batch)
	for i, in := range batch {
		pos := in.KV.Len - s.promptLen // generated tokens fed so far
		x := out[i][len(out[i])-fakeVocab:]
		clear(x)
		if pos < len(s.script) {
			x[s.script[pos]] = 10
		}
	}
	return out, err
}

// TestFairness queues a burst for one adapter ahead of a single request for
// another: with one slot, round-robin admission serves the second adapter
// right after the first hot request instead of after the whole burst.
func TestFairness(t *testing.T) {
	s, f := newFake(t, Config{MaxRunning: 1}, 4, 64)
	hot, cold := &model.Adapter{ID: "hot"}, &model.Adapter{ID: "cold"}
	var chans []<-chan Event
	submit := func(a *model.Adapter, i int) {
		ch, err := s.Submit(context.Background(), &Request{Prompt: seqOf(3, i), Adapter: a, MaxTokens: 2, IgnoreEOS: true, Logprobs: -1})
		if err != nil {
			t.Fatal(err)
		}
		chans = append(chans, ch)
	}
	for i := range 6 {
		submit(hot, i)
	}
	submit(cold, 99)
	submit(nil, 98)
	st := s.Stats()
	if !slices.Equal(st.WaitingAdapters, []string{"cold", "hot"}) {
		t.Errorf("waiting adapters %v", st.WaitingAdapters)
	}
	var order []string
	f.before = func(batch []model.SeqInput) {
		if batch[0].KV.Len == 0 {
			order = append(order, adapterID(batch[0].Adapter))
		}
	}
	for s.Stats().Running+s.Stats().Waiting > 0 {
		s.step()
		if st := s.Stats(); st.Running == 1 && len(st.RunningAdapters) > 1 {
			t.Fatalf("running adapters %v with one slot", st.RunningAdapters)
		}
	}
	for _, ch := range chans {
		drain(ch)
	}
	want := []string{"hot", "cold", "", "hot", "hot", "hot", "hot", "hot"}
	if !slices.Equal(order, want) {
		t.Errorf("admission order %q, want %q", order, want)
	}
}

// TestChunkedPrefillKeepsDecoding submits a long prompt while another
// sequence decodes: the prompt goes in chunks and the decoding sequence
// gets a token in every one of those steps.
func TestChunkedPrefillKeepsDecoding(t *testing.T) {
	s, f := newFake(t, Config{PrefillChunk: 8, MaxBatchTokens: 9}, 4, 64)
	a, err := s.Submit(context.Background(), &Request{Prompt: seqOf(2, 0), MaxTokens: 30, IgnoreEOS: true, Logprobs: -1})
	if err != nil {
		t.Fatal(err)
	}
	s.step() // a's prompt
	b, err := s.Submit(context.Background(), &Request{Prompt: seqOf(40, 1), MaxTokens: 2, IgnoreEOS: true, Logprobs: -1})
	if err != nil {
		t.Fatal(err)
	}
	for range 5 {
		s.step()
	}
	for i, rows := range f.steps[1:] {
		if !slices.Equal(rows, []int{1, 8}) {
			t.Errorf("step %d: rows per sequence %v, want [1 8] (a decodes while b prefills)", i+1, rows)
		}
	}
	for s.Stats().Running+s.Stats().Waiting > 0 {
		s.step()
	}
	drain(a)
	drain(b)
}

// TestPromptLogprobs checks echo logprobs against the fake's distribution,
// with the prompt split over chunks, and with virtual tokens before it.
func TestPromptLogprobs(t *testing.T) {
	for _, a := range []*model.Adapter{nil, promptAdapter("pt", 3)} {
		t.Run(adapterID(a), func(t *testing.T) {
			s, _ := newFake(t, Config{PrefillChunk: 4}, 4, 16)
			r := &Request{Prompt: seqOf(11, 3), Adapter: a, MaxTokens: 2, IgnoreEOS: true, Logprobs: 2, PromptLogprobs: true}
			ch, err := s.Submit(context.Background(), r)
			if err != nil {
				t.Fatal(err)
			}
			for s.Stats().Running+s.Stats().Waiting > 0 {
				s.step()
			}
			evs := drain(ch)
			got := evs[0].Prompt
			if len(got) != len(r.Prompt) {
				t.Fatalf("%d prompt entries, want %d", len(got), len(r.Prompt))
			}
			var hist []int64
			if a != nil {
				for i := range a.NumVirtual {
					hist = append(hist, embedKey(a.Prompt[i*fakeHidden:]))
				}
			}
			for j, tok := range r.Prompt {
				p := got[j]
				if p.Token != tok {
					t.Fatalf("entry %d is token %d, want %d", j, p.Token, tok)
				}
				if len(hist) == 0 {
					if p.HasLogprob {
						t.Errorf("first token has a logprob without virtual tokens before it")
					}
				} else {
					x := fakeLogits(hist, adapterID(a))
					lse := logSumExp64(x)
					want := float64(x[tok]) - lse
					if !p.HasLogprob || math.Abs(float64(p.Logprob)-want) > 1e-5 {
						t.Errorf("token %d: logprob %v (has %v), want %v", j, p.Logprob, p.HasLogprob, want)
					}
					if len(p.Top) != 2 || p.Top[0].Logprob < p.Top[1].Logprob || math.Abs(float64(p.Top[0].Logprob)-(float64(x[sample.Argmax(x)])-lse)) > 1e-5 {
						t.Errorf("token %d: top %v", j, p.Top)
					}
				}
				hist = append(hist, tokenKey(tok))
			}
			// Generated tokens carry their own logprobs.
			x := fakeLogits(hist, adapterID(a))
			if ev := evs[0]; ev.Token < 0 || math.Abs(float64(ev.Logprob)-(float64(x[ev.Token])-logSumExp64(x))) > 1e-5 || len(ev.Top) != 2 {
				t.Errorf("first generated event %+v", ev)
			}
			for _, ev := range evs[1:] {
				if ev.Prompt != nil {
					t.Errorf("prompt logprobs sent twice")
				}
			}
		})
	}
}

func logSumExp64(x []float32) float64 {
	m := math.Inf(-1)
	for _, v := range x {
		m = max(m, float64(v))
	}
	s := 0.0
	for _, v := range x {
		s += math.Exp(float64(v) - m)
	}
	return m + math.Log(s)
}

// TestForwardErrorIsolated makes the model reject one sequence: only that
// request fails; its batch-mates carry on.
func TestForwardErrorIsolated(t *testing.T) {
	s, f := newFake(t, Config{}, 4, 32)
	bad := &model.Adapter{ID: "broken"}
	f.fail = func(in model.SeqInput) bool { return in.Adapter == bad }
	var rel releaseCounter
	rel.n = make([]atomicInt32, 2)
	good := &Request{Prompt: seqOf(4, 0), MaxTokens: 5, IgnoreEOS: true, Logprobs: -1, Release: rel.fn(0)}
	chGood, err := s.Submit(context.Background(), good)
	if err != nil {
		t.Fatal(err)
	}
	chBad, err := s.Submit(context.Background(), &Request{Prompt: seqOf(4, 1), Adapter: bad, MaxTokens: 5, Logprobs: -1, Release: rel.fn(1)})
	if err != nil {
		t.Fatal(err)
	}
	for s.Stats().Running+s.Stats().Waiting > 0 {
		s.step()
	}
	evGood, evBad := drain(chGood), drain(chBad)
	want, _ := reference(good)
	if got := tokensOf(evGood); !slices.Equal(got, want) {
		t.Errorf("good request got %v, want %v", got, want)
	}
	if e := last(evBad); e.Finish != FinishError || !errors.Is(e.Err, model.ErrBadInput) {
		t.Errorf("bad request ended with %+v", e)
	}
	rel.check(t)
}

// TestClose lets a running request finish within the grace period and cuts
// off one that cannot, in a synctest bubble where each step takes a second.
func TestClose(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s, f := newFake(t, Config{MaxRunning: 1}, 4, 64)
		f.before = func([]model.SeqInput) { time.Sleep(time.Second) }
		go s.loop()
		var rel releaseCounter
		rel.n = make([]atomicInt32, 2)
		short, err := s.Submit(context.Background(), &Request{Prompt: seqOf(2, 0), MaxTokens: 3, IgnoreEOS: true, Logprobs: -1, Release: rel.fn(0)})
		if err != nil {
			t.Fatal(err)
		}
		long, err := s.Submit(context.Background(), &Request{Prompt: seqOf(2, 1), MaxTokens: 100, IgnoreEOS: true, Logprobs: -1, Release: rel.fn(1)})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		var evShort, evLong []Event
		var wg sync.WaitGroup
		wg.Go(func() { evShort = drain(short) })
		wg.Go(func() { evLong = drain(long) })
		if err := s.Close(ctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Close = %v, want DeadlineExceeded", err)
		}
		wg.Wait()
		if e := last(evShort); e.Finish != FinishLength || len(tokensOf(evShort)) != 3 {
			t.Errorf("short request: %d tokens, finish %+v", len(tokensOf(evShort)), e)
		}
		if e := last(evLong); e.Finish != FinishCancelled || !errors.Is(e.Err, ErrClosed) {
			t.Errorf("long request ended with %+v", e)
		}
		if _, err := s.Submit(context.Background(), &Request{Prompt: []int32{1}}); !errors.Is(err, ErrClosed) {
			t.Errorf("Submit after Close = %v, want ErrClosed", err)
		}
		rel.check(t)
	})
}

func TestConfigValidate(t *testing.T) {
	for _, c := range []struct {
		cfg Config
		ok  bool
	}{
		{Config{}, true},
		{Config{MaxRunning: -1}, false},
		{Config{PrefillChunk: 600}, false},
		{Config{PrefillChunk: 600, MaxBatchTokens: 600}, true},
		{Config{KVBytes: -5}, false},
	} {
		if err := c.cfg.Validate(); (err == nil) != c.ok || (err != nil && !errors.Is(err, ErrConfig)) {
			t.Errorf("%+v: Validate = %v, want ok=%v", c.cfg, err, c.ok)
		}
	}
}

// TestSeededSamplingIgnoresBatching samples with a fixed seed while
// requests share steps and get preempted: each output equals sampling the
// same distribution alone, and identical requests agree.
func TestSeededSamplingIgnoresBatching(t *testing.T) {
	s, _ := newFake(t, Config{MaxRunning: 4, PrefillChunk: 4, MaxBatchTokens: 10}, 2, 14)
	start(t, s)
	seed := int64(42)
	var wg sync.WaitGroup
	const n = 8
	reqs := make([]*Request, n)
	results := make([]Result, n)
	for i := range reqs {
		reqs[i] = &Request{Prompt: seqOf(5, i%2), MaxTokens: 18, IgnoreEOS: true, Logprobs: -1,
			Sampling: sample.Params{Temperature: 1.3, TopP: 0.95, Seed: &seed, FrequencyPenalty: 0.5, RepetitionPenalty: 1.2}}
		wg.Go(func() {
			res, err := Generate(context.Background(), s, reqs[i])
			if err != nil {
				t.Error(err)
			}
			results[i] = res
		})
	}
	wg.Wait()
	for i, r := range reqs {
		want, _ := reference(r)
		if !slices.Equal(results[i].Tokens, want) {
			t.Errorf("request %d: got %v, want %v", i, results[i].Tokens, want)
		}
	}
	if s.Stats().Preemptions == 0 {
		t.Errorf("no preemption happened; shrink the cache")
	}
}

// TestPrefillFirst: with PrefillFirst the step that admits a request runs
// only its prompt; the decoding sequence skips it and then both decode. The
// tokens are those of each request alone.
func TestPrefillFirst(t *testing.T) {
	for _, c := range []struct {
		first bool
		want  [][]int // rows per sequence, per step
	}{
		{false, [][]int{{3}, {1, 5}, {1, 1}}},
		{true, [][]int{{3}, {5}, {1, 1}}},
	} {
		s, f := newFake(t, Config{PrefillFirst: c.first}, 4, 64)
		ra := &Request{Prompt: seqOf(3, 0), MaxTokens: 4, IgnoreEOS: true, Logprobs: -1}
		rb := &Request{Prompt: seqOf(5, 7), MaxTokens: 2, IgnoreEOS: true, Logprobs: -1}
		a, err := s.Submit(context.Background(), ra)
		if err != nil {
			t.Fatal(err)
		}
		s.step()
		b, err := s.Submit(context.Background(), rb)
		if err != nil {
			t.Fatal(err)
		}
		for s.Stats().Running+s.Stats().Waiting > 0 {
			s.step()
		}
		// a's 4 tokens need 3 decode rows after its prompt, b's 2 need 1.
		if st := s.Stats(); st.PrefillRows != 8 || st.DecodeRows != 4 || st.PrefillSteps != 2 || st.ProcessedTokens != 12 {
			t.Errorf("PrefillFirst %v: %d prefill rows in %d steps, %d decode rows, %d processed; want 8 in 2, 4, 12",
				c.first, st.PrefillRows, st.PrefillSteps, st.DecodeRows, st.ProcessedTokens)
		}
		for i, want := range c.want {
			if !slices.Equal(f.steps[i], want) {
				t.Errorf("PrefillFirst %v: step %d rows %v, want %v", c.first, i, f.steps[i], want)
			}
		}
		for _, x := range []struct {
			r  *Request
			ch <-chan Event
		}{{ra, a}, {rb, b}} {
			want, _ := reference(x.r)
			if got := tokensOf(drain(x.ch)); !slices.Equal(got, want) {
				t.Errorf("PrefillFirst %v: tokens %v, want %v", c.first, got, want)
			}
		}
	}
}
