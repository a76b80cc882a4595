package sched

import (
	"context"
	"sync"
)

// outbox decouples the scheduler from slow readers: the scheduler appends
// events without ever blocking, and a goroutine per request moves them to
// the request's channel.
type outbox struct {
	mu     sync.Mutex
	q      []Event
	closed bool
	wake   chan struct{} // capacity 1: "q or closed changed"
	done   chan struct{} // closed with the final event
}

func newOutbox() *outbox {
	return &outbox{wake: make(chan struct{}, 1), done: make(chan struct{})}
}

// push queues ev; final marks the request's last event.
func (o *outbox) push(ev Event, final bool) {
	o.mu.Lock()
	o.q = append(o.q, ev)
	o.closed = o.closed || final
	o.mu.Unlock()
	select {
	case o.wake <- struct{}{}:
	default:
	}
	if final {
		close(o.done)
	}
}

// pump delivers events to ch until the final one, then closes ch. When ctx
// ends first the reader is gone: pending events are dropped, but ch is only
// closed once the scheduler has finished the request, so a closed channel
// always means its resources are released.
func (o *outbox) pump(ctx context.Context, ch chan<- Event) {
	defer close(ch)
	var batch []Event
	for {
		o.mu.Lock()
		batch = append(batch[:0], o.q...)
		clear(o.q)
		o.q = o.q[:0]
		closed := o.closed
		o.mu.Unlock()
		for _, ev := range batch {
			select {
			case ch <- ev:
			case <-ctx.Done():
				<-o.done
				return
			}
		}
		if closed {
			return
		}
		select {
		case <-o.wake:
		case <-ctx.Done():
			<-o.done
			return
		}
	}
}
