package sched

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/loraplex/loraplex/inference/kvcache"
	"github.com/loraplex/loraplex/inference/model"
	"github.com/loraplex/loraplex/inference/sample"
	"github.com/loraplex/loraplex/inference/tokenizer"
	"github.com/loraplex/loraplex/quant/par"
)

// forwarder runs one batched step; *model.Model through modelStep in
// production, a fake in tests.
type forwarder interface {
	step(batch []model.SeqInput) ([][]float32, error)
}

// textStream turns generated ids into text incrementally (tokenizer.Stream).
type textStream interface {
	Add(id int32) string
	Flush() string
}

// vocabulary is what the scheduler needs from the tokenizer.
type vocabulary interface {
	// newStream starts detokenizing the text that follows prompt.
	newStream(prompt []int32) textStream
	eos() []int32
}

type modelStep struct {
	m  *model.Model
	ws *model.Workspace
	kv *kvcache.Pool
	c  Config
}

func (f *modelStep) step(batch []model.SeqInput) ([][]float32, error) {
	return f.m.Step(f.c.Pool, f.ws, f.kv, batch)
}

type tokVocab struct{ t *tokenizer.Tokenizer }

// newStream feeds the prompt through the stream first, so the output is
// decode(prompt + generated) minus decode(prompt): a continuation keeps its
// leading space, and a character split across the boundary comes out whole.
func (v tokVocab) newStream(prompt []int32) textStream {
	st := v.t.NewStream(true)
	for _, t := range prompt {
		st.Add(t)
	}
	return st
}

func (v tokVocab) eos() []int32 { return v.t.EOS() }

// idsOnly serves a model directory without tokenizer files: generation
// works on ids, the text is empty, and EOS comes from the model config.
type idsOnly struct{ eosIDs []int32 }

func (v idsOnly) newStream([]int32) textStream { return noText{} }
func (v idsOnly) eos() []int32                 { return v.eosIDs }

type noText struct{}

func (noText) Add(int32) string { return "" }
func (noText) Flush() string    { return "" }

// shape is the part of the model the scheduler checks requests against.
type shape struct {
	vocab, hidden, maxContext int
}

// Scheduler batches requests over one model. All methods are safe for
// concurrent use.
type Scheduler struct {
	cfg   Config
	fwd   forwarder
	vocab vocabulary
	kv    *kvcache.Pool
	shape shape
	eos   []int32

	mu       sync.Mutex
	cond     *sync.Cond
	wait     waitQueue // guarded by mu
	running  []*seq    // written under mu by the loop only, oldest admission first
	closing  bool      // no new requests
	abort    bool      // cancel everything left
	loopDone chan struct{}

	// Loop-owned scratch, reused every step.
	plan     []planned
	inputs   []model.SeqInput
	logits   [][]float32 // the current step's output, while deciding
	picks    []pick
	decideFn func(lo, hi int)
	reaped   []*seq
	counter  counters
}

type counters struct {
	steps, prompt, generated, processed, preemptions atomic.Uint64
	decodeRows, prefillRows, prefillSteps            atomic.Uint64
	forwardNs, sampleNs, emitNs                      atomic.Int64
}

// New builds a scheduler over m and tok (nil: ids only, no text) with a KV cache sized by
// cfg.KVBytes, and starts its loop. Stop it with Close.
func New(m *model.Model, tok *tokenizer.Tokenizer, cfg Config) (*Scheduler, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	c := m.Cfg
	blocks := cfg.KVBytes / kvcache.BlockBytes(c.Layers, c.KVHeads, c.HeadDim, cfg.BlockSize)
	if blocks < 1 {
		return nil, fmt.Errorf("%w: KVBytes %d holds no block of %d tokens (%d bytes); raise it", ErrConfig,
			cfg.KVBytes, cfg.BlockSize, kvcache.BlockBytes(c.Layers, c.KVHeads, c.HeadDim, cfg.BlockSize))
	}
	kv := kvcache.NewPool(c.Layers, c.KVHeads, c.HeadDim, cfg.BlockSize, int(blocks))
	if cfg.Pool == nil {
		cfg.Pool = par.New(0)
	}
	f := &modelStep{m: m, kv: kv, c: cfg, ws: model.NewWorkspace(m, cfg.MaxBatchTokens, cfg.MaxRunning)}
	maxCtx := c.MaxPos
	if cfg.MaxContext > 0 && (maxCtx <= 0 || cfg.MaxContext < maxCtx) {
		maxCtx = cfg.MaxContext
	}
	var vocab vocabulary = tokVocab{tok}
	if tok == nil {
		eos := make([]int32, len(c.EOS))
		for i, id := range c.EOS {
			eos[i] = int32(id)
		}
		vocab = idsOnly{eosIDs: eos}
	}
	s := newScheduler(f, vocab, kv, shape{vocab: c.Vocab, hidden: c.Hidden, maxContext: maxCtx}, cfg)
	go s.loop()
	return s, nil
}

// newScheduler wires a scheduler without starting its loop (tests drive
// steps by hand).
func newScheduler(f forwarder, v vocabulary, kv *kvcache.Pool, sh shape, cfg Config) *Scheduler {
	s := &Scheduler{cfg: cfg.withDefaults(), fwd: f, vocab: v, kv: kv, shape: sh, eos: v.eos(), loopDone: make(chan struct{})}
	if s.cfg.Pool == nil {
		s.cfg.Pool = par.Serial
	}
	s.cond = sync.NewCond(&s.mu)
	s.decideFn = s.decideRange // bound once: a method value allocates
	return s
}

// Submit queues r and returns the channel its events arrive on. Cancelling
// ctx abandons the request: it leaves the batch at the next step and the
// channel is closed. Errors wrap ErrQueueFull, ErrTooLong, ErrInvalid or
// ErrClosed; r.Release has been called when Submit returns an error.
func (s *Scheduler) Submit(ctx context.Context, r *Request) (<-chan Event, error) {
	q, err := s.newSeq(ctx, r)
	if err == nil {
		err = ctx.Err()
	}
	if err != nil {
		if r.Release != nil {
			r.Release()
		}
		return nil, err
	}
	s.mu.Lock()
	switch {
	case s.closing:
		err = ErrClosed
	case s.wait.len() >= s.cfg.MaxQueue:
		err = fmt.Errorf("%w: %d requests are queued; retry later", ErrQueueFull, s.wait.len())
	default:
		s.wait.push(q)
		s.cond.Signal()
	}
	s.mu.Unlock()
	if err != nil {
		q.release()
		return nil, err
	}
	ch := make(chan Event, 8)
	go q.out.pump(ctx, ch)
	return ch, nil
}

// Close stops accepting requests and lets the queued and running ones
// finish until ctx is done; then the rest end with FinishCancelled and
// ErrClosed. It returns once the loop has stopped: nil, or ctx's error if
// requests had to be cut off.
func (s *Scheduler) Close(ctx context.Context) error {
	s.mu.Lock()
	s.closing = true
	s.cond.Broadcast()
	s.mu.Unlock()
	select {
	case <-s.loopDone:
		return nil
	case <-ctx.Done():
	}
	s.mu.Lock()
	s.abort = true
	s.cond.Broadcast()
	s.mu.Unlock()
	<-s.loopDone
	return ctx.Err()
}

// MaxContext is the most positions (prompt, virtual tokens and generated
// tokens) one request may span: the model's context, or the whole KV cache
// if that is smaller.
func (s *Scheduler) MaxContext() int {
	limit := s.kv.Total() * s.kv.BlockSize()
	if s.shape.maxContext > 0 {
		limit = min(limit, s.shape.maxContext)
	}
	return limit
}

// Stats is a snapshot of the scheduler's load.
type Stats struct {
	Waiting, Running            int
	KVBlocksUsed, KVBlocksTotal int
	// RunningAdapters and WaitingAdapters are the distinct adapter IDs of
	// running and waiting requests, sorted; the base model is not listed.
	RunningAdapters, WaitingAdapters []string
	// Cumulative counters. PromptTokens counts each request's prompt once;
	// ProcessedTokens counts every row fed to the model, recomputation
	// after preemption included.
	Steps, PromptTokens, GeneratedTokens, ProcessedTokens, Preemptions uint64
	// DecodeRows are rows that feed one sequence's latest token;
	// PrefillRows are prompt (or recomputed) rows, and PrefillSteps the
	// steps that had any. Their sum is ProcessedTokens.
	DecodeRows, PrefillRows, PrefillSteps uint64
	// Time the loop spent in the forward pass, in sampling (and logprobs)
	// and in handing tokens to their requests (detokenizing, stop strings,
	// queuing the events), summed over steps.
	ForwardTime, SampleTime, EmitTime time.Duration
}

// Stats returns the current load.
func (s *Scheduler) Stats() Stats {
	var st Stats
	s.mu.Lock()
	st.Waiting, st.Running = s.wait.len(), len(s.running)
	for _, q := range s.running {
		st.RunningAdapters = append(st.RunningAdapters, q.adapterID)
	}
	st.WaitingAdapters = s.wait.adapters(nil)
	s.mu.Unlock()
	st.RunningAdapters, st.WaitingAdapters = distinct(st.RunningAdapters), distinct(st.WaitingAdapters)
	st.KVBlocksUsed, st.KVBlocksTotal = s.kv.Used(), s.kv.Total()
	st.Steps = s.counter.steps.Load()
	st.PromptTokens = s.counter.prompt.Load()
	st.GeneratedTokens = s.counter.generated.Load()
	st.ProcessedTokens = s.counter.processed.Load()
	st.Preemptions = s.counter.preemptions.Load()
	st.DecodeRows = s.counter.decodeRows.Load()
	st.PrefillRows = s.counter.prefillRows.Load()
	st.PrefillSteps = s.counter.prefillSteps.Load()
	st.ForwardTime = time.Duration(s.counter.forwardNs.Load())
	st.SampleTime = time.Duration(s.counter.sampleNs.Load())
	st.EmitTime = time.Duration(s.counter.emitNs.Load())
	return st
}

func distinct(ids []string) []string {
	ids = slices.DeleteFunc(ids, func(id string) bool { return id == "" })
	slices.Sort(ids)
	return slices.Compact(ids)
}

// loop runs steps while there is work, and exits once closing with nothing
// left.
func (s *Scheduler) loop() {
	defer close(s.loopDone)
	for {
		s.mu.Lock()
		for len(s.running) == 0 && s.wait.len() == 0 && !s.closing {
			s.cond.Wait()
		}
		idle := len(s.running) == 0 && s.wait.len() == 0
		s.mu.Unlock()
		if idle { // and closing
			return
		}
		s.step()
	}
}

// seq is one request's state in the scheduler.
type seq struct {
	ctx       context.Context
	req       *Request
	adapterID string
	nv        int // prompt-tuning virtual tokens before the prompt
	embeds    []float32
	tokens    []int32 // prompt followed by generated tokens
	promptLen int
	maxTokens int
	stopIDs   []int32
	kv        kvcache.Seq // KV.Len = positions computed (virtual tokens included)

	sampler *sample.Sampler
	stream  textStream
	stop    stopper
	prompt  []PromptToken // prompt logprobs until sent
	sent    bool          // an event has gone out (prompt logprobs delivered)
	counted bool          // prompt tokens added to the counters
	out     *outbox
	ended   bool
}

func (q *seq) release() {
	if q.req.Release != nil {
		q.req.Release()
	}
}

// total is the number of positions the sequence spans so far.
func (q *seq) total() int { return q.nv + len(q.tokens) }

// newSeq validates r and builds its state.
func (s *Scheduler) newSeq(ctx context.Context, r *Request) (*seq, error) {
	q := &seq{ctx: ctx, req: r, promptLen: len(r.Prompt)}
	if a := r.Adapter; a != nil {
		q.adapterID = a.ID
		if a.NumVirtual > 0 {
			if len(a.Prompt) != a.NumVirtual*s.shape.hidden {
				return nil, fmt.Errorf("%w: adapter %q has %d prompt-tuning values for %d virtual tokens of hidden size %d",
					ErrInvalid, a.ID, len(a.Prompt), a.NumVirtual, s.shape.hidden)
			}
			q.nv, q.embeds = a.NumVirtual, a.Prompt
		}
	}
	used := q.nv + len(r.Prompt)
	if used == 0 {
		return nil, fmt.Errorf("%w: the prompt is empty", ErrInvalid)
	}
	for _, t := range r.Prompt {
		if t < 0 || int(t) >= s.shape.vocab {
			return nil, fmt.Errorf("%w: prompt token %d is outside the vocabulary of %d", ErrInvalid, t, s.shape.vocab)
		}
	}
	if r.Logprobs < -1 || r.Logprobs > MaxTopLogprobs {
		return nil, fmt.Errorf("%w: logprobs = %d, want -1 (none) or 0..%d", ErrInvalid, r.Logprobs, MaxTopLogprobs)
	}
	if r.MaxTokens < 0 {
		return nil, fmt.Errorf("%w: max_tokens = %d must not be negative", ErrInvalid, r.MaxTokens)
	}
	if err := r.Sampling.Validate(s.shape.vocab); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	limit, what := s.MaxContext(), "the context"
	if limit < s.shape.maxContext || s.shape.maxContext <= 0 {
		what = "the KV cache"
	}
	q.maxTokens = r.MaxTokens
	switch {
	case r.ScoreOnly:
		q.maxTokens = 0
	case q.maxTokens == 0:
		q.maxTokens = limit - used
	}
	if q.maxTokens < 1 && !r.ScoreOnly || used+q.maxTokens > limit {
		return nil, fmt.Errorf("%w: %d prompt tokens (%d of them virtual) plus %d to generate exceed %s of %d tokens; shorten the prompt or lower max_tokens",
			ErrTooLong, used, q.nv, q.maxTokens, what, limit)
	}
	q.tokens = make([]int32, len(r.Prompt), len(r.Prompt)+min(q.maxTokens, 1024))
	copy(q.tokens, r.Prompt)
	q.stopIDs = slices.Clone(r.StopIDs)
	if !r.IgnoreEOS {
		q.stopIDs = append(q.stopIDs, s.eos...)
	}
	q.sampler = sample.New(r.Sampling)
	q.sampler.SetPromptLen(len(r.Prompt))
	q.stream = s.vocab.newStream(r.Prompt)
	q.stop = newStopper(r.Stop)
	if r.PromptLogprobs {
		q.prompt = make([]PromptToken, len(r.Prompt))
		for i, t := range r.Prompt {
			q.prompt[i].Token = t
		}
	}
	q.out = newOutbox()
	return q, nil
}
