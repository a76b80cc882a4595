package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/spf13/pflag"

	"github.com/loraplex/loraplex/adapters"
	"github.com/loraplex/loraplex/inference/hub"
	"github.com/loraplex/loraplex/inference/model"
	"github.com/loraplex/loraplex/inference/synth"
	"github.com/loraplex/loraplex/inference/tokenizer"
	"github.com/loraplex/loraplex/quant/par"
)

// baseFlags are the flags every command that loads the base model shares.
type baseFlags struct {
	model   string
	quant   string
	threads int
	home    string
	int8    bool
	head    string
	// gate, when set, puts the inference pool on its High side (serve sets
	// it so fine-tuning gives way to inference).
	gate *par.Gate
}

func (b *baseFlags) bind(fs *pflag.FlagSet, modelHelp string) {
	fs.StringVar(&b.model, "model", "", modelHelp)
	fs.StringVar(&b.quant, "quant", "auto", "weight format of the decoder linears: nf4, none, or auto (nf4 for 16-bit checkpoints, float32 checkpoints kept as stored)")
	fs.BoolVar(&b.int8, "int8", false, "NF4 products with int8 activations (AVX512-VNNI): faster, about 1% relative error; off keeps bitsandbytes-exact results")
	fs.StringVar(&b.head, "quant-head", "keep", "lm_head format: keep (stored precision, as bitsandbytes) or nf4 (an NF4 copy: faster decoding, logits within about 10% of their RMS)")
	fs.IntVar(&b.threads, "threads", runtime.NumCPU(), "CPU threads for inference")
	fs.StringVar(&b.home, "home", envOr("LORAPLEX_HOME", defaultHome()), "data directory: model cache, adapter store, training database (env LORAPLEX_HOME)")
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

func defaultHome() string {
	if d, err := os.UserCacheDir(); err == nil {
		return filepath.Join(d, "loraplex")
	}
	return ".loraplex"
}

// resolveModel turns --model into a local directory: a path as is, hf:ORG/NAME
// downloaded into the cache, and "" the built-in demo model when allowDemo.
func (b *baseFlags) resolveModel(ctx context.Context, allowDemo bool) (string, error) {
	switch {
	case b.model == "" && allowDemo:
		fmt.Fprintln(os.Stderr, "loraplex: no --model given: using the built-in demo model (random weights, tiny; see README to serve a real model)")
		return synth.DemoDir(filepath.Join(b.home, "models"))
	case b.model == "":
		return "", errors.New("--model is required: a Hugging Face model directory or hf:ORG/NAME")
	case strings.HasPrefix(b.model, "hf:"):
		opts := hub.Options{CacheDir: filepath.Join(b.home, "models")}
		opts.FromEnv(os.Getenv)
		pr := newProgress("download " + b.model)
		opts.Progress = func(file string, done, total int64) {
			if total > 0 {
				pr.update(int(done>>20), int(total>>20), "MiB")
			}
		}
		return hub.Download(ctx, b.model, opts)
	}
	return b.model, nil
}

// load resolves and loads the base model, and its tokenizer when the
// directory has one (tok is nil otherwise).
func (b *baseFlags) load(ctx context.Context, allowDemo bool) (dir string, m *model.Model, tok *tokenizer.Tokenizer, pool *par.Pool, err error) {
	if b.threads < 1 {
		return "", nil, nil, nil, fmt.Errorf("--threads %d: must be at least 1", b.threads)
	}
	dir, err = b.resolveModel(ctx, allowDemo)
	if err != nil {
		return "", nil, nil, nil, err
	}
	if b.gate != nil {
		pool = b.gate.Pool(b.threads, par.High)
	} else {
		pool = par.New(b.threads)
	}
	pr := newProgress("load " + filepath.Base(dir))
	m, err = model.Load(dir, model.LoadOptions{Quant: b.quant, QuantHead: b.head, Int8: b.int8, Pool: pool, Progress: func(done, total int) { pr.update(done, total, "tensors") }})
	if err != nil {
		return "", nil, nil, nil, err
	}
	if _, statErr := os.Stat(filepath.Join(dir, "tokenizer.json")); statErr == nil {
		tok, err = tokenizer.Load(dir)
		if err != nil {
			m.Close()
			return "", nil, nil, nil, err
		}
	}
	return dir, m, tok, pool, nil
}

// loadAdapter reads a PEFT adapter directory for m, or returns nil for "".
func loadAdapter(dir string, m *model.Model, pool *par.Pool) (*model.Adapter, error) {
	if dir == "" {
		return nil, nil
	}
	res, err := adapters.Read(dir, m.Cfg, adapters.Options{ID: filepath.Base(dir), Model: m, Pool: pool})
	if err != nil {
		return nil, err
	}
	return res.Adapter, nil
}

// parseIDs parses "1,2,3" into token ids.
func parseIDs(s string, vocab int) ([]int32, error) {
	var ids []int32
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		var v int64
		if _, err := fmt.Sscan(f, &v); err != nil {
			return nil, fmt.Errorf("token id %q is not an integer", f)
		}
		if v < 0 || v >= int64(vocab) {
			return nil, fmt.Errorf("token id %d is outside the vocabulary (0..%d)", v, vocab-1)
		}
		ids = append(ids, int32(v))
	}
	if len(ids) == 0 {
		return nil, errors.New("no token ids given")
	}
	return ids, nil
}
