package sched

import (
	"context"
	"fmt"
	"hash/fnv"
	"math"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/loraplex/loraplex/inference/kvcache"
	"github.com/loraplex/loraplex/inference/model"
	"github.com/loraplex/loraplex/inference/sample"
)

const (
	fakeVocab  = 50
	fakeHidden = 2
	fakeEOS    = 0
)

// fakeModel is a deterministic stand-in for the model: the logits at a
// position are a hash of every input before it (tokens, virtual-token
// embeddings and the adapter), so any mistake in what the scheduler feeds,
// in which order or at which position, changes the output.
type fakeModel struct {
	t      testing.TB
	kv     *kvcache.Pool
	before func(batch []model.SeqInput) // runs at the start of every step
	fail   func(in model.SeqInput) bool // rejects a batch containing in

	mu    sync.Mutex
	hist  map[*kvcache.Seq][]int64
	steps [][]int // rows per sequence, per successful step
}

func newFakeModel(t testing.TB, blockSize, blocks int) *fakeModel {
	return &fakeModel{t: t, kv: kvcache.NewPool(1, 1, 1, blockSize, blocks), hist: map[*kvcache.Seq][]int64{}}
}

// key encodes one input position: a token, or an embedding row (negative).
func tokenKey(t int32) int64       { return int64(t) }
func embedKey(row []float32) int64 { return -1 - int64(math.Round(float64(row[0]))) }

// fakeLogits are the logits after the inputs hist under adapter id.
func fakeLogits(hist []int64, adapter string) []float32 {
	h := fnv.New64a()
	fmt.Fprint(h, adapter, hist)
	seed := h.Sum64()
	x := make([]float32, fakeVocab)
	for i := range x {
		seed = seed*6364136223846793005 + 1442695040888963407
		x[i] = float32(seed>>40) / float32(1<<24) * 8
	}
	return x
}

func adapterID(a *model.Adapter) string {
	if a == nil {
		return ""
	}
	return a.ID
}

func (f *fakeModel) step(batch []model.SeqInput) ([][]float32, error) {
	if f.before != nil {
		f.before(batch)
	}
	for _, in := range batch {
		if f.fail != nil && f.fail(in) {
			return nil, fmt.Errorf("%w: rejected by the fake", model.ErrBadInput)
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([][]float32, len(batch))
	rows := make([]int, len(batch))
	for i, in := range batch {
		h := f.hist[in.KV]
		if len(h) < in.KV.Len {
			f.t.Errorf("sequence at position %d but only %d inputs were fed", in.KV.Len, len(h))
			return nil, model.ErrBadInput
		}
		h = h[:in.KV.Len]
		var keys []int64
		for r := 0; r < len(in.Embeds)/fakeHidden; r++ {
			keys = append(keys, embedKey(in.Embeds[r*fakeHidden:]))
		}
		for _, t := range in.Tokens {
			if t < 0 || t >= fakeVocab {
				return nil, model.ErrBadInput
			}
			keys = append(keys, tokenKey(t))
		}
		n := len(keys)
		if in.KV.Cap(f.kv.BlockSize()) < in.KV.Len+n {
			f.t.Errorf("step of %d rows at %d without KV room (cap %d)", n, in.KV.Len, in.KV.Cap(f.kv.BlockSize()))
		}
		var logits []float32
		for j, k := range keys {
			h = append(h, k)
			if in.AllLogits || j == n-1 {
				logits = append(logits, fakeLogits(h, adapterID(in.Adapter))...)
			}
		}
		f.hist[in.KV] = h
		in.KV.Len += n
		out[i], rows[i] = logits, n
	}
	f.steps = append(f.steps, rows)
	return out, nil
}

// fakeVocabulary renders token i as "<i>", or as texts[i] when given.
type fakeVocabulary struct{ texts []string }

type fakeStream struct{ v *fakeVocabulary }

func (v *fakeVocabulary) newStream([]int32) textStream { return fakeStream{v} }
func (v *fakeVocabulary) eos() []int32                 { return []int32{fakeEOS} }
func (s fakeStream) Add(id int32) string {
	if int(id) < len(s.v.texts) {
		return s.v.texts[id]
	}
	return fmt.Sprintf("<%d>", id)
}
func (s fakeStream) Flush() string { return "" }

// newFake builds a scheduler over a fake model, without its loop.
func newFake(t testing.TB, cfg Config, blockSize, blocks int) (*Scheduler, *fakeModel) {
	f := newFakeModel(t, blockSize, blocks)
	s := newScheduler(f, &fakeVocabulary{}, f.kv, shape{vocab: fakeVocab, hidden: fakeHidden, maxContext: 512}, cfg)
	return s, f
}

// start runs the loop and closes the scheduler when the test ends.
func start(t testing.TB, s *Scheduler) {
	go s.loop()
	t.Cleanup(func() {
		if err := s.Close(context.Background()); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
}

// promptAdapter is a prompt-tuning adapter with n virtual tokens whose rows
// are recognisable by the fake.
func promptAdapter(id string, n int) *model.Adapter {
	a := &model.Adapter{ID: id, NumVirtual: n, Prompt: make([]float32, n*fakeHidden)}
	for i := range n {
		a.Prompt[i*fakeHidden] = float32(100 + i)
	}
	return a
}

// reference generates one token at a time with a fresh sampler, straight
// from the fake model's distribution: the oracle the scheduler must match.
func reference(r *Request) (tokens []int32, text string) {
	var hist []int64
	id := adapterID(r.Adapter)
	if a := r.Adapter; a != nil {
		for i := range a.NumVirtual {
			hist = append(hist, embedKey(a.Prompt[i*fakeHidden:]))
		}
	}
	for _, t := range r.Prompt {
		hist = append(hist, tokenKey(t))
	}
	var sb strings.Builder
	smp := sample.New(r.Sampling)
	smp.SetPromptLen(len(r.Prompt))
	seen := slices.Clone(r.Prompt)
	for len(tokens) < r.MaxTokens {
		t := smp.Sample(fakeLogits(hist, id), seen)
		if t == fakeEOS && !r.IgnoreEOS {
			break
		}
		seen = append(seen, t)
		tokens = append(tokens, t)
		fmt.Fprintf(&sb, "<%d>", t)
		hist = append(hist, tokenKey(t))
	}
	return tokens, sb.String()
}

// releaseCounter counts Release calls per request.
type releaseCounter struct{ n []atomic.Int32 }

type atomicInt32 = atomic.Int32

func (c *releaseCounter) fn(i int) func() { return func() { c.n[i].Add(1) } }

func (c *releaseCounter) check(t testing.TB) {
	t.Helper()
	for i := range c.n {
		if n := c.n[i].Load(); n != 1 {
			t.Errorf("request %d: Release called %d times, want 1", i, n)
		}
	}
}

func seqOf(n, from int) []int32 {
	p := make([]int32, n)
	for i := range p {
		p[i] = int32(1 + (from+i*7)%(fakeVocab-1))
	}
	return p
}

func drain(ch <-chan Event) (evs []Event) {
	for ev := range ch {
		evs = append(evs, ev)
	}
	return evs
}

func tokensOf(evs []Event) []int32 {
	var out []int32
	for _, ev := range evs {
		if ev.Token >= 0 {
			out = append(out, ev.Token)
		}
	}
	return out
}

func textOf(evs []Event) string {
	var sb strings.Builder
	for _, ev := range evs {
		sb.WriteString(ev.Text)
	}
	return sb.String()
}

func last(evs []Event) Event {
	if len(evs) == 0 {
		return Event{}
	}
	return evs[len(evs)-1]
}
