package sched

import "slices"

// waitQueue holds sequences waiting for admission. Preempted sequences come
// first, oldest preemption first: they already held a batch slot. New
// requests wait in one FIFO per adapter, and admission takes the adapters in
// turn, so a burst for one adapter cannot starve the others.
type waitQueue struct {
	resumed []*seq
	queues  map[string][]*seq // adapter ID -> FIFO of new requests
	order   []string          // adapters with waiting requests, in rotation order
	next    int               // index in order of the adapter to serve next
	n       int               // new requests waiting (excludes resumed)
}

func (w *waitQueue) len() int { return w.n + len(w.resumed) }

// push appends a new request to its adapter's queue. An adapter that had
// nothing waiting joins the rotation just before the one served next, so it
// is served last in the current round.
func (w *waitQueue) push(q *seq) {
	if w.queues == nil {
		w.queues = make(map[string][]*seq)
	}
	id := q.adapterID
	if len(w.queues[id]) == 0 {
		w.order = slices.Insert(w.order, w.next, id)
		w.next = (w.next + 1) % len(w.order)
	}
	w.queues[id] = append(w.queues[id], q)
	w.n++
}

// resume queues a preempted sequence ahead of every new request.
func (w *waitQueue) resume(q *seq) { w.resumed = append(w.resumed, q) }

// peek returns the sequence to admit next, or nil.
func (w *waitQueue) peek() *seq {
	if len(w.resumed) > 0 {
		return w.resumed[0]
	}
	if len(w.order) == 0 {
		return nil
	}
	return w.queues[w.order[w.next]][0]
}

// pop removes the sequence peek returned and moves the rotation on.
func (w *waitQueue) pop() {
	if len(w.resumed) > 0 {
		w.resumed = slices.Delete(w.resumed, 0, 1)
		return
	}
	id := w.order[w.next]
	w.queues[id] = slices.Delete(w.queues[id], 0, 1)
	w.n--
	if len(w.queues[id]) == 0 {
		w.drop(w.next)
		return
	}
	w.next = (w.next + 1) % len(w.order)
}

// drop removes order[i] from the rotation, keeping the turn where it was.
func (w *waitQueue) drop(i int) {
	delete(w.queues, w.order[i])
	w.order = slices.Delete(w.order, i, i+1)
	if i < w.next {
		w.next--
	}
	if w.next >= len(w.order) {
		w.next = 0
	}
}

// removeIf takes out every waiting sequence for which f is true and
// returns them.
func (w *waitQueue) removeIf(f func(*seq) bool, out []*seq) []*seq {
	keep := w.resumed[:0]
	for _, q := range w.resumed {
		if f(q) {
			out = append(out, q)
		} else {
			keep = append(keep, q)
		}
	}
	clear(w.resumed[len(keep):])
	w.resumed = keep
	for i := 0; i < len(w.order); i++ {
		id := w.order[i]
		list := w.queues[id]
		kept := list[:0]
		for _, q := range list {
			if f(q) {
				out = append(out, q)
				w.n--
			} else {
				kept = append(kept, q)
			}
		}
		clear(list[len(kept):])
		w.queues[id] = kept
		if len(kept) == 0 {
			w.drop(i)
			i--
		}
	}
	return out
}

// adapters appends the distinct non-empty adapter IDs waiting.
func (w *waitQueue) adapters(out []string) []string {
	for _, q := range w.resumed {
		out = append(out, q.adapterID)
	}
	return append(out, w.order...)
}
