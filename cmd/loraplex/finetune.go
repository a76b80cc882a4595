package main

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"

	"github.com/loraplex/loraplex/inference/chat"
	"github.com/loraplex/loraplex/inference/model"
	"github.com/loraplex/loraplex/inference/tokenizer"
	"github.com/loraplex/loraplex/registry"
	"github.com/loraplex/loraplex/server"
	"github.com/loraplex/loraplex/training/dataset"
	"github.com/loraplex/loraplex/training/jobs"
)

// publisher registers a finished fine-tuning adapter in the adapter store,
// so it is servable by name the moment its job succeeds.
type publisher struct{ r *registry.Registry }

func (p publisher) Publish(name string, write func(dir string) error) error {
	return p.r.Put(context.Background(), name, false, write)
}

// jobBase describes the resident model to the job manager, with the chat
// template rendered exactly as the server renders it.
func jobBase(m *model.Model, tok *tokenizer.Tokenizer) (*jobs.Base, error) {
	base := &jobs.Base{Model: m, Tokenizer: tok}
	if src := tok.ChatTemplate(); src != "" {
		t, err := chat.Compile(src)
		if err != nil {
			return nil, fmt.Errorf("the model's chat template: %w", err)
		}
		sp := tok.SpecialTokens()
		base.Template = dataset.ChatTemplate{T: t, BOS: sp["bos_token"], EOS: sp["eos_token"]}
	}
	return base, nil
}

// enableTraining opens the job manager on the serving process's resident
// base model and adds the files and fine-tuning routes to srv.
func enableTraining(srv *server.Server, f *serveFlags, name string, m *model.Model, tok *tokenizer.Tokenizer, reg *registry.Registry, log *slog.Logger) (*jobs.Manager, func(), error) {
	base, err := jobBase(m, tok)
	if err != nil {
		return nil, nil, err
	}
	mgr, err := jobs.Open(jobs.Config{Dir: filepath.Join(f.base.home, "training"), Workers: f.trainThreads, Gate: f.base.gate},
		map[string]*jobs.Base{name: base}, publisher{reg})
	if err != nil {
		return nil, nil, err
	}
	srv.EnableFineTuning(mgr)
	return mgr, func() {
		if err := mgr.Close(); err != nil {
			log.Error("closing the training database", "err", err)
		}
	}, nil
}
