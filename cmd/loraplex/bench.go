package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/mattn/go-isatty"

	"github.com/loraplex/loraplex/inference/sched"
	"github.com/loraplex/loraplex/inference/synth"
	"github.com/loraplex/loraplex/inference/tokenizer"
	"github.com/loraplex/loraplex/loadtest"
	"github.com/loraplex/loraplex/server"
	"github.com/loraplex/loraplex/training/jobs"
)

func init() {
	register(command{"bench", "run the standard multi-adapter load scenarios against a server started on a random model", runBench})
}

// benchRank is the rank of the bench's adapters, all seven projections.
const benchRank = 16

// benchFlags are bench's options.
type benchFlags struct {
	shape          string
	counts         []int
	concurrency    int
	requests       int
	duration       time.Duration
	prompt, output string
	out, jsonDir   string
	threads        int
	maxLoaded      int
	seed           int64

	rate           float64
	warmup, rampUp time.Duration
	exactPrompts   bool
	int8           bool
	prefillFirst   bool
	adapterBF16    bool
	quantHead      string
	cpuProfile     string
	withTraining   bool
	trainShare     float64
	trainThreads   int
}

// benchRow is one scenario run: its load test, what the scheduler did and,
// beside a fine-tuning job, what the job trained meanwhile.
type benchRow struct {
	n        int
	training bool // ran beside a fine-tuning job
	rep      *loadtest.Report
	steps    stepStats
	trainTPS float64   // the job's trained tokens per second over the scenario
	job      *jobs.Job // the job as it ended, cancelled
}

func runBench(ctx context.Context, args []string) error {
	fs := newFlags("bench")
	var b benchFlags
	fs.StringVar(&b.shape, "shape", "s", "random model shape: tiny, s or m")
	fs.IntSliceVar(&b.counts, "adapters", []int{0, 1, 8, 64, 512}, "scenarios: how many adapters the requests are spread over (0: the base only)")
	fs.IntVar(&b.concurrency, "concurrency", 16, "requests in flight (closed loop)")
	fs.IntVar(&b.requests, "requests", 0, "requests per scenario (default: run for --duration)")
	fs.DurationVar(&b.duration, "duration", 0, "length of each scenario (default 30s when --requests is unset)")
	fs.StringVar(&b.prompt, "prompt-tokens", "64", "prompt length in tokens: N or MIN-MAX")
	fs.StringVar(&b.output, "output-tokens", "64", "output tokens per request (ignore_eos): N or MIN-MAX")
	fs.StringVar(&b.out, "out", "", "also write the markdown table to this file")
	fs.StringVar(&b.jsonDir, "json-dir", "", "write each scenario's full report as JSON into this directory")
	fs.IntVar(&b.threads, "threads", runtime.NumCPU(), "CPU threads for inference")
	fs.IntVar(&b.maxLoaded, "max-loaded-adapters", 32, "adapters the server keeps in memory; below the larger scenarios' counts, so some requests load their adapter cold")
	fs.Int64Var(&b.seed, "seed", 1, "seed of the model, the adapters and the request sequences")
	fs.Float64Var(&b.rate, "request-rate", 0, "open loop: Poisson arrivals per second, at most --concurrency in flight (0: closed loop)")
	fs.DurationVar(&b.warmup, "warmup", 0, "serve each scenario this long before measuring it")
	fs.DurationVar(&b.rampUp, "ramp-up", 0, "start the load gradually over this long (closed loop: workers one by one; open loop: rate from 0)")
	fs.BoolVar(&b.exactPrompts, "exact-prompt-tokens", true, "make prompts exactly --prompt-tokens long by the model's tokenizer (false: that many words, about two tokens each for the random model's tokenizer)")
	fs.BoolVar(&b.int8, "int8", false, "serve with --int8 (int8 activations in the NF4 products)")
	fs.BoolVar(&b.prefillFirst, "prefill-first", false, "serve with --prefill-first (new requests get a step of their own)")
	fs.BoolVar(&b.adapterBF16, "adapter-bf16", false, "serve with --adapter-bf16 (LoRA weights in bfloat16)")
	fs.StringVar(&b.quantHead, "quant-head", "keep", "serve with --quant-head (keep: the lm_head in bf16; nf4: an NF4 copy)")
	fs.StringVar(&b.cpuProfile, "cpuprofile", "", "write a CPU profile of the whole run (server and load generator) to this file")
	fs.BoolVar(&b.withTraining, "with-training", false, "run each scenario twice: alone, then beside a LoRA fine-tuning job in the server (r=16, all seven projections), cancelled after it")
	fs.Float64Var(&b.trainShare, "train-share", defaultTrainShare, "serve with --train-share (the time fine-tuning may take while inference is busy)")
	fs.IntVar(&b.trainThreads, "train-threads", 1, "serve with --train-threads (threads of the fine-tuning job)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	shape, err := synth.ShapeByName(b.shape)
	if err != nil {
		return fmt.Errorf("--shape: %w", err)
	}
	promptLen, err := loadtest.ParseDist(b.prompt)
	if err != nil {
		return fmt.Errorf("--prompt-tokens: %w", err)
	}
	outputLen, err := loadtest.ParseDist(b.output)
	if err != nil {
		return fmt.Errorf("--output-tokens: %w", err)
	}
	if len(b.counts) == 0 || slices.ContainsFunc(b.counts, func(n int) bool { return n < 0 }) {
		return errors.New("--adapters: give a list of non-negative counts, e.g. 0,1,8,64")
	}
	if b.requests == 0 && b.duration == 0 {
		b.duration = 30 * time.Second
	}

	tmp, err := os.MkdirTemp("", "loraplex-bench-*")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	name := "synth-" + strings.ToLower(shape.Name)
	modelDir := filepath.Join(tmp, name)
	fmt.Fprintf(os.Stderr, "loraplex bench: writing a random %s model (%s parameters, BF16)\n", shape.Name, params(shape.Params()))
	if err := synth.Write(modelDir, shape, b.seed, "BF16"); err != nil {
		return err
	}

	// The server is serve's, with serve's defaults, on a private home and a
	// loopback port.
	var f serveFlags
	sfs := newFlags("serve")
	f.base.bind(sfs, "")
	f.bind(sfs)
	if err := sfs.Parse(nil); err != nil {
		return err
	}
	f.base.model, f.base.home, f.base.threads = modelDir, filepath.Join(tmp, "home"), b.threads
	f.host, f.port, f.name, f.apiKey, f.adminKey = "127.0.0.1", 0, name, "", ""
	f.reg.MaxAdapters = b.maxLoaded
	f.base.int8, f.base.head, f.sched.PrefillFirst, f.adapterBF16 = b.int8, b.quantHead, b.prefillFirst, b.adapterBF16
	f.trainShare, f.trainThreads = b.trainShare, b.trainThreads
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	r, err := startServer(ctx, &f, log)
	if err != nil {
		return err
	}
	defer r.close()
	defer r.shutdown()

	names := loadtest.AdapterNames("bench", slices.Max(b.counts))
	fmt.Fprintf(os.Stderr, "loraplex bench: creating %d random LoRA adapters (r=%d, all seven projections)\n", len(names), benchRank)
	for i, n := range names {
		if err := r.ads.CreateRandom(ctx, n, server.RandomLoRA{R: benchRank, Alpha: 2 * benchRank, Seed: b.seed + int64(i)}, false); err != nil {
			return fmt.Errorf("creating adapter %s: %w", n, err)
		}
	}
	if b.jsonDir != "" {
		if err := os.MkdirAll(b.jsonDir, 0o755); err != nil {
			return fmt.Errorf("--json-dir: %w", err)
		}
	}
	var progress io.Writer
	if isatty.IsTerminal(os.Stderr.Fd()) {
		progress = os.Stderr
	}
	var countTokens func(string) int
	if b.exactPrompts {
		tok, err := tokenizer.Load(modelDir)
		if err != nil {
			return err
		}
		countTokens = func(text string) int { return len(tok.Encode(text, false)) }
	}
	if b.cpuProfile != "" {
		stop, err := startCPUProfile(b.cpuProfile)
		if err != nil {
			return err
		}
		defer stop()
	}
	var trainer *benchTrainer
	if b.withTraining {
		if trainer, err = newBenchTrainer(ctx, r.jobs, name, b.seed); err != nil {
			return err
		}
	}
	var rows []benchRow
	for i, n := range b.counts {
		c := loadtest.Config{BaseURL: r.url, Adapters: names[:n], Concurrency: b.concurrency, Requests: b.requests,
			Duration: b.duration, PromptTokens: promptLen, OutputTokens: outputLen, IgnoreEOS: true, Seed: b.seed, Progress: progress,
			Rate: b.rate, MaxInFlight: b.concurrency, Warmup: b.warmup, RampUp: b.rampUp, CountTokens: countTokens}
		if n == 0 {
			c.Adapters = []string{name}
		}
		fmt.Fprintf(os.Stderr, "loraplex bench: scenario %d/%d: %s\n", i+1, len(b.counts), scenarioName(n))
		row, err := runScenario(ctx, r, c, n, nil)
		if err != nil {
			return err
		}
		rows = append(rows, row)
		if err := b.writeJSON(row.rep, n, ""); err != nil {
			return err
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if trainer == nil {
			continue
		}
		fmt.Fprintf(os.Stderr, "loraplex bench: scenario %d/%d: %s, beside a fine-tuning job\n", i+1, len(b.counts), scenarioName(n))
		row, err = runScenario(ctx, r, c, n, trainer)
		if err != nil {
			return err
		}
		rows = append(rows, row)
		if err := b.writeJSON(row.rep, n, "-training"); err != nil {
			return err
		}
		if err := b.writeJob(row.job, n); err != nil {
			return err
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
	var md strings.Builder
	b.writeTable(&md, shape, f.base.quant, rows)
	b.writeSteps(&md, rows)
	if b.out != "" {
		if err := os.WriteFile(b.out, []byte(md.String()), 0o644); err != nil {
			return fmt.Errorf("--out: %w", err)
		}
	}
	_, err = io.WriteString(stdout, md.String())
	return err
}

// runScenario runs one load test; with a trainer, beside a fine-tuning job
// started before it and cancelled after it.
func runScenario(ctx context.Context, r *running, c loadtest.Config, n int, trainer *benchTrainer) (benchRow, error) {
	row := benchRow{n: n, training: trainer != nil}
	var job *jobs.Job
	if trainer != nil {
		var err error
		if job, err = trainer.start(ctx); err != nil {
			return row, err
		}
	}
	before, t0 := r.sched.Stats(), time.Now()
	rep, err := loadtest.Run(ctx, c)
	wall := time.Since(t0)
	if trainer != nil {
		last, ended, serr := trainer.stop(ctx, job.ID)
		if err == nil && serr != nil {
			err = serr
		}
		if serr == nil {
			row.job, row.trainTPS = ended, float64(trainedTokens(last)-trainedTokens(job))/wall.Seconds()
		}
	}
	if err != nil {
		return row, err
	}
	row.rep, row.steps = rep, stepsBetween(before, r.sched.Stats(), rep)
	return row, nil
}

// writeJSON writes a scenario's report into --json-dir, if given.
func (b *benchFlags) writeJSON(rep *loadtest.Report, n int, suffix string) error {
	if b.jsonDir == "" {
		return nil
	}
	return writeReport(filepath.Join(b.jsonDir, "adapters-"+strconv.Itoa(n)+suffix+".json"), rep)
}

// writeJob writes the fine-tuning job beside scenario n, as the API shows
// it, into --json-dir, if given.
func (b *benchFlags) writeJob(j *jobs.Job, n int) error {
	if b.jsonDir == "" {
		return nil
	}
	data, err := json.MarshalIndent(j, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(b.jsonDir, "adapters-"+strconv.Itoa(n)+"-job.json"), append(data, '\n'), 0o644)
}

// jobCondition is a row's fine-tuning job column.
func jobCondition(training bool) string {
	if training {
		return "running"
	}
	return "none"
}

func scenarioName(n int) string {
	switch n {
	case 0:
		return "base only"
	case 1:
		return "1 adapter"
	}
	return strconv.Itoa(n) + " adapters"
}

// writeTable writes the scenarios as a markdown table with the setup that
// produced them. With --with-training each scenario has a second row beside
// a fine-tuning job, and columns for the job are added at the end.
func (b *benchFlags) writeTable(w io.Writer, shape synth.Shape, quant string, rows []benchRow) {
	baseTPS := map[bool]float64{}
	alone := map[int]*loadtest.Report{}
	for _, r := range rows {
		if r.n == 0 {
			baseTPS[r.training] = r.rep.OutputTokPerSec
		}
		if !r.training {
			alone[r.n] = r.rep
		}
	}
	head, rule := "| scenario | adapters | requests | output tok/s | vs base only | TTFT p50 ms | TTFT p99 ms | ITL p50 ms | errors |", "|---|---:|---:|---:|---:|---:|---:|---:|---:|"
	if b.withTraining {
		head, rule = head+" fine-tuning job | TPOT p50 ms | TPOT p50 vs no job | job trained tok/s |", rule+"---|---:|---:|---:|"
	}
	fmt.Fprintf(w, "%s\n%s\n", head, rule)
	for _, row := range rows {
		r := row.rep
		ratio := "-"
		if base := baseTPS[row.training]; base > 0 {
			ratio = fmt.Sprintf("%.2f", r.OutputTokPerSec/base)
		}
		fmt.Fprintf(w, "| %s | %d | %d | %.1f | %s | %.1f | %.1f | %.1f | %d |",
			scenarioName(row.n), row.n, r.Requests, r.OutputTokPerSec, ratio, r.TTFT.P50, r.TTFT.P99, r.ITL.P50, r.Failed)
		if b.withTraining {
			vs, tps := "-", "-"
			if row.training {
				tps = fmt.Sprintf("%.1f", row.trainTPS)
				if a := alone[row.n]; a != nil && a.TPOT.P50 > 0 {
					vs = fmt.Sprintf("%.2f", r.TPOT.P50/a.TPOT.P50)
				}
			}
			fmt.Fprintf(w, " %s | %.1f | %s | %s |", jobCondition(row.training), r.TPOT.P50, vs, tps)
		}
		fmt.Fprintln(w)
	}
	bound := fmt.Sprintf("%d requests", b.requests)
	if b.duration > 0 {
		bound = b.duration.String()
		if b.requests > 0 {
			bound = fmt.Sprintf("%d requests or %s", b.requests, b.duration)
		}
	}
	if quant == "auto" {
		quant = "auto: NF4 for this 16-bit checkpoint"
	}
	if b.int8 {
		quant += ", --int8"
	}
	if b.quantHead != "keep" {
		quant += ", --quant-head " + b.quantHead
	}
	if b.adapterBF16 {
		quant += ", --adapter-bf16"
	}
	if b.prefillFirst {
		quant += "; --prefill-first"
	}
	mode := fmt.Sprintf("Closed loop at concurrency %d", b.concurrency)
	if b.rate > 0 {
		mode = fmt.Sprintf("Open loop, Poisson arrivals at %.3g requests/s, at most %d in flight", b.rate, b.concurrency)
	}
	if b.rampUp > 0 {
		mode += fmt.Sprintf(", ramped up over %s", b.rampUp)
	}
	if b.warmup > 0 {
		bound = fmt.Sprintf("%s warm-up (not measured), then %s", b.warmup, bound)
	}
	promptUnit := "tokens"
	if !b.exactPrompts {
		promptUnit = "words"
	}
	fmt.Fprintf(w, "\nRandom %s-shape model (%s parameters, BF16 checkpoint, --quant %s), %d threads on %d CPUs (%s/%s, %s). "+
		"%s, %s per scenario, prompts of %s %s, %s output tokens (ignore_eos), seed %d. "+
		"Adapters are random LoRAs, r=%d on all seven projections, equally popular. "+
		"The server keeps at most %d adapters loaded",
		shape.Name, params(shape.Params()), quant, b.threads, runtime.NumCPU(), runtime.GOOS, runtime.GOARCH, runtime.Version(),
		mode, bound, b.prompt, promptUnit, b.output, b.seed, benchRank, b.maxLoaded)
	if slices.Max(b.counts) > b.maxLoaded {
		fmt.Fprint(w, ", so in the scenarios with more adapters some requests also wait for their adapter to load from disk (cold)")
	}
	fmt.Fprintln(w, ".")
	if b.withTraining {
		fmt.Fprintf(w, "\nEach scenario ran alone (job: none), then beside a fine-tuning job in the server (job: running): "+
			"LoRA r=%d, alpha %d on all seven projections, batch size 1, %d generated prompt/completion pairs of about 40 tokens, "+
			"--train-threads %d, --train-share %g; the job had trained its first step before the load started and was cancelled, "+
			"and had stopped, before the next scenario. TPOT is the load test's time per output token of each request, "+
			"(end to end - time to first token) / (output tokens - 1); its p50 is compared with the same scenario without the job. "+
			"The job's trained tok/s counts its trained_tokens over the whole scenario, warm-up included.\n",
			benchRank, 2*benchRank, benchTrainExamples, b.trainThreads, b.trainShare)
	}
}

// params writes a parameter count for people: 125 M, 0.16 M.
func params(n int64) string {
	if n < 10_000_000 {
		return fmt.Sprintf("%.2f M", float64(n)/1e6)
	}
	return fmt.Sprintf("%.0f M", float64(n)/1e6)
}

// startCPUProfile profiles the whole process into path until stop.
func startCPUProfile(path string) (stop func(), err error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("--cpuprofile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("--cpuprofile: %w", err)
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}

// stepStats is what the scheduler did during one scenario.
type stepStats struct {
	wall                                 time.Duration
	steps, decode, prefill, prefillSteps uint64
	forward, sample, emit                time.Duration
}

func stepsBetween(a, b sched.Stats, rep *loadtest.Report) stepStats {
	return stepStats{
		wall:  time.Duration((rep.Seconds + rep.WarmupSeconds) * float64(time.Second)),
		steps: b.Steps - a.Steps, decode: b.DecodeRows - a.DecodeRows, prefill: b.PrefillRows - a.PrefillRows,
		prefillSteps: b.PrefillSteps - a.PrefillSteps,
		forward:      b.ForwardTime - a.ForwardTime, sample: b.SampleTime - a.SampleTime, emit: b.EmitTime - a.EmitTime,
	}
}

// writeSteps writes where each scenario's time went in the scheduler loop:
// the batch composition and the per-step cost of the forward pass,
// sampling and emitting tokens. The rest of the wall time the loop was idle
// or planning, while HTTP, JSON and the load generator shared the cores.
func (b *benchFlags) writeSteps(w io.Writer, rows []benchRow) {
	head, rule := "| scenario | steps | steps/s | decode rows/step | prefill rows/step | steps with prefill | forward ms/step | sample ms/step | emit ms/step | loop busy |", "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
	if b.withTraining {
		head, rule = head+" fine-tuning job |", rule+"---|"
	}
	fmt.Fprintf(w, "\n%s\n%s\n", head, rule)
	for _, row := range rows {
		s := row.steps
		if s.steps == 0 || s.wall <= 0 {
			continue
		}
		per := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) / float64(s.steps) }
		fmt.Fprintf(w, "| %s | %d | %.1f | %.1f | %.1f | %.0f%% | %.1f | %.2f | %.2f | %.0f%% |", scenarioName(row.n),
			s.steps, float64(s.steps)/s.wall.Seconds(), float64(s.decode)/float64(s.steps), float64(s.prefill)/float64(s.steps),
			100*float64(s.prefillSteps)/float64(s.steps), per(s.forward), per(s.sample), per(s.emit),
			100*float64(s.forward+s.sample+s.emit)/float64(s.wall))
		if b.withTraining {
			fmt.Fprintf(w, " %s |", jobCondition(row.training))
		}
		fmt.Fprintln(w)
	}
}
