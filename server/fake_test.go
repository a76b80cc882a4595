package server

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// fakeEngine is a deterministic stand-in for the scheduler with a byte-level
// tokenizer: token id = byte + 3; 0, 1, 2 are <unk>, <s>, </s>. A sequence
// writes its reply (which names the adapter) byte by byte, then stops, like
// a model that emits EOS.
type fakeEngine struct {
	maxLen   int
	capacity int // live sequences beyond this are refused with ErrQueueFull
	// gate, when set, makes every token wait for a value (or cancellation),
	// so tests can hold sequences in flight.
	gate chan struct{}
	// repeat, when set, makes each event's text that many copies of the
	// token's byte, to fill a client's buffers fast.
	repeat int

	mu        sync.Mutex
	live      int
	submitted []GenRequest
	wg        sync.WaitGroup
}

const fakeVocab = 259

func newFakeEngine() *fakeEngine { return &fakeEngine{maxLen: 128, capacity: 1 << 20} }

func (f *fakeEngine) reply(r *GenRequest) string {
	if r.Adapter != nil {
		return "[" + r.Adapter.(*fakeLease).a.name + "] hello world."
	}
	return "hello world."
}

func (f *fakeEngine) Submit(ctx context.Context, r *GenRequest) (<-chan Event, error) {
	f.mu.Lock()
	if f.live >= f.capacity {
		f.mu.Unlock()
		return nil, fmt.Errorf("fake engine: %w", ErrQueueFull)
	}
	f.live++
	f.submitted = append(f.submitted, *r)
	f.mu.Unlock()
	ch := make(chan Event)
	f.wg.Add(1)
	go f.run(ctx, r, ch)
	return ch, nil
}

func (f *fakeEngine) run(ctx context.Context, r *GenRequest, ch chan<- Event) {
	defer f.wg.Done()
	defer func() {
		close(ch)
		r.Release()
		f.mu.Lock()
		f.live--
		f.mu.Unlock()
	}()
	send := func(ev Event) bool {
		select {
		case ch <- ev:
			return true
		case <-ctx.Done():
			ch <- Event{Token: -1, Finish: "cancelled", Err: ctx.Err()}
			return false
		}
	}
	first := Event{Token: -1}
	if r.PromptLogprobs {
		for i, id := range r.Prompt {
			p := PromptToken{TokenLogprob: TokenLogprob{Token: id, Logprob: -1.25}, HasLogprob: i > 0}
			if i > 0 {
				p.Top = []TokenLogprob{{Token: id, Logprob: -1.25}, {Token: 4, Logprob: -2}}
			}
			first.Prompt = append(first.Prompt, p)
		}
	}
	reply := []byte(f.reply(r))
	var out strings.Builder
	for i := 0; ; i++ {
		ev := first
		first = Event{Token: -1}
		switch {
		case i >= r.MaxTokens:
			ev.Finish = "length"
		case i >= len(reply) && !r.IgnoreEOS:
			ev.Finish = "stop"
		}
		if ev.Finish != "" {
			send(ev)
			return
		}
		if f.gate != nil {
			select {
			case <-f.gate:
			case <-ctx.Done():
				ch <- Event{Token: -1, Finish: "cancelled", Err: ctx.Err()}
				return
			}
		}
		b := reply[i%len(reply)]
		ev.Token, ev.Text = int32(b)+3, string(b)
		if f.repeat > 0 {
			ev.Text = strings.Repeat(ev.Text, f.repeat)
		}
		out.WriteByte(b)
		if r.Logprobs >= 0 {
			ev.Logprob = -0.5
			for k := range r.Logprobs {
				ev.Top = append(ev.Top, TokenLogprob{Token: int32(k) + 3, Logprob: -float32(k+1) - 0.5})
			}
		}
		for _, stop := range r.Stop {
			if stop != "" && strings.HasSuffix(out.String(), stop) {
				ev.Text = ""
				ev.Finish = "stop"
			}
		}
		if !send(ev) || ev.Finish != "" {
			return
		}
	}
}

func (f *fakeEngine) Stats() EngineStats {
	f.mu.Lock()
	defer f.mu.Unlock()
	return EngineStats{Waiting: 2, Running: f.live, KVCacheUsage: 0.25, MaxAdapters: 4}
}

func (f *fakeEngine) Tokenize(text string, addSpecial bool) []int32 {
	var ids []int32
	if addSpecial {
		ids = append(ids, 1)
	}
	for _, b := range []byte(text) {
		ids = append(ids, int32(b)+3)
	}
	return ids
}

func (f *fakeEngine) Detokenize(ids []int32) string {
	var b []byte
	for _, id := range ids {
		if id >= 3 {
			b = append(b, byte(id-3))
		}
	}
	return string(b)
}

func (f *fakeEngine) TokenBytes(id int32) []byte {
	if id < 3 {
		return nil
	}
	return []byte{byte(id - 3)}
}

func (f *fakeEngine) VocabSize() int   { return fakeVocab }
func (f *fakeEngine) MaxModelLen() int { return f.maxLen }

func (f *fakeEngine) RenderChat(msgs []ChatMessage, gen bool) (string, error) {
	var b strings.Builder
	for _, m := range msgs {
		if m.Content == "{% raise %}" {
			return "", fmt.Errorf("%w: conversation roles must alternate", ErrTemplate)
		}
		b.WriteString(m.Role + ": " + m.Content + "\n")
	}
	if gen {
		b.WriteString("assistant:")
	}
	return b.String(), nil
}

func (f *fakeEngine) liveSeqs() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.live
}

type fakeAdapter struct {
	name, path string
	virtual    int
}

// fakeAdapters is an in-memory registry that counts leases.
type fakeAdapters struct {
	mu       sync.Mutex
	store    map[string]*fakeAdapter
	leases   int
	doubles  int // releases of an already released lease
	acquires int
}

func newFakeAdapters(names ...string) *fakeAdapters {
	f := &fakeAdapters{store: map[string]*fakeAdapter{}}
	for _, n := range names {
		f.store[n] = &fakeAdapter{name: n, path: "/adapters/" + n}
	}
	return f
}

type fakeLease struct {
	a        *fakeAdapter
	f        *fakeAdapters
	released bool
}

func (l *fakeLease) Virtual() int { return l.a.virtual }

func (l *fakeLease) Release() {
	l.f.mu.Lock()
	defer l.f.mu.Unlock()
	if l.released {
		l.f.doubles++
		return
	}
	l.released = true
	l.f.leases--
}

func (f *fakeAdapters) Acquire(ctx context.Context, name string) (Lease, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	a, ok := f.store[name]
	if !ok {
		return nil, fmt.Errorf("fake registry: %q: %w", name, ErrModelNotFound)
	}
	f.leases++
	f.acquires++
	return &fakeLease{a: a, f: f}, nil
}

func (f *fakeAdapters) List() []AdapterInfo {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []AdapterInfo
	for _, a := range f.store {
		out = append(out, AdapterInfo{Name: a.name, Type: "lora", Path: a.path, State: "cold", Bytes: 1024, Rank: 8,
			Created: time.Unix(1700000000, 0)})
	}
	return out
}

var errNoConfig = errors.New("no adapter_config.json")

func (f *fakeAdapters) Import(_ context.Context, name, dir string, replace bool) error {
	if strings.Contains(name, "..") || strings.Count(name, "/") > 1 {
		return fmt.Errorf("fake registry: %q: %w", name, ErrInvalidName)
	}
	if _, err := os.Stat(filepath.Join(dir, "adapter_config.json")); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidAdapter, errNoConfig)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.store[name]; ok && !replace {
		return fmt.Errorf("%q: %w", name, ErrAdapterExists)
	}
	f.store[name] = &fakeAdapter{name: name, path: dir}
	return nil
}

func (f *fakeAdapters) Remove(name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.store[name]; !ok {
		return fmt.Errorf("%q: %w", name, ErrModelNotFound)
	}
	delete(f.store, name)
	return nil
}

func (f *fakeAdapters) Stats() AdapterStats {
	f.mu.Lock()
	defer f.mu.Unlock()
	return AdapterStats{Hits: int64(f.acquires), Loads: 3, Evictions: 1, Resident: 1, Total: len(f.store), ResidentBytes: 1024, BudgetBytes: 1 << 20}
}

func (f *fakeAdapters) outstanding() (leases, doubles int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.leases, f.doubles
}
