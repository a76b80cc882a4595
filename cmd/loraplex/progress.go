package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/mattn/go-isatty"
)

// progress reports a long operation: a redrawn bar on a terminal, a log line
// every few seconds otherwise (so CI logs and journald stay readable).
type progress struct {
	mu    sync.Mutex
	w     io.Writer
	label string
	tty   bool
	start time.Time
	last  time.Time
	shown bool
}

func newProgress(label string) *progress {
	now := time.Now()
	return &progress{w: os.Stderr, label: label, tty: isatty.IsTerminal(os.Stderr.Fd()), start: now, last: now}
}

// update shows done out of total units, with an optional suffix.
func (p *progress) update(done, total int, suffix string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := time.Now()
	final := done >= total
	if !final && now.Sub(p.last) < p.interval() {
		return
	}
	if final && !p.shown && now.Sub(p.start) < p.interval() {
		return // quick operations stay silent
	}
	p.shown = true
	p.last = now
	frac := 1.0
	if total > 0 {
		frac = float64(done) / float64(total)
	}
	if p.tty {
		const width = 30
		bar := strings.Repeat("=", int(frac*width)) + strings.Repeat(" ", width-int(frac*width))
		fmt.Fprintf(p.w, "\r%s [%s] %3.0f%% %d/%d %s", p.label, bar, 100*frac, done, total, suffix)
		if final {
			fmt.Fprintln(p.w)
		}
		return
	}
	fmt.Fprintf(p.w, "%s: %d/%d (%.0f%%) %s elapsed %s\n", p.label, done, total, 100*frac, suffix, now.Sub(p.start).Round(time.Second))
}

func (p *progress) interval() time.Duration {
	if p.tty {
		return 100 * time.Millisecond
	}
	return 5 * time.Second
}
