package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/loraplex/loraplex/training/jobs"
	"github.com/loraplex/loraplex/training/trainer"
)

func init() {
	register(command{"train", "train a LoRA or prompt-tuning adapter from a JSONL dataset", runTrain})
}

// dirPublisher writes the finished adapter to one new directory (the PEFT
// writer itself is atomic: temporary sibling, fsync, rename).
type dirPublisher struct{ out string }

func (p dirPublisher) Publish(_ string, write func(dir string) error) error {
	if entries, err := os.ReadDir(p.out); err == nil && len(entries) > 0 {
		return fmt.Errorf("%s already holds files: choose an empty or new --out", p.out)
	}
	os.Remove(p.out) // an empty directory may stand in the way
	return write(p.out)
}

// runTrain runs one fine-tuning job through the same job manager the
// server uses, in a scratch data directory, and writes the adapter to --out.
func runTrain(ctx context.Context, args []string) error {
	fs := newFlags("train")
	var b baseFlags
	b.bind(fs, "Hugging Face model directory, or hf:ORG/NAME")
	data := fs.String("data", "", "training data: OpenAI chat or prompt/completion JSONL")
	validation := fs.String("validation", "", "optional validation JSONL (reports validation loss)")
	out := fs.String("out", "", "directory to write the PEFT adapter to (must be new or empty)")
	kind := fs.String("type", "lora", "adapter type: lora or prompt_tuning")
	r := fs.Int("r", 16, "LoRA rank")
	alpha := fs.Float64("alpha", 32, "LoRA alpha (scale = alpha / r)")
	dropout := fs.Float64("dropout", 0.05, "LoRA dropout")
	targets := fs.StringSlice("target-modules", nil, "LoRA target modules (default: all seven linear modules)")
	virtual := fs.Int("num-virtual-tokens", 20, "prompt tuning: number of virtual tokens")
	initText := fs.String("init-text", "", "prompt tuning: initialise the virtual tokens from this text's embeddings")
	epochs := fs.Int("epochs", 0, "passes over the data (0: auto)")
	batch := fs.Int("batch-size", 0, "examples per optimiser step (0: auto)")
	lrMul := fs.Float64("learning-rate-multiplier", 0, "scales the default learning rate (0: auto)")
	seed := fs.Int64("seed", 0, "random seed (initialisation, dropout, shuffling)")
	compute := fs.String("compute-dtype", trainer.ComputeBFloat16, "precision of the base weights' products: bfloat16 (QLoRA's compute dtype) or float32")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *data == "" || *out == "" {
		return errors.New("--data and --out are required")
	}
	if *compute != trainer.ComputeBFloat16 && *compute != trainer.ComputeFloat32 {
		return fmt.Errorf("--compute-dtype %q: use bfloat16 or float32", *compute)
	}
	dir, m, tok, _, err := b.load(ctx, false)
	if err != nil {
		return err
	}
	defer m.Close()
	if tok == nil {
		return fmt.Errorf("%s has no tokenizer.json: training needs one", dir)
	}
	base, err := jobBase(m, tok)
	if err != nil {
		return err
	}
	scratch, err := os.MkdirTemp("", "loraplex-train-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(scratch)
	const name = "base"
	mgr, err := jobs.Open(jobs.Config{Dir: scratch, Workers: b.threads, ComputeDType: *compute}, map[string]*jobs.Base{name: base}, dirPublisher{out: filepath.Clean(*out)})
	if err != nil {
		return err
	}
	defer mgr.Close()

	upload := func(path string) (string, error) {
		f, err := os.Open(path)
		if err != nil {
			return "", err
		}
		defer f.Close()
		file, err := mgr.CreateFile(ctx, filepath.Base(path), "fine-tune", f)
		return file.ID, err
	}
	req := jobs.CreateJobRequest{Model: name, Seed: seed, Hyperparameters: &jobs.Hyperparameters{}}
	if req.TrainingFile, err = upload(*data); err != nil {
		return fmt.Errorf("--data: %w", err)
	}
	if *validation != "" {
		if req.ValidationFile, err = upload(*validation); err != nil {
			return fmt.Errorf("--validation: %w", err)
		}
	}
	if *epochs > 0 {
		req.Hyperparameters.NEpochs = jobs.Num(float64(*epochs))
	}
	if *batch > 0 {
		req.Hyperparameters.BatchSize = jobs.Num(float64(*batch))
	}
	if *lrMul > 0 {
		req.Hyperparameters.LearningRateMultiplier = jobs.Num(*lrMul)
	}
	switch *kind {
	case "lora":
		req.Adapter = &jobs.AdapterSpec{Type: *kind, R: *r, Alpha: *alpha, Dropout: *dropout, TargetModules: *targets}
	case "prompt_tuning":
		req.Adapter = &jobs.AdapterSpec{Type: *kind, NumVirtualTokens: *virtual, InitText: *initText}
	default:
		return fmt.Errorf("--type %q: use lora or prompt_tuning", *kind)
	}
	job, err := mgr.CreateJob(ctx, req)
	if err != nil {
		return err
	}
	return followJob(ctx, mgr, job.ID)
}

// followJob shows a job's progress until it ends; an interrupt cancels it.
func followJob(ctx context.Context, mgr *jobs.Manager, id string) error {
	pr := newProgress("train")
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			mgr.CancelJob(context.Background(), id)
			return fmt.Errorf("interrupted: the job was cancelled and nothing was written")
		case <-tick.C:
		}
		j, err := mgr.GetJob(ctx, id)
		if err != nil {
			return err
		}
		if evs, _, err := mgr.Events(ctx, id, jobs.Page{Limit: 1}); err == nil && len(evs) > 0 {
			if d := evs[0].Data; d != nil {
				step, _ := d["step"].(float64)
				total, _ := d["total_steps"].(float64)
				loss, _ := d["train_loss"].(float64)
				tps, _ := d["tokens_per_second"].(float64)
				if total > 0 {
					eta := time.Duration((total - step) * float64(time.Since(pr.start)) / max(step, 1))
					pr.update(int(step), int(total), fmt.Sprintf("loss %.4f, %.0f tok/s, ETA %s", loss, tps, eta.Round(time.Second)))
				}
			}
		}
		switch j.Status {
		case jobs.StatusSucceeded:
			fmt.Fprintf(stdout, "trained %d tokens; adapter written\n", derefInt(j.TrainedTokens))
			return nil
		case jobs.StatusFailed:
			if j.Error != nil {
				return fmt.Errorf("training failed: %s", j.Error.Message)
			}
			return errors.New("training failed")
		case jobs.StatusCancelled:
			return errors.New("the job was cancelled")
		}
	}
}

func derefInt(p *int64) int64 {
	if p == nil {
		return 0
	}
	return *p
}
