package loadtest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// ErrInvalid reports a bad Config.
var ErrInvalid = errors.New("invalid load test config")

// Endpoints the load generator can drive.
const (
	Completions = "completions" // POST /v1/completions
	Chat        = "chat"        // POST /v1/chat/completions
	Uniform     = "uniform"     // every adapter equally popular
	Zipf        = "zipf"        // adapter k has weight 1/(k+1)^ZipfS
	defaultURL  = "http://localhost:8080"
)

// Dist is a length distribution: fixed when Min == Max, otherwise uniform
// over [Min, Max].
type Dist struct{ Min, Max int }

// Fixed returns the distribution that is always n.
func Fixed(n int) Dist { return Dist{n, n} }

// ParseDist reads "128" (fixed) or "64-256" (uniform).
func ParseDist(s string) (Dist, error) {
	lo, hi, isRange := strings.Cut(s, "-")
	a, err1 := strconv.Atoi(strings.TrimSpace(lo))
	b, err2 := a, error(nil)
	if isRange {
		b, err2 = strconv.Atoi(strings.TrimSpace(hi))
	}
	if err1 != nil || err2 != nil || a < 1 || b < a {
		return Dist{}, fmt.Errorf("loadtest: %w: length %q: want N or MIN-MAX with 1 <= MIN <= MAX", ErrInvalid, s)
	}
	return Dist{a, b}, nil
}

func (d Dist) String() string {
	if d.Min == d.Max {
		return strconv.Itoa(d.Min)
	}
	return fmt.Sprintf("%d-%d", d.Min, d.Max)
}

// AdapterCreator creates adapters on the server before a run, for servers
// that can make random ones (loraplex). The command wires an implementation.
type AdapterCreator interface {
	// CreateAdapter makes a random adapter called name, reproducibly from seed.
	CreateAdapter(ctx context.Context, name string, seed int64) error
}

// Config describes one load test. The run ends at whichever bound comes
// first: Requests sent and answered, or Duration elapsed.
type Config struct {
	BaseURL  string // server root, e.g. http://localhost:8080 (default)
	Endpoint string // Completions (default) or Chat
	APIKey   string // sent as a bearer token when set

	Adapters   []string // model field values; requests are spread over them
	Popularity string   // Uniform (default) or Zipf
	ZipfS      float64  // Zipf exponent, default 1.0

	// Closed loop: Concurrency workers each send their next request as soon
	// as the previous one finishes. Open loop: when Rate > 0, requests arrive
	// as a Poisson process of Rate per second, at most MaxInFlight at once
	// (an arrival waits when the cap is reached and is counted as late).
	Concurrency int     // default 8
	Rate        float64 // requests per second; 0 = closed loop
	MaxInFlight int     // default 1024

	Requests int           // stop after this many requests (0: no bound)
	Duration time.Duration // stop after this long (0: no bound)
	Timeout  time.Duration // per request, default 5 minutes

	PromptTokens Dist   // prompt length in words (about one token each); default 128
	OutputTokens Dist   // max_tokens; default 128
	PromptsFile  string // JSONL of prompts, overrides PromptTokens (see LoadPrompts)
	IgnoreEOS    bool   // send ignore_eos so every answer has max_tokens tokens
	Temperature  float64

	Seed int64 // the same seed gives the same request sequence

	// Warmup is served but not measured: requests sent in the run's first
	// Warmup are left out of the report, whose window (and throughput)
	// starts after it. A run bounded by Duration lasts Warmup + Duration;
	// Requests counts warm-up requests too.
	Warmup time.Duration
	// RampUp spreads the start of the load: in a closed loop the workers
	// start one by one, evenly over RampUp; in an open loop the arrival rate
	// rises linearly from 0 to Rate over RampUp.
	RampUp time.Duration
	// CountTokens, when set, counts a text's tokens as the server will, so
	// that generated prompts have exactly PromptTokens tokens; without it a
	// prompt has that many words, about one token each.
	CountTokens func(text string) int

	Creator        AdapterCreator // creates Adapters first when set
	CreateAdapters bool

	Progress io.Writer    // live progress line (a terminal); nil for none
	Client   *http.Client // default: a client sized for Concurrency
}

// WithDefaults returns c with unset fields filled in.
func (c Config) WithDefaults() Config {
	if c.BaseURL == "" {
		c.BaseURL = defaultURL
	}
	c.BaseURL = strings.TrimRight(c.BaseURL, "/")
	if c.Endpoint == "" {
		c.Endpoint = Completions
	}
	if c.Popularity == "" {
		c.Popularity = Uniform
	}
	if c.ZipfS == 0 {
		c.ZipfS = 1
	}
	if c.Concurrency == 0 {
		c.Concurrency = 8
	}
	if c.MaxInFlight == 0 {
		c.MaxInFlight = 1024
	}
	if c.Timeout == 0 {
		c.Timeout = 5 * time.Minute
	}
	if c.PromptTokens == (Dist{}) {
		c.PromptTokens = Fixed(128)
	}
	if c.OutputTokens == (Dist{}) {
		c.OutputTokens = Fixed(128)
	}
	return c
}

// Validate checks c after defaults are applied.
func (c Config) Validate() error {
	c = c.WithDefaults()
	bad := func(format string, args ...any) error {
		return fmt.Errorf("loadtest: %w: "+format, append([]any{ErrInvalid}, args...)...)
	}
	u, err := url.Parse(c.BaseURL)
	switch {
	case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
		return bad("base URL %q is not an http(s) URL", c.BaseURL)
	case c.Endpoint != Completions && c.Endpoint != Chat:
		return bad("endpoint %q (want %s or %s)", c.Endpoint, Completions, Chat)
	case len(c.Adapters) == 0:
		return bad("no adapter (model) names")
	case c.Popularity != Uniform && c.Popularity != Zipf:
		return bad("popularity %q (want %s or %s)", c.Popularity, Uniform, Zipf)
	case c.ZipfS <= 0:
		return bad("zipf exponent %g must be positive", c.ZipfS)
	case c.Concurrency < 1:
		return bad("concurrency %d must be at least 1", c.Concurrency)
	case c.Rate < 0:
		return bad("rate %g must not be negative", c.Rate)
	case c.MaxInFlight < 1:
		return bad("max in flight %d must be at least 1", c.MaxInFlight)
	case c.Requests < 0 || c.Duration < 0 || c.Timeout < 0 || c.Warmup < 0 || c.RampUp < 0:
		return bad("requests, duration, timeout, warm-up and ramp-up must not be negative")
	case c.Requests == 0 && c.Duration == 0:
		return bad("set a request count or a duration, or the run never ends")
	case c.PromptTokens.Min < 1 || c.PromptTokens.Max < c.PromptTokens.Min:
		return bad("prompt length %v", c.PromptTokens)
	case c.OutputTokens.Min < 1 || c.OutputTokens.Max < c.OutputTokens.Min:
		return bad("output length %v", c.OutputTokens)
	case c.CreateAdapters && c.Creator == nil:
		return bad("adapter creation asked for, but this server kind cannot create adapters")
	}
	for _, a := range c.Adapters {
		if a == "" {
			return bad("empty adapter name")
		}
	}
	return nil
}

// AdapterNames returns n names "prefix-000", "prefix-001", ...
func AdapterNames(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s-%03d", prefix, i)
	}
	return out
}
