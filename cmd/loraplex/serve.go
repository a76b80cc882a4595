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

	"go.opentelemetry.io/otel/trace"

	"github.com/loraplex/loraplex/adapters"
	"github.com/loraplex/loraplex/inference/sched"
	"github.com/loraplex/loraplex/registry"
	"github.com/loraplex/loraplex/server"
	"github.com/loraplex/loraplex/server/backend"
	"github.com/loraplex/loraplex/server/telemetry"
)

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
	trainShare   int
}

func (f *serveFlags) bind(fs interface {
	StringVar(*string, string, string, string)
	IntVar(*int, string, int, string)
	Int64Var(*int64, string, int64, string)
	DurationVar(*time.Duration, string, time.Duration, string)
	StringSliceVar(*[]string, string, []string, string)
}) {
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
	fs.IntVar(&f.sched.MaxContext, "max-context", 0, "cap on prompt plus output tokens (default: the model's)")
	fs.Int64Var(&f.kvMiB, "kv-cache-mib", sched.DefaultKVBytes>>20, "memory for the paged KV cache, MiB")
	fs.IntVar(&f.reg.MaxAdapters, "max-loaded-adapters", f.reg.MaxAdapters, "adapters kept in memory")
	fs.Int64Var(&f.regMiB, "adapter-cache-mib", f.reg.MaxBytes>>20, "memory for loaded adapters, MiB")
	fs.IntVar(&f.trainShare, "train-threads", 1, "threads given to fine-tuning jobs (inference keeps the rest)")
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
	dir, m, tok, pool, err := f.base.load(ctx, true)
	if err != nil {
		return err
	}
	defer m.Close()
	if tok == nil {
		return fmt.Errorf("%s has no tokenizer.json: the server needs one", dir)
	}
	name := f.name
	if name == "" {
		name = filepath.Base(filepath.Clean(dir))
	}

	store, err := registry.OpenStore(filepath.Join(f.base.home, "adapters"))
	if err != nil {
		return err
	}
	f.reg.MaxBytes = f.regMiB << 20
	reg := registry.New(store, adapters.NewLoader(m.Cfg, name, func(id string, w []string) {
		log.Warn("adapter loaded with warnings", "adapter", id, "warnings", strings.Join(w, "; "))
	}), f.reg)
	defer reg.Close()

	f.sched.Pool = pool
	f.sched.KVBytes = f.kvMiB << 20
	s, err := sched.New(m, tok, f.sched)
	if err != nil {
		return err
	}
	tmpl := ""
	if f.chatTemplate != "" {
		b, err := os.ReadFile(f.chatTemplate)
		if err != nil {
			return fmt.Errorf("--chat-template: %w", err)
		}
		tmpl = string(b)
	}
	eng, err := backend.NewEngine(s, tok, backend.EngineOptions{ChatTemplate: tmpl, MaxAdapters: f.sched.MaxRunning})
	if err != nil {
		return err
	}

	cfg := f.srv
	cfg.ModelName, cfg.ModelRoot = name, dir
	cfg.APIKey, cfg.AdminKey = f.apiKey, f.adminKey
	for _, r := range f.importRoots {
		abs, err := filepath.Abs(r)
		if err != nil {
			return fmt.Errorf("--adapter-import-root %s: %w", r, err)
		}
		cfg.AdapterImportRoots = append(cfg.AdapterImportRoots, abs)
	}
	var tp trace.TracerProvider
	if ep := os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT"); ep != "" {
		tc := telemetry.DefaultConfig()
		tc.Endpoint = ep
		sdk, err := telemetry.NewTracerProvider(ctx, tc)
		if err != nil {
			return err
		}
		defer sdk.Shutdown(context.Background())
		tp = sdk
	}
	srv, err := server.New(cfg, server.Deps{Engine: eng, Adapters: backend.NewAdapters(reg, f.reg.MaxBytes), TracerProvider: tp, Logger: log})
	if err != nil {
		return err
	}
	closeTraining, err := enableTraining(srv, &f, name, m, tok, reg, log)
	if err != nil {
		return err
	}
	defer closeTraining()

	addr := net.JoinHostPort(f.host, strconv.Itoa(f.port))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", addr, err)
	}
	log.Info("serving", "addr", "http://"+ln.Addr().String(), "model", name, "dir", dir, "quant", f.base.quant, "auth", cfg.APIKey != "")
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		if !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	case <-ctx.Done():
	}
	log.Info("shutting down", "grace", cfg.ShutdownGrace)
	sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownGrace+5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	return s.Close(sctx)
}
