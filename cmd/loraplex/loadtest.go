package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/mattn/go-isatty"

	"github.com/loraplex/loraplex/loadtest"
)

func init() {
	register(command{"loadtest", "drive an OpenAI-compatible server with streaming requests and report throughput and latency", runLoadtest})
}

func runLoadtest(ctx context.Context, args []string) error {
	fs := newFlags("loadtest")
	var (
		c                   loadtest.Config
		nAdapters, rank     int
		names               []string
		baseModel, adminKey string
		prompt, output      string
		jsonOut, compare    string
		create              bool
	)
	fs.StringVar(&c.BaseURL, "url", "http://localhost:8080", "server root URL")
	fs.StringVar(&c.Endpoint, "endpoint", loadtest.Completions, "completions or chat")
	fs.StringVar(&c.APIKey, "api-key", os.Getenv("LORAPLEX_API_KEY"), "bearer token for the requests (env LORAPLEX_API_KEY)")
	fs.IntVar(&nAdapters, "adapters", 0, "spread requests over N adapters named loadtest-000, loadtest-001, ...")
	fs.StringSliceVar(&names, "adapter-names", nil, "spread requests over these adapter (model) names")
	fs.StringVar(&baseModel, "base-model", "", "the base model's name: requests that use no adapter (with adapters: one more name in the mix)")
	fs.StringVar(&c.Popularity, "popularity", loadtest.Uniform, "adapter popularity: uniform or zipf")
	fs.Float64Var(&c.ZipfS, "zipf-s", 1, "zipf exponent: adapter k gets weight 1/(k+1)^s")
	fs.IntVar(&c.Concurrency, "concurrency", 8, "closed loop: requests in flight")
	fs.Float64Var(&c.Rate, "rate", 0, "open loop: Poisson arrivals per second (0: closed loop)")
	fs.IntVar(&c.MaxInFlight, "max-in-flight", 1024, "open loop: cap on requests in flight")
	fs.IntVar(&c.Requests, "requests", 0, "stop after this many requests (default 100 when --duration is unset)")
	fs.DurationVar(&c.Duration, "duration", 0, "stop after this long")
	fs.DurationVar(&c.Timeout, "timeout", 0, "per-request timeout (default 5m)")
	fs.DurationVar(&c.Warmup, "warmup", 0, "serve this long first without measuring (requests sent meanwhile are left out of the report)")
	fs.DurationVar(&c.RampUp, "ramp-up", 0, "closed loop: start the workers evenly over this long; open loop: raise the rate linearly from 0 over this long")
	fs.StringVar(&prompt, "prompt-tokens", "128", "prompt length in tokens: N or MIN-MAX")
	fs.StringVar(&output, "output-tokens", "128", "max_tokens: N or MIN-MAX")
	fs.StringVar(&c.PromptsFile, "prompts", "", `JSONL prompts file: {"prompt": ...} or {"messages": [...]} per line, optional "max_tokens"`)
	fs.BoolVar(&c.IgnoreEOS, "ignore-eos", false, "ask for exactly max_tokens tokens (ignore_eos)")
	fs.Float64Var(&c.Temperature, "temperature", 0, "sampling temperature")
	fs.Int64Var(&c.Seed, "seed", 1, "the same seed sends the same request sequence")
	fs.BoolVar(&create, "create-adapters", false, "first create the adapters on the server as random LoRAs (loraplex servers; existing ones are kept)")
	fs.IntVar(&rank, "adapter-rank", 16, "rank of created adapters")
	fs.StringVar(&adminKey, "admin-key", os.Getenv("LORAPLEX_ADMIN_KEY"), "admin key for --create-adapters (default: the API key; env LORAPLEX_ADMIN_KEY)")
	fs.StringVar(&jsonOut, "json", "", "also write the report as JSON to this file")
	fs.StringVar(&compare, "compare", "", "compare two saved reports instead of running: --compare A.json B.json")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if compare != "" {
		if fs.NArg() != 1 {
			return errors.New("--compare takes two reports: --compare A.json B.json")
		}
		return compareReports(compare, fs.Arg(0))
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	var err error
	if c.PromptTokens, err = loadtest.ParseDist(prompt); err != nil {
		return fmt.Errorf("--prompt-tokens: %w", err)
	}
	if c.OutputTokens, err = loadtest.ParseDist(output); err != nil {
		return fmt.Errorf("--output-tokens: %w", err)
	}
	if c.Requests == 0 && c.Duration == 0 {
		c.Requests = 100
	}
	switch {
	case nAdapters < 0:
		return fmt.Errorf("--adapters %d must not be negative", nAdapters)
	case nAdapters > 0 && len(names) > 0:
		return errors.New("give --adapters or --adapter-names, not both")
	case nAdapters == 0 && len(names) == 0 && baseModel == "":
		return errors.New("nothing to request: give --adapters N, --adapter-names or --base-model")
	}
	if nAdapters > 0 {
		names = loadtest.AdapterNames("loadtest", nAdapters)
	}
	c.Adapters = names
	if create {
		if adminKey == "" {
			adminKey = c.APIKey
		}
		c.CreateAdapters = true
		c.Creator = loadtest.HTTPCreator{BaseURL: c.BaseURL, APIKey: adminKey, R: rank}
	}
	if baseModel != "" {
		// The base goes last so that --create-adapters skips it.
		c.Adapters = append(c.Adapters, baseModel)
	}
	if isatty.IsTerminal(os.Stderr.Fd()) {
		c.Progress = os.Stderr
	}
	rep, err := runWithCreation(ctx, c, len(names))
	if err != nil {
		return err
	}
	if jsonOut != "" {
		if err := writeReport(jsonOut, rep); err != nil {
			return err
		}
	}
	return rep.WriteTable(stdout)
}

// runWithCreation runs c, creating only the first n names when c asks for
// creation (the rest is the base model, which needs none).
func runWithCreation(ctx context.Context, c loadtest.Config, n int) (*loadtest.Report, error) {
	if c.CreateAdapters && n < len(c.Adapters) {
		for i, name := range c.Adapters[:n] {
			if err := c.Creator.CreateAdapter(ctx, name, c.Seed+int64(i)); err != nil {
				return nil, fmt.Errorf("create adapter %q: %w", name, err)
			}
		}
		c.CreateAdapters, c.Creator = false, nil
	}
	return loadtest.Run(ctx, c)
}

func writeReport(path string, rep *loadtest.Report) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("--json: %w", err)
	}
	if err := rep.WriteJSON(f); err != nil {
		f.Close()
		return fmt.Errorf("--json: %w", err)
	}
	return f.Close()
}

func compareReports(pathA, pathB string) error {
	var reps [2]*loadtest.Report
	for i, p := range []string{pathA, pathB} {
		f, err := os.Open(p)
		if err != nil {
			return fmt.Errorf("--compare: %w", err)
		}
		reps[i], err = loadtest.ReadJSON(f)
		f.Close()
		if err != nil {
			return fmt.Errorf("--compare %s: %w", p, err)
		}
	}
	fmt.Fprintf(stdout, "A: %s\nB: %s\n\n", pathA, pathB)
	if err := loadtest.Compare(stdout, reps[0], reps[1]); err != nil {
		return err
	}
	if !strings.EqualFold(reps[0].Endpoint, reps[1].Endpoint) {
		fmt.Fprintf(stdout, "\nnote: the runs used different endpoints (%s, %s)\n", reps[0].Endpoint, reps[1].Endpoint)
	}
	return nil
}
