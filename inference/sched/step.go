package sched

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/loraplex/loraplex/inference/model"
	"github.com/loraplex/loraplex/inference/sample"
)

// planned is one sequence's share of a step: positions [lo, hi).
type planned struct {
	q      *seq
	lo, hi int
}

// step runs one scheduling round: drop abandoned requests, plan the batch
// (running sequences first, then admissions), run the model once and
// consume its logits.
func (s *Scheduler) step() {
	s.reap()
	s.planBatch()
	if len(s.plan) == 0 {
		return
	}
	s.inputs = s.inputs[:0]
	var decode, prefill uint64
	for _, p := range s.plan {
		s.inputs = append(s.inputs, s.input(p))
		if p.hi-p.lo == 1 && p.lo >= p.q.nv+p.q.promptLen {
			decode++
		} else {
			prefill += uint64(p.hi - p.lo)
		}
	}
	s.counter.decodeRows.Add(decode)
	if prefill > 0 {
		s.counter.prefillRows.Add(prefill)
		s.counter.prefillSteps.Add(1)
	}
	s.counter.steps.Add(1)
	t0 := time.Now()
	logits, err := s.fwd.step(s.inputs)
	t1 := time.Now()
	s.counter.forwardNs.Add(int64(t1.Sub(t0)))
	if err == nil {
		// Sampling and logprobs cost O(vocabulary) per sequence: spread
		// them over the pool, then emit in order on this goroutine.
		s.logits = logits
		s.picks = slices.Grow(s.picks[:0], len(s.plan))[:len(s.plan)]
		s.cfg.Pool.For(len(s.plan), 1, s.decideFn)
		s.logits = nil
		t2 := time.Now()
		for i, p := range s.plan {
			s.apply(p.q, &s.picks[i])
		}
		s.counter.sampleNs.Add(int64(t2.Sub(t1)))
		s.counter.emitNs.Add(int64(time.Since(t2)))
		return
	}
	// The model rejected the batch before advancing anything. Run each
	// sequence alone so that only the one at fault fails.
	for i, p := range s.plan {
		logits, err := s.fwd.step(s.inputs[i : i+1])
		if err != nil {
			s.finish(p.q, FinishError, fmt.Errorf("sched: forward step failed: %w", err))
			continue
		}
		var pk pick
		s.decide(p, logits[0], &pk)
		s.apply(p.q, &pk)
	}
}

// pick is the outcome of sampling one sequence in a step.
type pick struct {
	tok     int32 // -1: nothing sampled (still prefilling, or scored)
	scored  bool  // a ScoreOnly request has been through its prompt
	logprob float32
	top     []TokenLogprob
}

func (s *Scheduler) decideRange(lo, hi int) {
	for i := lo; i < hi; i++ {
		s.decide(s.plan[i], s.logits[i], &s.picks[i])
	}
}

// reap ends requests whose context is done, and everything when Close ran
// out of time.
func (s *Scheduler) reap() {
	s.mu.Lock()
	abort := s.abort
	gone := func(q *seq) bool { return abort || q.ctx.Err() != nil }
	s.reaped = s.wait.removeIf(gone, s.reaped[:0])
	s.mu.Unlock()
	for _, q := range s.running {
		if gone(q) {
			s.reaped = append(s.reaped, q)
		}
	}
	for _, q := range s.reaped {
		err := q.ctx.Err()
		if abort {
			err = ErrClosed
		}
		s.finish(q, FinishCancelled, err)
	}
	clear(s.reaped)
}

// planBatch fills s.plan within the step's token budget. Running sequences
// go first, oldest first, each reserving KV room for its rows; when the pool
// is short the newest running sequence is preempted. Waiting sequences are
// then admitted while slots, budget and KV room allow. With PrefillFirst a
// step that can admit requests runs only their prompts.
func (s *Scheduler) planBatch() {
	s.plan = s.plan[:0]
	budget := s.cfg.MaxBatchTokens
	if s.cfg.PrefillFirst {
		if s.admit(budget); len(s.plan) > 0 {
			return
		}
	}
	for i := 0; i < len(s.running) && budget > 0; i++ {
		q := s.running[i]
		n := s.chunk(q, budget)
		if !s.reserve(q, n) {
			break // q itself was preempted, and it was the newest
		}
		s.plan = append(s.plan, planned{q, q.kv.Len, q.kv.Len + n})
		budget -= n
	}
	s.admit(budget)
}

// admit moves waiting sequences into the batch while slots, budget and KV
// room allow.
func (s *Scheduler) admit(budget int) {
	for budget > 0 {
		s.mu.Lock()
		if len(s.running) >= s.cfg.MaxRunning {
			s.mu.Unlock()
			return
		}
		q := s.wait.peek()
		if q == nil {
			s.mu.Unlock()
			return
		}
		n := s.chunk(q, budget)
		// Keep a block of headroom per running sequence so that admitting
		// does not immediately force a preemption.
		need := s.kv.BlocksFor(q.kv.Len+n) - len(q.kv.Blocks)
		if len(s.running) > 0 && s.kv.Available()-need < len(s.running) || s.kv.Reserve(&q.kv, n) != nil {
			s.mu.Unlock()
			return
		}
		s.wait.pop()
		s.running = append(s.running, q)
		s.mu.Unlock()
		s.plan = append(s.plan, planned{q, q.kv.Len, q.kv.Len + n})
		budget -= n
	}
}

// chunk is how many positions q feeds this step: its remaining prompt (or
// recomputation) up to PrefillChunk, or the one token it decodes.
func (s *Scheduler) chunk(q *seq, budget int) int {
	return min(q.total()-q.kv.Len, s.cfg.PrefillChunk, budget)
}

// reserve makes KV room for n more positions of q, preempting the newest
// running sequences as needed. It reports false when q itself had to go.
func (s *Scheduler) reserve(q *seq, n int) bool {
	for {
		err := s.kv.Reserve(&q.kv, n)
		if err == nil {
			return true
		}
		// s.running is in admission order: the last was admitted most recently.
		victim := s.running[len(s.running)-1]
		s.preempt(victim)
		if victim == q {
			return false
		}
	}
}

// preempt frees q's KV blocks and sends it back to the front of the queue;
// it will recompute prompt and generated tokens and carry on from there.
func (s *Scheduler) preempt(q *seq) {
	s.kv.Free(&q.kv)
	s.mu.Lock()
	s.running = slices.DeleteFunc(s.running, func(r *seq) bool { return r == q })
	s.wait.resume(q)
	s.mu.Unlock()
	// A planned entry for q would refer to freed blocks.
	s.plan = slices.DeleteFunc(s.plan, func(p planned) bool { return p.q == q })
	s.counter.preemptions.Add(1)
}

// input builds the model input for positions [p.lo, p.hi) of p.q: the
// virtual-token embeddings that fall in range, then the tokens.
func (s *Scheduler) input(p planned) model.SeqInput {
	q := p.q
	in := model.SeqInput{KV: &q.kv, Adapter: q.req.Adapter}
	if p.lo < q.nv {
		h := s.shape.hidden
		in.Embeds = q.embeds[p.lo*h : min(p.hi, q.nv)*h]
	}
	in.Tokens = q.tokens[max(p.lo-q.nv, 0):max(p.hi-q.nv, 0)]
	// Position j predicts prompt token j+1-nv: rows are needed for every
	// position in range that predicts one, while the prompt's are unsent.
	in.AllLogits = q.prompt != nil && !q.sent && p.lo < q.nv+q.promptLen-1 && p.hi >= q.nv
	s.counter.processed.Add(uint64(p.hi - p.lo))
	return in
}

// decide consumes q's logits for positions [p.lo, p.hi): prompt
// log-probabilities if asked, then, once every position so far is
// computed, the next token. It touches only p.q, so sequences are decided
// in parallel.
func (s *Scheduler) decide(p planned, logits []float32, pk *pick) {
	q, v := p.q, s.shape.vocab
	rows := len(logits) / v
	if q.prompt != nil && !q.sent {
		for r := range rows {
			// Rows are the last positions of the range.
			j := p.hi - rows + r + 1 - q.nv
			if j >= 0 && j < q.promptLen {
				s.scorePrompt(q, j, logits[r*v:(r+1)*v])
			}
		}
	}
	*pk = pick{tok: -1}
	if p.hi < q.total() {
		return
	}
	if q.maxTokens == 0 {
		pk.scored = true
		return
	}
	row := logits[(rows-1)*v : rows*v]
	pk.tok = q.sampler.Sample(row, q.tokens)
	if n := q.req.Logprobs; n >= 0 {
		lse := sample.LogSumExp(row)
		pk.logprob = sample.Logprob(row, lse, pk.tok)
		if n > 0 {
			pk.top = sample.TopLogprobs(make([]TokenLogprob, 0, n), row, lse, n)
		}
	}
}

func (s *Scheduler) scorePrompt(q *seq, j int, row []float32) {
	lse := sample.LogSumExp(row)
	pt := &q.prompt[j]
	pt.HasLogprob = true
	pt.Logprob = sample.Logprob(row, lse, pt.Token)
	if n := q.req.Logprobs; n > 0 {
		pt.Top = sample.TopLogprobs(pt.Top[:0], row, lse, n)
	}
}

// apply appends the token decide picked and emits it, ending q when it
// stops or reaches its limit.
func (s *Scheduler) apply(q *seq, pk *pick) {
	if pk.scored {
		s.counter.prompt.Add(uint64(q.promptLen))
		s.end(q, Event{Token: -1, Finish: FinishLength})
		return
	}
	if pk.tok < 0 {
		return
	}
	if !q.counted {
		q.counted = true
		s.counter.prompt.Add(uint64(q.promptLen))
	}
	tok := pk.tok
	q.tokens = append(q.tokens, tok)
	s.counter.generated.Add(1)
	if slices.Contains(q.stopIDs, tok) {
		s.finish(q, FinishStop, nil)
		return
	}
	ev := Event{Token: tok, Logprob: pk.logprob, Top: pk.top}
	text, stopped := q.stop.push(q.stream.Add(tok))
	ev.Text = text
	s.emit(q, ev, false)
	switch {
	case stopped:
		s.finishStopped(q)
	case len(q.tokens)-q.promptLen >= q.maxTokens:
		s.finish(q, FinishLength, nil)
	}
}

func (s *Scheduler) emit(q *seq, ev Event, final bool) {
	if !q.sent {
		q.sent = true
		ev.Prompt = q.prompt
	}
	q.out.push(ev, final)
}

// finish ends q: frees its KV blocks, takes it out of the batch, releases
// the request and sends the final event. For a normal end the detokenizer's
// and the stop filter's held text goes out first.
func (s *Scheduler) finish(q *seq, reason string, err error) {
	text := ""
	if reason == FinishStop || reason == FinishLength {
		var stopped bool
		text, stopped = q.stop.push(q.stream.Flush())
		if stopped {
			reason = FinishStop
		} else {
			text += q.stop.flush()
		}
	}
	s.end(q, Event{Token: -1, Text: text, Finish: reason, Err: err})
}

// finishStopped ends q after a stop string: nothing held back is emitted.
func (s *Scheduler) finishStopped(q *seq) {
	s.end(q, Event{Token: -1, Finish: FinishStop})
}

func (s *Scheduler) end(q *seq, ev Event) {
	if q.ended {
		return
	}
	q.ended = true
	s.kv.Free(&q.kv)
	s.mu.Lock()
	s.running = slices.DeleteFunc(s.running, func(r *seq) bool { return r == q })
	s.mu.Unlock()
	q.release()
	gen := len(q.tokens) - q.promptLen
	ev.Usage = Usage{PromptTokens: q.promptLen, CompletionTokens: gen, TotalTokens: q.promptLen + gen}
	if ev.Err != nil && !errors.Is(ev.Err, ErrClosed) && ev.Finish == FinishCancelled {
		ev.Err = fmt.Errorf("sched: request cancelled: %w", ev.Err)
	}
	s.emit(q, ev, true)
}
