package loadtest

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Run executes the load test described by cfg and returns its report. Errors
// from the server (refused connections, error statuses, broken streams) are
// counted in the report, not returned; Run fails only on a bad config, an
// unreadable prompts file or a failed adapter creation. Cancelling ctx ends
// the run early, with a report of what was done.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	var prompts []Prompt
	if cfg.PromptsFile != "" {
		var err error
		if prompts, err = LoadPrompts(cfg.PromptsFile); err != nil {
			return nil, err
		}
	}
	if cfg.CreateAdapters {
		for i, name := range cfg.Adapters {
			if err := cfg.Creator.CreateAdapter(ctx, name, cfg.Seed+int64(i)); err != nil {
				return nil, fmt.Errorf("loadtest: create adapter %q: %w", name, err)
			}
		}
	}
	client := cfg.Client
	if client == nil {
		conns := cfg.Concurrency
		if cfg.Rate > 0 {
			conns = min(cfg.MaxInFlight, 256)
		}
		client = &http.Client{Transport: &http.Transport{
			Proxy:               http.ProxyFromEnvironment,
			MaxIdleConnsPerHost: conns,
			IdleConnTimeout:     90 * time.Second,
		}}
		defer client.CloseIdleConnections()
	}

	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	if cfg.Duration > 0 {
		runCtx, cancel = context.WithTimeout(runCtx, cfg.Warmup+cfg.Duration)
		defer cancel()
	}
	wl := newWorkload(cfg, prompts)
	st := &state{}
	t0 := time.Now()
	stopProgress := startProgress(cfg, st, t0)
	var wg sync.WaitGroup
	if cfg.Rate > 0 {
		openLoop(runCtx, cfg, client, wl, t0, st, &wg)
	} else {
		for i := range cfg.Concurrency {
			wg.Go(func() {
				if !sleepUntil(runCtx, t0.Add(cfg.RampUp*time.Duration(i)/time.Duration(cfg.Concurrency))) {
					return
				}
				for runCtx.Err() == nil {
					s, ok := wl.Next()
					if !ok {
						return
					}
					st.inFlight.Add(1)
					st.add(do(runCtx, cfg, client, s))
					st.inFlight.Add(-1)
				}
			})
		}
	}
	wg.Wait()
	elapsed := time.Since(t0)
	stopProgress()
	return buildReport(cfg, st.results, st.late, t0, elapsed), nil
}

// sleepUntil waits for t and reports whether ctx is still live.
func sleepUntil(ctx context.Context, t time.Time) bool {
	wait := time.Until(t)
	if wait <= 0 {
		return ctx.Err() == nil
	}
	timer := time.NewTimer(wait)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-timer.C:
		return true
	}
}

// openLoop sends each request at its Poisson arrival time.
func openLoop(ctx context.Context, cfg Config, client *http.Client, wl *workload, t0 time.Time, st *state, wg *sync.WaitGroup) {
	sem := make(chan struct{}, cfg.MaxInFlight)
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		s, ok := wl.Next()
		if !ok {
			return
		}
		if wait := time.Until(t0.Add(s.Arrival)); wait > 0 {
			timer.Reset(wait)
			select {
			case <-ctx.Done():
				return
			case <-timer.C:
			}
		}
		select {
		case sem <- struct{}{}:
		default:
			st.mu.Lock()
			st.late++ // the cap is reached: this arrival has to wait
			st.mu.Unlock()
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				return
			}
		}
		if ctx.Err() != nil {
			<-sem
			return
		}
		st.inFlight.Add(1)
		wg.Go(func() {
			defer func() { <-sem; st.inFlight.Add(-1) }()
			st.add(do(ctx, cfg, client, s))
		})
	}
}

// state collects results while the run goes on.
type state struct {
	mu       sync.Mutex
	results  []result
	late     int
	done     atomic.Int64
	failed   atomic.Int64
	tokens   atomic.Int64
	inFlight atomic.Int64
}

func (s *state) add(r result) {
	s.mu.Lock()
	s.results = append(s.results, r)
	s.mu.Unlock()
	if r.Unfinished {
		return
	}
	s.done.Add(1)
	if r.Err != "" {
		s.failed.Add(1)
	}
	s.tokens.Add(int64(r.TokensOut))
}

// startProgress rewrites one status line on cfg.Progress twice a second.
func startProgress(cfg Config, st *state, t0 time.Time) (stop func()) {
	if cfg.Progress == nil {
		return func() {}
	}
	quit := make(chan struct{})
	var wg sync.WaitGroup
	line := func() {
		el := time.Since(t0).Seconds()
		done, tok := st.done.Load(), st.tokens.Load()
		fmt.Fprintf(cfg.Progress, "\r%6.1fs  %d done  %d failed  %d in flight  %.1f req/s  %.0f tok/s   ",
			el, done, st.failed.Load(), st.inFlight.Load(), float64(done)/el, float64(tok)/el)
	}
	wg.Go(func() {
		tick := time.NewTicker(500 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-quit:
				line()
				fmt.Fprintln(cfg.Progress)
				return
			case <-tick.C:
				line()
			}
		}
	})
	return func() { close(quit); wg.Wait() }
}
