package loadtest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"gonum.org/v1/gonum/stat"
)

type seen struct {
	Model     string
	Prompt    string
	MaxTokens int
	IgnoreEOS bool
}

// fakeServer streams max_tokens fake tokens as OpenAI SSE chunks, followed
// by a usage chunk and [DONE], or misbehaves as mode says.
type fakeServer struct {
	mode string // "", "500", "break", "nodone", "hang", "errorevent", "nousage"
	mu   sync.Mutex
	reqs []seen
}

func (f *fakeServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Model     string    `json:"model"`
		Prompt    string    `json:"prompt"`
		Messages  []Message `json:"messages"`
		MaxTokens int       `json:"max_tokens"`
		Stream    bool      `json:"stream"`
		IgnoreEOS bool      `json:"ignore_eos"`
	}
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil || !body.Stream {
		http.Error(w, "bad request", http.StatusBadRequest)
		return
	}
	chat := r.URL.Path == "/v1/chat/completions"
	if !chat && r.URL.Path != "/v1/completions" {
		http.NotFound(w, r)
		return
	}
	prompt := body.Prompt
	if chat {
		prompt = body.Messages[0].Content
	}
	f.mu.Lock()
	f.reqs = append(f.reqs, seen{body.Model, prompt, body.MaxTokens, body.IgnoreEOS})
	f.mu.Unlock()
	if f.mode == "500" {
		http.Error(w, `{"error":{"message":"boom","type":"server_error"}}`, http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	fl := w.(http.Flusher)
	if f.mode == "hang" {
		fl.Flush()
		<-r.Context().Done()
		return
	}
	for i := range body.MaxTokens {
		if f.mode == "break" && i == 2 {
			panic(http.ErrAbortHandler) // drop the connection mid-stream
		}
		if f.mode == "errorevent" && i == 1 {
			fmt.Fprint(w, "data: {\"error\":{\"message\":\"adapter evicted\"}}\n\n")
			return
		}
		if chat {
			fmt.Fprintf(w, "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\" tok%d\"}}]}\n\n", i)
		} else {
			fmt.Fprintf(w, "data: {\"choices\":[{\"index\":0,\"text\":\" tok%d\"}]}\n\n", i)
		}
		fl.Flush()
	}
	if f.mode == "nodone" {
		return
	}
	if f.mode != "nousage" {
		fmt.Fprintf(w, ": keep-alive comment\n\ndata: {\"choices\":[],\"usage\":{\"prompt_tokens\":%d,\"completion_tokens\":%d}}\n\n",
			len(strings.Fields(prompt)), body.MaxTokens)
	}
	fmt.Fprint(w, "data: [DONE]\n\n")
}

func serve(t *testing.T, mode string) (*fakeServer, string) {
	f := &fakeServer{mode: mode}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return f, srv.URL
}

func TestCountsAndTokensAgree(t *testing.T) {
	for _, endpoint := range []string{Completions, Chat} {
		t.Run(endpoint, func(t *testing.T) {
			f, url := serve(t, "")
			cfg := Config{BaseURL: url, Endpoint: endpoint, Adapters: AdapterNames("a", 3), Concurrency: 4, Requests: 40,
				PromptTokens: Dist{5, 20}, OutputTokens: Dist{1, 9}, IgnoreEOS: true, Seed: 1}
			var progress bytes.Buffer
			cfg.Progress = &progress
			rep, err := Run(context.Background(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			if rep.Requests != 40 || rep.Succeeded != 40 || rep.Failed != 0 || len(f.reqs) != 40 {
				t.Fatalf("requests %d ok %d failed %d, server saw %d", rep.Requests, rep.Succeeded, rep.Failed, len(f.reqs))
			}
			var out, in int64
			byModel := map[string]int{}
			for _, r := range f.reqs {
				out += int64(r.MaxTokens)
				in += int64(len(strings.Fields(r.Prompt)))
				byModel[r.Model]++
				if r.MaxTokens < 1 || r.MaxTokens > 9 || !r.IgnoreEOS {
					t.Errorf("request %+v outside the configured workload", r)
				}
			}
			if rep.TokensOut != out || rep.TokensIn != in {
				t.Errorf("tokens out %d in %d, server sent %d and saw %d", rep.TokensOut, rep.TokensIn, out, in)
			}
			var perAdapter int
			for name, a := range rep.PerAdapter {
				perAdapter += a.Requests
				if a.Requests != byModel[name] {
					t.Errorf("%s: %d requests, server saw %d", name, a.Requests, byModel[name])
				}
			}
			if perAdapter != 40 || rep.E2E.N != 40 || rep.TTFT.N != 40 {
				t.Errorf("per-adapter %d, e2e n %d, ttft n %d", perAdapter, rep.E2E.N, rep.TTFT.N)
			}
			// Every request with k tokens contributes k−1 gaps.
			if want := int(out) - 40; rep.ITL.N != want {
				t.Errorf("ITL n = %d, want %d", rep.ITL.N, want)
			}
			if !(rep.TTFT.P50 <= rep.E2E.P50) || rep.RequestsPerSec <= 0 || rep.OutputTokPerSec <= 0 {
				t.Errorf("implausible report %+v", rep)
			}
			if !strings.Contains(progress.String(), "40 done") {
				t.Errorf("progress line missing: %q", progress.String())
			}
			var table, js bytes.Buffer
			if err := rep.WriteTable(&table); err != nil {
				t.Fatal(err)
			}
			for _, want := range []string{"40 ok", "TTFT", "ITL", "E2E", "a-000"} {
				if !strings.Contains(table.String(), want) {
					t.Errorf("table lacks %q:\n%s", want, table.String())
				}
			}
			if err := rep.WriteJSON(&js); err != nil {
				t.Fatal(err)
			}
			back, err := ReadJSON(&js)
			if err != nil || back.TokensOut != rep.TokensOut || back.PerAdapter["a-000"].Requests != rep.PerAdapter["a-000"].Requests {
				t.Errorf("JSON round trip: %v", err)
			}
		})
	}
}

func TestSeedReproducesSequence(t *testing.T) {
	run := func(seed int64, rate float64) []seen {
		f, url := serve(t, "")
		cfg := Config{BaseURL: url, Adapters: AdapterNames("x", 5), Popularity: Zipf, Concurrency: 1, Requests: 15,
			PromptTokens: Dist{3, 30}, OutputTokens: Dist{1, 5}, Seed: seed, Rate: rate, MaxInFlight: 1}
		if _, err := Run(context.Background(), cfg); err != nil {
			t.Fatal(err)
		}
		return f.reqs
	}
	a, b, c := run(42, 0), run(42, 0), run(43, 0)
	if !slices.Equal(a, b) {
		t.Error("the same seed gave different request sequences")
	}
	if slices.Equal(a, c) {
		t.Error("different seeds gave the same request sequence")
	}
	// Open loop (one at a time, so arrival order is send order) plans the same requests.
	if d := run(42, 5000); !slices.Equal(a, d) {
		t.Error("open loop changed the request sequence")
	}
}

func TestPoissonArrivals(t *testing.T) {
	cfg := Config{Adapters: []string{"m"}, Requests: 20000, Rate: 50, Seed: 9}.WithDefaults()
	w := newWorkload(cfg, nil)
	var last time.Duration
	var gaps []float64
	for {
		s, ok := w.Next()
		if !ok {
			break
		}
		gaps = append(gaps, (s.Arrival - last).Seconds())
		last = s.Arrival
	}
	// Exponential gaps: mean 1/rate and standard deviation 1/rate.
	mean, std := stat.MeanStdDev(gaps, nil)
	if math.Abs(mean-0.02) > 0.001 || math.Abs(std-0.02) > 0.001 {
		t.Errorf("gaps mean %.5f std %.5f, want 0.02 and 0.02", mean, std)
	}
}

func TestZipfPopularity(t *testing.T) {
	cfg := Config{Adapters: AdapterNames("z", 4), Popularity: Zipf, ZipfS: 1, Requests: 100000, Seed: 3}.WithDefaults()
	w := newWorkload(cfg, nil)
	counts := map[string]int{}
	for {
		s, ok := w.Next()
		if !ok {
			break
		}
		counts[s.Adapter]++
	}
	// Weights 1, 1/2, 1/3, 1/4 over their sum 25/12.
	for k, name := range cfg.Adapters {
		want := (1 / float64(k+1)) / (25.0 / 12.0)
		got := float64(counts[name]) / 100000
		if math.Abs(got-want) > 0.01 {
			t.Errorf("%s: share %.4f, want %.4f", name, got, want)
		}
	}
}

func TestPercentilesMatchGonum(t *testing.T) {
	x := make([]float64, 100)
	for i := range x {
		x[i] = float64(i + 1)
	}
	r := rand.New(rand.NewPCG(1, 2))
	r.Shuffle(len(x), func(i, j int) { x[i], x[j] = x[j], x[i] })
	s := Summarize(x)
	// Hand-checked: the empirical quantile of 1..100 at p is 100·p.
	if s.N != 100 || s.P50 != 50 || s.P90 != 90 || s.P99 != 99 || s.Max != 100 || s.Mean != 50.5 {
		t.Errorf("summary of 1..100 = %+v", s)
	}
	y := []float64{0.3, 12, 7.5, 7.5, 1e3, 2, 9.25}
	sorted := slices.Sorted(slices.Values(y))
	s = Summarize(y)
	for p, got := range map[float64]float64{0.5: s.P50, 0.9: s.P90, 0.99: s.P99} {
		if want := stat.Quantile(p, stat.Empirical, sorted, nil); got != want {
			t.Errorf("p%.0f = %v, gonum says %v", p*100, got, want)
		}
	}
	if (Summarize(nil) != Summary{}) {
		t.Error("empty summary is not zero")
	}
}

func TestServerErrors(t *testing.T) {
	cases := []struct {
		mode, kind string
	}{
		{"500", "http_500"},
		{"break", KindBroken},
		{"nodone", KindBroken},
		{"errorevent", KindStreamError},
	}
	for _, c := range cases {
		t.Run(c.mode, func(t *testing.T) {
			_, url := serve(t, c.mode)
			rep, err := Run(context.Background(), Config{BaseURL: url, Adapters: []string{"m"}, Concurrency: 3, Requests: 12,
				OutputTokens: Fixed(5), PromptTokens: Fixed(4)})
			if err != nil {
				t.Fatal(err)
			}
			if rep.Requests != 12 || rep.Failed != 12 || rep.Errors[c.kind] != 12 || rep.Succeeded != 0 {
				t.Errorf("requests %d failed %d errors %v", rep.Requests, rep.Failed, rep.Errors)
			}
			if rep.PerAdapter["m"].Errors[c.kind] != 12 || rep.ErrorSamples[c.kind] == "" {
				t.Errorf("per adapter %+v, samples %v", rep.PerAdapter["m"], rep.ErrorSamples)
			}
			var table bytes.Buffer
			rep.WriteTable(&table)
			if !strings.Contains(table.String(), c.kind+" 12") {
				t.Errorf("table does not show the errors:\n%s", table.String())
			}
		})
	}
}

func TestTokensWithoutUsage(t *testing.T) {
	_, url := serve(t, "nousage")
	rep, err := Run(context.Background(), Config{BaseURL: url, Adapters: []string{"m"}, Requests: 5, OutputTokens: Fixed(7), PromptTokens: Fixed(3)})
	if err != nil {
		t.Fatal(err)
	}
	if rep.TokensOut != 35 || rep.TokensIn != 15 {
		t.Errorf("counted %d out, %d in; want 35 and 15 (chunks and planned words)", rep.TokensOut, rep.TokensIn)
	}
}

func TestUnreachableServer(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	rep, err := Run(context.Background(), Config{BaseURL: url, Adapters: []string{"m"}, Concurrency: 2, Requests: 10})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Errors[KindConnect] != 10 {
		t.Errorf("errors %v, want 10 %s", rep.Errors, KindConnect)
	}
}

func TestEndsOnTime(t *testing.T) {
	for _, rate := range []float64{0, 1000} {
		f, url := serve(t, "hang")
		rep, err := Run(context.Background(), Config{BaseURL: url, Adapters: []string{"m"}, Concurrency: 3, Rate: rate,
			Duration: 150 * time.Millisecond, MaxInFlight: 3})
		if err != nil {
			t.Fatal(err)
		}
		if rep.Requests != 0 || rep.Unfinished == 0 || rep.Unfinished != len(f.reqs) {
			t.Errorf("rate %v: requests %d unfinished %d, server saw %d", rate, rep.Requests, rep.Unfinished, len(f.reqs))
		}
	}
	// A per-request timeout is an error, not an unfinished request.
	_, url := serve(t, "hang")
	rep, err := Run(context.Background(), Config{BaseURL: url, Adapters: []string{"m"}, Concurrency: 2, Requests: 2, Timeout: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Errors[KindTimeout] != 2 {
		t.Errorf("errors %v, want 2 timeouts", rep.Errors)
	}
}

func TestPromptsFile(t *testing.T) {
	f, url := serve(t, "")
	path := filepath.Join(t.TempDir(), "prompts.jsonl")
	lines := `{"prompt": "alpha beta"}

{"messages": [{"role": "user", "content": "gamma delta epsilon"}], "max_tokens": 3}
{"prompt": "zeta", "max_tokens": 2}
`
	os.WriteFile(path, []byte(lines), 0o644)
	rep, err := Run(context.Background(), Config{BaseURL: url, Adapters: []string{"m"}, Requests: 30, PromptsFile: path, OutputTokens: Fixed(4)})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int{"alpha beta": 4, "gamma delta epsilon": 3, "zeta": 2}
	kinds := map[string]bool{}
	for _, r := range f.reqs {
		if n, ok := want[r.Prompt]; !ok || n != r.MaxTokens {
			t.Errorf("request %+v is not from the file", r)
		}
		kinds[r.Prompt] = true
	}
	if len(kinds) != 3 || rep.Succeeded != 30 {
		t.Errorf("used %d of 3 prompts, %d ok", len(kinds), rep.Succeeded)
	}
	for _, bad := range []string{"{\"prompt\": 1}\n", "{}\n", "\n", "{\"prompt\":\"x\",\"max_tokens\":-1}\n"} {
		os.WriteFile(path, []byte(bad), 0o644)
		if _, err := LoadPrompts(path); !errors.Is(err, ErrInvalid) {
			t.Errorf("LoadPrompts(%q) = %v", bad, err)
		}
	}
}

type fakeCreator struct {
	names []string
	seeds []int64
	err   error
}

func (c *fakeCreator) CreateAdapter(_ context.Context, name string, seed int64) error {
	c.names, c.seeds = append(c.names, name), append(c.seeds, seed)
	return c.err
}

func TestAdapterCreator(t *testing.T) {
	_, url := serve(t, "")
	cr := &fakeCreator{}
	cfg := Config{BaseURL: url, Adapters: AdapterNames("new", 3), Requests: 3, Seed: 10, Creator: cr, CreateAdapters: true}
	if _, err := Run(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(cr.names, cfg.Adapters) || !slices.Equal(cr.seeds, []int64{10, 11, 12}) {
		t.Errorf("created %v with seeds %v", cr.names, cr.seeds)
	}
	cfg.Creator = &fakeCreator{err: errors.New("no space")}
	if _, err := Run(context.Background(), cfg); err == nil || !strings.Contains(err.Error(), "no space") {
		t.Errorf("creator failure: %v", err)
	}
}

func TestValidate(t *testing.T) {
	ok := Config{Adapters: []string{"m"}, Requests: 1}
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
	bad := []func(*Config){
		func(c *Config) { c.BaseURL = "localhost:8080" },
		func(c *Config) { c.Endpoint = "embeddings" },
		func(c *Config) { c.Adapters = nil },
		func(c *Config) { c.Adapters = []string{""} },
		func(c *Config) { c.Popularity = "pareto" },
		func(c *Config) { c.ZipfS = -1 },
		func(c *Config) { c.Concurrency = -1 },
		func(c *Config) { c.Rate = -1 },
		func(c *Config) { c.Requests = 0 },
		func(c *Config) { c.PromptTokens = Dist{5, 2} },
		func(c *Config) { c.OutputTokens = Dist{0, 2} },
		func(c *Config) { c.CreateAdapters = true },
	}
	for i, mut := range bad {
		c := ok
		mut(&c)
		if err := c.Validate(); !errors.Is(err, ErrInvalid) {
			t.Errorf("case %d: Validate = %v", i, err)
		}
	}
	for in, want := range map[string]Dist{"128": {128, 128}, "64-256": {64, 256}, " 3 - 4 ": {3, 4}} {
		if got, err := ParseDist(in); err != nil || got != want {
			t.Errorf("ParseDist(%q) = %v, %v", in, got, err)
		}
	}
	for _, in := range []string{"", "0", "5-2", "x", "1-", "-3"} {
		if _, err := ParseDist(in); !errors.Is(err, ErrInvalid) {
			t.Errorf("ParseDist(%q) accepted", in)
		}
	}
}

func TestCompare(t *testing.T) {
	a := &Report{RequestsPerSec: 10, OutputTokPerSec: 100, Requests: 10, TTFT: Summary{P50: 20}}
	b := &Report{RequestsPerSec: 15, OutputTokPerSec: 300, Requests: 10, Failed: 1, TTFT: Summary{P50: 10}}
	var out bytes.Buffer
	if err := Compare(&out, a, b); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"1.500", "3.000", "0.500"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("comparison lacks ratio %s:\n%s", want, out.String())
		}
	}
}

// TestRampUpArrivals checks the open loop's ramp against the expected
// number of arrivals of a rate rising linearly to Rate over RampUp:
// Rate·t²/(2·RampUp) by time t during the ramp, then Rate per second.
func TestRampUpArrivals(t *testing.T) {
	const rate, ramp = 200.0, 10.0
	cfg := Config{Adapters: []string{"m"}, Requests: 20000, Rate: rate, RampUp: 10 * time.Second, Seed: 5}.WithDefaults()
	w := newWorkload(cfg, nil)
	var at []float64
	for {
		s, ok := w.Next()
		if !ok {
			break
		}
		at = append(at, s.Arrival.Seconds())
	}
	for _, c := range []struct{ from, to, want float64 }{
		{0, 5, rate * 25 / (2 * ramp)},
		{5, 10, rate * (100 - 25) / (2 * ramp)},
		{10, 20, rate * 10},
	} {
		n := 0
		for _, x := range at {
			if x >= c.from && x < c.to {
				n++
			}
		}
		// Poisson counts: within 4 standard deviations.
		if math.Abs(float64(n)-c.want) > 4*math.Sqrt(c.want) {
			t.Errorf("arrivals in [%gs, %gs): %d, want about %.0f", c.from, c.to, n, c.want)
		}
	}
}

// TestExactPromptTokens: with a token counter, every generated prompt has
// exactly the drawn number of tokens by that counter.
func TestExactPromptTokens(t *testing.T) {
	count := func(text string) int { // words of more than 4 letters are two tokens
		n := 0
		for _, w := range strings.Fields(text) {
			n += 1 + min(len(w)/5, 1)
		}
		return n
	}
	cfg := Config{Adapters: []string{"m"}, Requests: 500, PromptTokens: Dist{1, 80}, Seed: 2, CountTokens: count}.WithDefaults()
	w := newWorkload(cfg, nil)
	for {
		s, ok := w.Next()
		if !ok {
			break
		}
		if got := count(s.Prompt.Prompt); got != s.PromptLen {
			t.Fatalf("request %d: %d tokens, want %d: %q", s.Index, got, s.PromptLen, s.Prompt.Prompt)
		}
	}
}

// TestWarmupExcluded builds a report by hand: a request sent during the
// warm-up is left out except for the tokens it streamed after it.
func TestWarmupExcluded(t *testing.T) {
	t0 := time.Unix(1000, 0)
	sec := func(x float64) time.Duration { return time.Duration(x * float64(time.Second)) }
	ms100 := sec(0.1)
	results := []result{
		// Sent at 0.5 s: tokens at 0.7, 0.8, ..., 1.3 s, four of them after the 1 s warm-up.
		{spec: spec{Index: 0, Adapter: "m"}, Start: t0.Add(sec(0.5)), TTFT: sec(0.2), Gaps: []time.Duration{ms100, ms100, ms100, ms100, ms100, ms100}, E2E: sec(0.8), TokensOut: 7},
		// Sent at 1.5 s, 3 tokens.
		{spec: spec{Index: 1, Adapter: "m"}, Start: t0.Add(sec(1.5)), TTFT: sec(0.3), Gaps: []time.Duration{ms100, ms100}, E2E: sec(0.5), TokensOut: 3},
	}
	cfg := Config{Adapters: []string{"m"}, Warmup: sec(1), Duration: sec(1)}.WithDefaults()
	rep := buildReport(cfg, results, 0, t0, sec(3))
	if rep.WarmupRequests != 1 || rep.Requests != 1 || rep.TokensOut != 3 || rep.TTFT.N != 1 || rep.TTFT.P50 != 300 {
		t.Errorf("warm-up %d, requests %d, tokens out %d, TTFT %+v", rep.WarmupRequests, rep.Requests, rep.TokensOut, rep.TTFT)
	}
	if rep.Seconds != 2 || rep.OutputTokPerSec != (3+4)/2.0 || !rep.Started.Equal(t0.Add(sec(1))) {
		t.Errorf("window %gs from %v, %g tok/s; want 2s from %v, 3.5 tok/s", rep.Seconds, rep.Started, rep.OutputTokPerSec, t0.Add(sec(1)))
	}
}
