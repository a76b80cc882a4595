package loadtest

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"gonum.org/v1/gonum/stat"
)

// Summary describes a latency distribution in milliseconds.
type Summary struct {
	N    int     `json:"n"`
	Mean float64 `json:"mean_ms"`
	P50  float64 `json:"p50_ms"`
	P90  float64 `json:"p90_ms"`
	P99  float64 `json:"p99_ms"`
	Max  float64 `json:"max_ms"`
}

// Summarize computes a Summary of values (in milliseconds). Percentiles are
// gonum's empirical quantiles: the smallest value whose cumulative share
// reaches p.
func Summarize(values []float64) Summary {
	if len(values) == 0 {
		return Summary{}
	}
	x := slices.Clone(values)
	slices.Sort(x)
	return Summary{
		N:    len(x),
		Mean: stat.Mean(x, nil),
		P50:  stat.Quantile(0.50, stat.Empirical, x, nil),
		P90:  stat.Quantile(0.90, stat.Empirical, x, nil),
		P99:  stat.Quantile(0.99, stat.Empirical, x, nil),
		Max:  x[len(x)-1],
	}
}

// AdapterReport is the per-adapter part of a Report.
type AdapterReport struct {
	Requests  int            `json:"requests"`
	Failed    int            `json:"failed"`
	TokensOut int64          `json:"tokens_out"`
	TTFT      Summary        `json:"ttft"`
	E2E       Summary        `json:"e2e"`
	Errors    map[string]int `json:"errors,omitempty"`
}

// Report is the outcome of a run.
type Report struct {
	Endpoint    string  `json:"endpoint"`
	BaseURL     string  `json:"base_url"`
	Adapters    int     `json:"adapters"`
	Popularity  string  `json:"popularity"`
	ZipfS       float64 `json:"zipf_s,omitempty"`
	Concurrency int     `json:"concurrency,omitempty"` // closed loop
	Rate        float64 `json:"rate,omitempty"`        // open loop, requests/s
	Seed        int64   `json:"seed"`
	PromptLen   string  `json:"prompt_len"`
	OutputLen   string  `json:"output_len"`

	Started    time.Time `json:"started"`
	Seconds    float64   `json:"seconds"`
	Requests   int       `json:"requests"`   // finished, successfully or not
	Succeeded  int       `json:"succeeded"`  // streamed to [DONE]
	Failed     int       `json:"failed"`     // by kind in Errors
	Unfinished int       `json:"unfinished"` // cut off by the end of the run
	Late       int       `json:"late"`       // open loop: arrivals delayed by MaxInFlight
	// WarmupRequests were sent during the warm-up and are left out of
	// every other figure; Seconds and Started describe the window after it.
	WarmupRequests int     `json:"warmup_requests,omitempty"`
	WarmupSeconds  float64 `json:"warmup_s,omitempty"`
	RampUpSeconds  float64 `json:"ramp_up_s,omitempty"`

	TokensIn  int64 `json:"tokens_in"`
	TokensOut int64 `json:"tokens_out"`
	// UnfinishedTokensOut are the tokens streamed to requests the end of
	// the run cut off: work the server did within the run.
	UnfinishedTokensOut int64 `json:"unfinished_tokens_out"`

	RequestsPerSec float64 `json:"requests_per_s"` // successful requests
	// OutputTokPerSec counts every token streamed within the run to
	// successful and cut-off requests, so a run bounded by time does not
	// undercount its last, unfinished round of requests.
	OutputTokPerSec float64 `json:"output_tok_per_s"`
	InputTokPerSec  float64 `json:"input_tok_per_s"`

	TTFT Summary `json:"ttft"` // time to first token
	ITL  Summary `json:"itl"`  // gaps between token chunks, all requests pooled
	TPOT Summary `json:"tpot"` // per request: (E2E − TTFT) / (tokens out − 1)
	E2E  Summary `json:"e2e"`

	Errors       map[string]int            `json:"errors,omitempty"`
	ErrorSamples map[string]string         `json:"error_samples,omitempty"` // one message per kind
	PerAdapter   map[string]*AdapterReport `json:"per_adapter"`
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func buildReport(cfg Config, results []result, late int, t0 time.Time, elapsed time.Duration) *Report {
	warm := min(cfg.Warmup, elapsed)
	window := elapsed - warm
	rep := &Report{
		Endpoint: cfg.Endpoint, BaseURL: cfg.BaseURL, Adapters: len(cfg.Adapters), Popularity: cfg.Popularity,
		Seed: cfg.Seed, PromptLen: cfg.PromptTokens.String(), OutputLen: cfg.OutputTokens.String(),
		Started: t0.Add(warm), Seconds: window.Seconds(), Late: late,
		WarmupSeconds: cfg.Warmup.Seconds(), RampUpSeconds: cfg.RampUp.Seconds(),
		Errors: map[string]int{}, ErrorSamples: map[string]string{}, PerAdapter: map[string]*AdapterReport{},
	}
	if cfg.Popularity == Zipf {
		rep.ZipfS = cfg.ZipfS
	}
	if cfg.PromptsFile != "" {
		rep.PromptLen = "file " + cfg.PromptsFile
	}
	if cfg.Rate > 0 {
		rep.Rate = cfg.Rate
	} else {
		rep.Concurrency = cfg.Concurrency
	}
	slices.SortFunc(results, func(a, b result) int { return a.spec.Index - b.spec.Index })
	var ttft, itl, tpot, e2e []float64
	perTTFT := map[string][]float64{}
	perE2E := map[string][]float64{}
	// Tokens that warm-up requests streamed after the warm-up are work done
	// within the window.
	var warmTokens int64
	for _, r := range results {
		if cfg.Warmup > 0 && r.Start.Sub(t0) < cfg.Warmup {
			rep.WarmupRequests++
			warmTokens += tokensAfter(r, t0.Add(warm))
			continue
		}
		if r.Unfinished {
			rep.Unfinished++
			rep.UnfinishedTokensOut += int64(r.TokensOut)
			continue
		}
		a := rep.PerAdapter[r.spec.Adapter]
		if a == nil {
			a = &AdapterReport{}
			rep.PerAdapter[r.spec.Adapter] = a
		}
		rep.Requests++
		a.Requests++
		if r.Err != "" {
			rep.Failed++
			a.Failed++
			rep.Errors[r.Err]++
			if a.Errors == nil {
				a.Errors = map[string]int{}
			}
			a.Errors[r.Err]++
			if _, ok := rep.ErrorSamples[r.Err]; !ok && r.ErrMsg != "" {
				rep.ErrorSamples[r.Err] = r.ErrMsg
			}
			continue
		}
		rep.Succeeded++
		rep.TokensIn += int64(r.TokensIn)
		rep.TokensOut += int64(r.TokensOut)
		a.TokensOut += int64(r.TokensOut)
		e2e = append(e2e, ms(r.E2E))
		perE2E[r.spec.Adapter] = append(perE2E[r.spec.Adapter], ms(r.E2E))
		if r.TTFT > 0 {
			ttft = append(ttft, ms(r.TTFT))
			perTTFT[r.spec.Adapter] = append(perTTFT[r.spec.Adapter], ms(r.TTFT))
		}
		for _, g := range r.Gaps {
			itl = append(itl, ms(g))
		}
		if r.TokensOut > 1 && r.TTFT > 0 {
			tpot = append(tpot, ms(r.E2E-r.TTFT)/float64(r.TokensOut-1))
		}
	}
	rep.TTFT, rep.ITL, rep.TPOT, rep.E2E = Summarize(ttft), Summarize(itl), Summarize(tpot), Summarize(e2e)
	for name, a := range rep.PerAdapter {
		a.TTFT, a.E2E = Summarize(perTTFT[name]), Summarize(perE2E[name])
	}
	if s := window.Seconds(); s > 0 {
		rep.RequestsPerSec = float64(rep.Succeeded) / s
		rep.OutputTokPerSec = float64(rep.TokensOut+rep.UnfinishedTokensOut+warmTokens) / s
		rep.InputTokPerSec = float64(rep.TokensIn) / s
	}
	return rep
}

// tokensAfter counts r's token chunks that arrived after t.
func tokensAfter(r result, t time.Time) int64 {
	if r.TTFT == 0 {
		return 0
	}
	at := r.Start.Add(r.TTFT)
	var n int64
	if !at.Before(t) {
		n++
	}
	for _, g := range r.Gaps {
		at = at.Add(g)
		if !at.Before(t) {
			n++
		}
	}
	return n
}

// WriteJSON writes the report as indented JSON.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// ReadJSON reads a report written by WriteJSON.
func ReadJSON(rd io.Reader) (*Report, error) {
	var r Report
	if err := json.NewDecoder(rd).Decode(&r); err != nil {
		return nil, fmt.Errorf("loadtest: read report: %w", err)
	}
	return &r, nil
}

func (r *Report) mode() string {
	if r.Rate > 0 {
		return fmt.Sprintf("open loop %.4g req/s", r.Rate)
	}
	return fmt.Sprintf("closed loop, concurrency %d", r.Concurrency)
}

// WriteTable writes the report for people: totals, a latency table and a
// per-adapter breakdown (the busiest 20 adapters when there are more).
func (r *Report) WriteTable(w io.Writer) error {
	pop := r.Popularity
	if r.ZipfS > 0 {
		pop += fmt.Sprintf(" s=%.3g", r.ZipfS)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s on %s: %d adapters (%s), %s, prompt %s, output %s, seed %d\n",
		r.Endpoint, r.BaseURL, r.Adapters, pop, r.mode(), r.PromptLen, r.OutputLen, r.Seed)
	fmt.Fprintf(&b, "%.2fs: %d requests, %d ok, %d failed, %d unfinished", r.Seconds, r.Requests, r.Succeeded, r.Failed, r.Unfinished)
	if r.Late > 0 {
		fmt.Fprintf(&b, ", %d late arrivals", r.Late)
	}
	if r.WarmupSeconds > 0 {
		fmt.Fprintf(&b, " (after a %.3gs warm-up of %d requests)", r.WarmupSeconds, r.WarmupRequests)
	}
	fmt.Fprintf(&b, "\nthroughput: %.2f req/s, %.1f output tok/s, %.1f input tok/s (%d tokens out, %d in",
		r.RequestsPerSec, r.OutputTokPerSec, r.InputTokPerSec, r.TokensOut, r.TokensIn)
	if r.UnfinishedTokensOut > 0 {
		fmt.Fprintf(&b, "; %d more out to unfinished requests", r.UnfinishedTokensOut)
	}
	b.WriteString(")\n")
	if len(r.Errors) > 0 {
		b.WriteString("errors:")
		for _, k := range slices.Sorted(maps.Keys(r.Errors)) {
			fmt.Fprintf(&b, " %s %d", k, r.Errors[k])
			if msg := r.ErrorSamples[k]; msg != "" {
				fmt.Fprintf(&b, " (%q)", msg)
			}
		}
		b.WriteString("\n")
	}
	b.WriteString("\n")
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "latency ms\tmean\tp50\tp90\tp99\tmax\tn\t")
	for _, row := range []struct {
		name string
		s    Summary
	}{{"TTFT", r.TTFT}, {"ITL", r.ITL}, {"TPOT", r.TPOT}, {"E2E", r.E2E}} {
		s := row.s
		fmt.Fprintf(tw, "%s\t%.1f\t%.1f\t%.1f\t%.1f\t%.1f\t%d\t\n", row.name, s.Mean, s.P50, s.P90, s.P99, s.Max, s.N)
	}
	tw.Flush()
	if len(r.PerAdapter) > 0 {
		b.WriteString("\n")
		names := slices.Collect(maps.Keys(r.PerAdapter))
		slices.SortFunc(names, func(x, y string) int {
			if d := r.PerAdapter[y].Requests - r.PerAdapter[x].Requests; d != 0 {
				return d
			}
			return strings.Compare(x, y)
		})
		fmt.Fprintln(tw, "adapter\trequests\tfailed\ttok/s\tTTFT p50\tTTFT p99\tE2E p50\tE2E p99\t")
		for i, name := range names {
			if i == 20 {
				fmt.Fprintf(tw, "(%d more)\t\t\t\t\t\t\t\t\n", len(names)-20)
				break
			}
			a := r.PerAdapter[name]
			fmt.Fprintf(tw, "%s\t%d\t%d\t%.1f\t%.1f\t%.1f\t%.1f\t%.1f\t\n", name, a.Requests, a.Failed,
				float64(a.TokensOut)/max(r.Seconds, 1e-9), a.TTFT.P50, a.TTFT.P99, a.E2E.P50, a.E2E.P99)
		}
		tw.Flush()
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// Compare writes, for the headline metrics, run b's value relative to run a
// (b/a): above 1 means b is higher, which is better for throughput and
// worse for latency and errors.
func Compare(w io.Writer, a, b *Report) error {
	var sb strings.Builder
	tw := tabwriter.NewWriter(&sb, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "metric\tA\tB\tB/A\t")
	row := func(name string, x, y float64) {
		ratio := "-"
		if x != 0 {
			ratio = fmt.Sprintf("%.3f", y/x)
		}
		fmt.Fprintf(tw, "%s\t%.2f\t%.2f\t%s\t\n", name, x, y, ratio)
	}
	row("requests/s", a.RequestsPerSec, b.RequestsPerSec)
	row("output tok/s", a.OutputTokPerSec, b.OutputTokPerSec)
	row("TTFT p50 ms", a.TTFT.P50, b.TTFT.P50)
	row("TTFT p99 ms", a.TTFT.P99, b.TTFT.P99)
	row("ITL p50 ms", a.ITL.P50, b.ITL.P50)
	row("ITL p99 ms", a.ITL.P99, b.ITL.P99)
	row("E2E p50 ms", a.E2E.P50, b.E2E.P50)
	row("E2E p99 ms", a.E2E.P99, b.E2E.P99)
	row("error rate", errRate(a), errRate(b))
	tw.Flush()
	_, err := io.WriteString(w, sb.String())
	return err
}

func errRate(r *Report) float64 {
	if r.Requests == 0 {
		return 0
	}
	return float64(r.Failed) / float64(r.Requests)
}
