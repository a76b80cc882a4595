package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"go.opentelemetry.io/otel/trace"

	"github.com/loraplex/loraplex/adapters"
	"github.com/loraplex/loraplex/inference/sched"
	"github.com/loraplex/loraplex/quant/par"
	"github.com/loraplex/loraplex/registry"
	"github.com/loraplex/loraplex/server"
	"github.com/loraplex/loraplex/server/backend"
	"github.com/loraplex/loraplex/server/telemetry"
	"github.com/loraplex/loraplex/training/jobs"
)

// defaultTrainShare is --train-share's default: the time fine-tuning may
// take while inference is busy, small enough that serving latency stays
// within a quarter of its no-training value.
const defaultTrainShare = 0.1

func init() {
	register(command{"serve", "serve the OpenAI-compatible API (the main job)", runServe})
}

// serveFlags are serve's options beyond the base model's.
type serveFlags struct {
	base         baseFlags
	host         string
	port         int
	name         string
	apiKey       string
	adminKey     string
	importRoots  []string
	chatTemplate string
	srv          server.Config
	sched        sched.Config
	kvMiB        int64
	reg          registry.Config
	regMiB       int64
	trainThreads int
	trainShare   float64
	adapterBF16  bool
}

func (f *serveFlags) bind(fs *pflag.FlagSet) {
	host, port, _ := net.SplitHostPort(server.DefaultAddr)
	p, _ := strconv.Atoi(port)
	f.srv = server.DefaultConfig()
	f.reg = registry.DefaultConfig()
	fs.StringVar(&f.host, "host", envOr("LORAPLEX_HOST", host), "address to listen on; 127.0.0.1 keeps the server local (env LORAPLEX_HOST)")
	fs.IntVar(&f.port, "port", envInt("LORAPLEX_PORT", p), "port to listen on (env LORAPLEX_PORT)")
	fs.StringVar(&f.name, "served-model-name", "", "id of the base model in the API (default: the model directory's name)")
	fs.StringVar(&f.apiKey, "api-key", os.Getenv("LORAPLEX_API_KEY"), "require 'Authorization: Bearer KEY' on the API (env LORAPLEX_API_KEY)")
	fs.StringVar(&f.adminKey, "admin-key", os.Getenv("LORAPLEX_ADMIN_KEY"), "key for adapter administration and training; default: the API key (env LORAPLEX_ADMIN_KEY)")
	fs.StringSliceVar(&f.importRoots, "adapter-import-root", nil, "directory that /v1/load_lora_adapter may load adapters from (repeatable; default none)")
	fs.StringVar(&f.chatTemplate, "chat-template", "", "file with a Jinja chat template that replaces the model's")
	fs.Int64Var(&f.srv.MaxBodyBytes, "max-body-bytes", f.srv.MaxBodyBytes, "largest JSON request body")
	fs.IntVar(&f.srv.MaxN, "max-n", f.srv.MaxN, "largest n (choices per request)")
	fs.DurationVar(&f.srv.RequestTimeout, "request-timeout", f.srv.RequestTimeout, "longest a request may take")
	fs.DurationVar(&f.srv.ShutdownGrace, "shutdown-grace", f.srv.ShutdownGrace, "on SIGTERM, how long running requests may finish before they are cancelled")
	fs.IntVar(&f.sched.MaxRunning, "max-running", sched.DefaultMaxRunning, "sequences decoded together in one batch")
	fs.IntVar(&f.sched.MaxQueue, "max-queue", sched.DefaultMaxQueue, "requests that may wait; beyond it the server answers 429")
	fs.IntVar(&f.sched.MaxBatchTokens, "max-batch-tokens", sched.DefaultMaxBatchTokens, "tokens processed in one step (bounds step latency)")
	fs.IntVar(&f.sched.PrefillChunk, "prefill-chunk", sched.DefaultPrefillChunk, "most prompt tokens of one request per step (chunked prefill)")
	fs.BoolVar(&f.sched.PrefillFirst, "prefill-first", false, "give new requests a step of their own: lower time to first token, running streams pause for each prefill")
	fs.IntVar(&f.sched.MaxContext, "max-context", 0, "cap on prompt plus output tokens (default: the model's)")
	fs.Int64Var(&f.kvMiB, "kv-cache-mib", sched.DefaultKVBytes>>20, "memory for the paged KV cache, MiB")
	fs.IntVar(&f.reg.MaxAdapters, "max-loaded-adapters", f.reg.MaxAdapters, "adapters kept in memory")
	fs.Int64Var(&f.regMiB, "adapter-cache-mib", f.reg.MaxBytes>>20, "memory for loaded adapters, MiB")
	fs.IntVar(&f.trainThreads, "train-threads", 1, "threads given to fine-tuning jobs")
	fs.Float64Var(&f.trainShare, "train-share", defaultTrainShare, "fraction of the time fine-tuning may run while inference is busy (in (0, 1]; 1: no priority for inference)")
	fs.BoolVar(&f.adapterBF16, "adapter-bf16", false, "serve LoRA weights in bfloat16: faster mixed-adapter batches, logits within about 3e-3 of float32")
}

func envInt(key string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(key)); err == nil {
		return v
	}
	return def
}

func runServe(ctx context.Context, args []string) error {
	fs := newFlags("serve")
	var f serveFlags
	f.base.bind(fs, "Hugging Face model directory or hf:ORG/NAME (default: the built-in demo model)")
	f.bind(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	r, err := startServer(ctx, &f, log)
	if err != nil {
		return err
	}
	defer r.close()
	log.Info("serving", "addr", r.url, "model", r.name, "dir", r.dir, "quant", f.base.quant, "auth", r.cfg.APIKey != "")
	select {
	case err := <-r.errc:
		if !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	case <-ctx.Done():
	}
	log.Info("shutting down", "grace", r.cfg.ShutdownGrace)
	return r.shutdown()
}

// running is a started server with everything behind it: what serve waits
// on and bench drives.
type running struct {
	url, name, dir string
	cfg            server.Config
	srv            *server.Server
	sched          *sched.Scheduler
	ads            backend.RandomAdapters
	jobs           *jobs.Manager
	errc           chan error // what Serve returned
	closers        []func()   // run in reverse by close
}

// close releases what startServer opened, newest first.
func (r *running) close() {
	for i := len(r.closers) - 1; i >= 0; i-- {
		r.closers[i]()
	}
	r.closers = nil
}

// shutdown drains the server within its grace period, then stops the
// scheduler; close still has to follow.
func (r *running) shutdown() error {
	sctx, cancel := context.WithTimeout(context.Background(), r.cfg.ShutdownGrace+5*time.Second)
	defer cancel()
	if err := r.srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	return r.sched.Close(sctx)
}

// startServer loads the base model, opens the adapter store, the scheduler
// and training, and starts serving on f's host and port. On error nothing
// stays open.
func startServer(ctx context.Context, f *serveFlags, log *slog.Logger) (_ *running, err error) {
	r := &running{}
	defer func() {
		if err != nil {
			r.close()
		}
	}()
	if f.base.gate, err = par.NewGate(f.trainShare); err != nil {
		return nil, fmt.Errorf("--train-share: %w", err)
	}
	dir, m, tok, pool, err := f.base.load(ctx, true)
	if err != nil {
		return nil, err
	}
	r.closers = append(r.closers, func() { m.Close() })
	if tok == nil {
		return nil, fmt.Errorf("%s has no tokenizer.json: the server needs one", dir)
	}
	name := f.name
	if name == "" {
		name = filepath.Base(filepath.Clean(dir))
	}
	r.name, r.dir = name, dir

	store, err := registry.OpenStore(filepath.Join(f.base.home, "adapters"))
	if err != nil {
		return nil, err
	}
	f.reg.MaxBytes = f.regMiB << 20
	reg := registry.New(store, adapters.NewModelLoader(m, adapters.Options{BaseName: name, Pool: pool, BF16: f.adapterBF16}, func(id string, w []string) {
		log.Warn("adapter loaded with warnings", "adapter", id, "warnings", strings.Join(w, "; "))
	}), f.reg)
	r.closers = append(r.closers, reg.Close)
	r.ads = backend.RandomAdapters{Adapters: backend.NewAdapters(reg, f.reg.MaxBytes), Base: m.Cfg, BaseName: name}

	f.sched.Pool = pool
	f.sched.KVBytes = f.kvMiB << 20
	s, err := sched.New(m, tok, f.sched)
	if err != nil {
		return nil, err
	}
	r.sched = s
	tmpl := ""
	if f.chatTemplate != "" {
		b, err := os.ReadFile(f.chatTemplate)
		if err != nil {
			return nil, fmt.Errorf("--chat-template: %w", err)
		}
		tmpl = string(b)
	}
	eng, err := backend.NewEngine(s, tok, backend.EngineOptions{ChatTemplate: tmpl, MaxAdapters: f.sched.MaxRunning})
	if err != nil {
		return nil, err
	}

	cfg := f.srv
	cfg.ModelName, cfg.ModelRoot = name, dir
	cfg.APIKey, cfg.AdminKey = f.apiKey, f.adminKey
	for _, root := range f.importRoots {
		abs, err := filepath.Abs(root)
		if err != nil {
			return nil, fmt.Errorf("--adapter-import-root %s: %w", root, err)
		}
		cfg.AdapterImportRoots = append(cfg.AdapterImportRoots, abs)
	}
	r.cfg = cfg
	var tp trace.TracerProvider
	if ep := os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT"); ep != "" {
		tc := telemetry.DefaultConfig()
		tc.Endpoint = ep
		sdk, err := telemetry.NewTracerProvider(ctx, tc)
		if err != nil {
			return nil, err
		}
		r.closers = append(r.closers, func() { sdk.Shutdown(context.Background()) })
		tp = sdk
	}
	srv, err := server.New(cfg, server.Deps{Engine: eng, Adapters: r.ads, TracerProvider: tp, Logger: log})
	if err != nil {
		return nil, err
	}
	r.srv = srv
	mgr, closeTraining, err := enableTraining(srv, f, name, m, tok, reg, log)
	if err != nil {
		return nil, err
	}
	r.jobs = mgr
	r.closers = append(r.closers, closeTraining)
	// Closed before training stops, so a job winding down does not wait
	// for a share of a server that is still draining.
	r.closers = append(r.closers, f.base.gate.Close)

	addr := net.JoinHostPort(f.host, strconv.Itoa(f.port))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listening on %s: %w", addr, err)
	}
	r.url = "http://" + ln.Addr().String()
	r.errc = make(chan error, 1)
	go func() { r.errc <- srv.Serve(ln) }()
	return r, nil
}
