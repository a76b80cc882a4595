package jobs

import (
	"bytes"
	"context"
	"encoding/gob"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/loraplex/loraplex/adapters"
	"github.com/loraplex/loraplex/inference/model"
	"github.com/loraplex/loraplex/training/dataset"
	"github.com/loraplex/loraplex/training/optim"
	"github.com/loraplex/loraplex/training/trainer"
)

func appendJSON[T any](out *[]T, b []byte) error {
	var v T
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*out = append(*out, v)
	return nil
}

// event appends to a job's log. The log is informational, so a failed
// write does not stop the job.
func (m *Manager) event(jobID, level, msg string, data map[string]any) {
	typ := "message"
	if data != nil {
		typ = "metrics"
	}
	e := Event{ID: newID("ftevent-"), Object: "fine_tuning.job.event", CreatedAt: m.unix(), Level: level, Message: msg, Type: typ, Data: data}
	_ = m.db.insertEvent(context.WithoutCancel(m.ctx), jobID, e)
}

// fail marks a job failed unless it already finished.
func (m *Manager) fail(id, code, param, msg string) {
	var p *string
	if param != "" {
		p = &param
	}
	_, err := m.update(context.WithoutCancel(m.ctx), id, func(j *Job) error {
		if finished(j.Status) {
			return errSkip
		}
		j.Status = StatusFailed
		j.Error = &JobError{Code: code, Message: msg, Param: p}
		now := m.unix()
		j.FinishedAt = &now
		return nil
	})
	if err == nil {
		m.event(id, "error", msg, nil)
	}
}

var errSkip = errors.New("skip")

func (m *Manager) goValidate(id string) {
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		m.validate(id)
	}()
}

// examples reads and tokenises a stored file for a base model.
func (m *Manager) examples(fileID string, base *Base) ([]dataset.Example, dataset.Stats, error) {
	recs, err := m.readRecords(fileID)
	if err != nil {
		return nil, dataset.Stats{}, err
	}
	return dataset.Tokenize(recs, base.Tokenizer, base.Template, dataset.Config{MaxTokens: m.cfg.MaxTokens, TooLong: m.cfg.TooLong})
}

// validate tokenises a job's files, resolves "auto" hyperparameters and
// queues the job, or fails it with a line-numbered message.
func (m *Manager) validate(id string) {
	j, err := m.db.job(m.ctx, id)
	if err != nil || j.Status != StatusValidating {
		return
	}
	base := m.bases[j.Model]
	if base == nil {
		m.fail(id, "model_not_found", "model", fmt.Sprintf("base model %q is no longer served", j.Model))
		return
	}
	exs, st, err := m.examples(j.TrainingFile, base)
	if err != nil {
		m.fail(id, "invalid_training_file", "training_file", fmt.Sprintf("training file %s: %v", j.TrainingFile, err))
		return
	}
	if j.ValidationFile != nil {
		if _, _, err := m.examples(*j.ValidationFile, base); err != nil {
			m.fail(id, "invalid_validation_file", "validation_file", fmt.Sprintf("validation file %s: %v", *j.ValidationFile, err))
			return
		}
	}
	hp := resolve(j.Hyperparameters, len(exs))
	_, err = m.update(m.ctx, id, func(j *Job) error {
		if j.Status != StatusValidating {
			return errSkip
		}
		j.Status = StatusQueued
		j.Hyperparameters = hp
		j.Method.Supervised = &Supervised{Hyperparameters: &hp}
		return nil
	})
	if err != nil {
		return
	}
	msg := fmt.Sprintf("Files validated: %d examples, %d tokens, %d trained", st.Examples, st.Tokens, st.TrainableTokens)
	if st.Truncated > 0 || st.Dropped > 0 {
		msg += fmt.Sprintf(" (%d truncated to %d tokens, %d left without trained tokens and skipped)", st.Truncated, m.cfg.MaxTokens, st.Dropped)
	}
	m.event(id, "info", msg+"; job queued", nil)
	select {
	case m.wake <- struct{}{}:
	default:
	}
}

// resolve replaces "auto" with concrete values: 3 epochs, a batch of about
// 1/32 of the examples (1..8) and multiplier 1.
func resolve(hp Hyperparameters, examples int) Hyperparameters {
	if !hp.NEpochs.Set {
		hp.NEpochs = Num(3)
	}
	if !hp.BatchSize.Set {
		hp.BatchSize = Num(float64(min(8, max(1, examples/32))))
	}
	if !hp.LearningRateMultiplier.Set {
		hp.LearningRateMultiplier = Num(1)
	}
	return hp
}

func (m *Manager) runner() {
	defer m.wg.Done()
	for {
		id, err := m.next()
		if err == nil && id != "" {
			m.run(id)
			continue
		}
		select {
		case <-m.wake:
		case <-m.ctx.Done():
			return
		}
	}
}

// next picks the job to train: one left running by a previous process
// first, then the oldest queued one.
func (m *Manager) next() (string, error) {
	if m.ctx.Err() != nil {
		return "", m.ctx.Err()
	}
	for _, status := range []string{StatusRunning, StatusQueued} {
		ids, err := m.db.jobsWithStatus(m.ctx, status)
		if err != nil || len(ids) > 0 {
			return first(ids), err
		}
	}
	return "", nil
}

func first(ids []string) string {
	if len(ids) == 0 {
		return ""
	}
	return ids[0]
}

func (m *Manager) run(id string) {
	ctx, cancel := context.WithCancel(m.ctx)
	defer cancel()
	j, err := m.update(ctx, id, func(j *Job) error {
		if j.Status != StatusQueued && j.Status != StatusRunning {
			return errSkip
		}
		j.Status = StatusRunning
		m.cancels[id] = cancel
		return nil
	})
	if err != nil {
		return
	}
	defer func() {
		m.mu.Lock()
		delete(m.cancels, id)
		close(m.changed) // for WaitStopped
		m.changed = make(chan struct{})
		m.mu.Unlock()
	}()
	err = m.train(ctx, j)
	switch {
	case err == nil:
	case m.ctx.Err() != nil:
		// Shutting down: the job stays running and resumes at the next Open.
	case errors.Is(err, context.Canceled):
		m.event(id, "info", "Job cancelled", nil)
	default:
		m.fail(id, "training_failed", "", err.Error())
	}
}

// plan is a job's fixed training schedule.
type plan struct {
	exs      []dataset.Example
	batch    int
	perEpoch int
	total    int
	seed     uint64
	perms    map[int][]int
}

// batchAt returns the examples of optimiser step s (1-based). Each epoch
// shuffles with its own seeded permutation, so a resumed job sees exactly
// the batches it would have seen.
func (p *plan) batchAt(s int) []dataset.Example {
	epoch, b := (s-1)/p.perEpoch, (s-1)%p.perEpoch
	perm, ok := p.perms[epoch]
	if !ok {
		perm = rand.New(rand.NewPCG(p.seed, uint64(epoch))).Perm(len(p.exs))
		p.perms = map[int][]int{epoch: perm}
	}
	idx := perm[b*p.batch : min((b+1)*p.batch, len(perm))]
	out := make([]dataset.Example, len(idx))
	for i, k := range idx {
		out[i] = p.exs[k]
	}
	return out
}

func tokens(exs []dataset.Example) int {
	n := 0
	for _, e := range exs {
		n += len(e.Tokens)
	}
	return n
}

// newAdapter builds the job's untrained adapter and its base learning rate.
func (m *Manager) newAdapter(j *Job, base *Base) (*model.Adapter, float64, error) {
	a := j.Adapter
	seed := uint64(j.Seed)
	if a.Type == "prompt_tuning" {
		var ids []int32
		if a.InitText != "" {
			ids = base.Tokenizer.Encode(a.InitText, false)
		}
		ad, err := trainer.NewPromptTuning(base.Model, a.NumVirtualTokens, ids, seed)
		return ad, m.cfg.PromptLR, err
	}
	var targets []model.Module
	for _, name := range a.TargetModules {
		mod, _ := model.ModuleByName(name)
		targets = append(targets, mod)
	}
	ad, err := trainer.NewLoRA(base.Model, trainer.LoRASpec{R: a.R, Alpha: float32(a.Alpha), Targets: targets}, seed)
	return ad, m.cfg.LoRALR, err
}

func (m *Manager) modelName(j *Job) string {
	return fmt.Sprintf("ft:%s:%s:%s:%s", j.Model, m.cfg.Org, j.Suffix, strings.TrimPrefix(j.ID, "ftjob-"))
}

// train runs (or resumes) a job to the end and publishes its adapter.
func (m *Manager) train(ctx context.Context, j *Job) error {
	base := m.bases[j.Model]
	if base == nil {
		return fmt.Errorf("base model %q is no longer served", j.Model)
	}
	exs, _, err := m.examples(j.TrainingFile, base)
	if err != nil {
		return err
	}
	var valid []dataset.Example
	if j.ValidationFile != nil {
		if valid, _, err = m.examples(*j.ValidationFile, base); err != nil {
			return err
		}
	}
	hp := resolve(j.Hyperparameters, len(exs))
	p := &plan{exs: exs, batch: int(hp.BatchSize.Value), seed: uint64(j.Seed)}
	p.perEpoch = (len(exs) + p.batch - 1) / p.batch
	p.total = p.perEpoch * int(hp.NEpochs.Value)

	ad, lr, err := m.newAdapter(j, base)
	if err != nil {
		return err
	}
	tr, err := trainer.New(base.Model, ad, trainer.Config{Dropout: float32(j.Adapter.Dropout), Seed: uint64(j.Seed), KeepBytes: m.cfg.ActivationBytes, ComputeDType: m.cfg.ComputeDType})
	if err != nil {
		return err
	}
	opt, err := optim.New(optim.Config{LR: lr * hp.LearningRateMultiplier.Value, WarmupSteps: p.total / 10, TotalSteps: p.total}, tr.Params())
	if err != nil {
		return err
	}
	start, err := m.resume(ctx, j.ID, tr, opt)
	if err != nil {
		return err
	}
	var trained int64
	for s := 1; s <= start; s++ {
		trained += int64(tokens(p.batchAt(s)))
	}
	if start > 0 {
		m.event(j.ID, "info", fmt.Sprintf("Resumed from the checkpoint at step %d", start), nil)
	} else {
		m.event(j.ID, "info", fmt.Sprintf("Fine-tuning started: %d steps", p.total), nil)
	}
	name := m.modelName(j)
	began := time.Now()
	for s := start + 1; s <= p.total; s++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		t0 := time.Now()
		batch := p.batchAt(s)
		res, err := m.accumulate(ctx, tr, batch, uint64(s))
		if err != nil {
			return err
		}
		opt.Step(1 / float32(max(res.Tokens, 1)))
		n := tokens(batch)
		trained += int64(n)
		acc := float64(res.Correct) / float64(max(res.Tokens, 1))
		m.event(j.ID, "info", fmt.Sprintf("Step %d/%d: training loss=%.4f", s, p.total, res.Mean()), map[string]any{
			"step": s, "total_steps": p.total, "train_loss": res.Mean(), "train_mean_token_accuracy": acc,
			"tokens_per_second": float64(n) / max(time.Since(t0).Seconds(), 1e-9),
		})
		if s%m.cfg.CheckpointEvery == 0 || s == p.total {
			met := Metrics{Step: s, TrainLoss: res.Mean(), TrainMeanTokenAccuracy: acc}
			if len(valid) > 0 {
				vr, err := m.evaluate(ctx, tr, valid)
				if err != nil {
					return err
				}
				vl, va := vr.Mean(), float64(vr.Correct)/float64(max(vr.Tokens, 1))
				met.ValidLoss, met.ValidMeanTokenAccuracy = &vl, &va
			}
			if err := m.checkpoint(ctx, j.ID, name, s, met, tr, opt); err != nil {
				return err
			}
		}
		if _, err := m.update(ctx, j.ID, func(cur *Job) error {
			if cur.Status != StatusRunning {
				return context.Canceled
			}
			cur.TrainedTokens = &trained
			perStep := time.Since(began) / time.Duration(s-start)
			eta := m.now().Add(perStep * time.Duration(p.total-s)).Unix()
			cur.EstimatedFinish = &eta
			return nil
		}); err != nil {
			return err
		}
		if m.afterStep != nil {
			m.afterStep(j.ID, s)
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := m.publish(name, j, ad); err != nil {
		return err
	}
	resultID, err := m.resultFile(ctx, j.ID)
	if err != nil {
		return err
	}
	_, err = m.update(context.WithoutCancel(ctx), j.ID, func(cur *Job) error {
		if cur.Status != StatusRunning {
			return context.Canceled
		}
		cur.Status = StatusSucceeded
		cur.FineTunedModel = &name
		cur.TrainedTokens = &trained
		cur.ResultFiles = []string{resultID}
		cur.EstimatedFinish = nil
		now := m.unix()
		cur.FinishedAt = &now
		return nil
	})
	if err == nil {
		m.event(j.ID, "info", "The job has successfully completed; the model is available as "+name, nil)
	}
	return err
}

// accumulate runs one optimiser step's batch in micro-batches of at most
// MaxBatchTokens rows.
func (m *Manager) accumulate(ctx context.Context, tr *trainer.Trainer, batch []dataset.Example, key uint64) (trainer.Result, error) {
	var total trainer.Result
	for lo := 0; lo < len(batch); {
		hi, rows := lo, 0
		for hi < len(batch) && (hi == lo || rows+len(batch[hi].Tokens) <= m.cfg.MaxBatchTokens) {
			rows += len(batch[hi].Tokens)
			hi++
		}
		res, err := tr.Accumulate(ctx, m.pool, batch[lo:hi], key<<16|uint64(lo))
		if err != nil {
			return total, err
		}
		total.Add(res)
		lo = hi
	}
	return total, nil
}

func (m *Manager) evaluate(ctx context.Context, tr *trainer.Trainer, exs []dataset.Example) (trainer.Result, error) {
	var total trainer.Result
	for i := range exs {
		res, err := tr.Loss(ctx, m.pool, exs[i:i+1])
		if err != nil {
			return total, err
		}
		total.Add(res)
	}
	return total, nil
}

func (m *Manager) publish(name string, j *Job, ad *model.Adapter) error {
	a := j.Adapter
	err := m.pub.Publish(name, func(dir string) error {
		if a.Type == "prompt_tuning" {
			init := "RANDOM"
			if a.InitText != "" {
				init = "TEXT"
			}
			return adapters.SavePromptTuning(dir, &adapters.PEFTConfig{BaseModel: j.Model, PromptTuningInit: init, PromptTuningInitText: a.InitText}, ad)
		}
		return adapters.SaveLoRA(dir, &adapters.PEFTConfig{BaseModel: j.Model, R: a.R, Alpha: a.Alpha, Dropout: a.Dropout,
			TargetModules: adapters.Modules{Names: a.TargetModules}}, ad)
	})
	if err != nil {
		return fmt.Errorf("publishing %s: %w", name, err)
	}
	return nil
}

// resultFile stores the per-step metrics as a CSV file of purpose
// fine-tune-results, as OpenAI does.
func (m *Manager) resultFile(ctx context.Context, jobID string) (string, error) {
	var evs []Event
	if _, err := m.db.list(ctx, "events", "job_id", jobID, Page{Limit: 1 << 30}, true, func(b []byte) error { return appendJSON(&evs, b) }); err != nil {
		return "", err
	}
	var buf bytes.Buffer
	buf.WriteString("step,train_loss,train_accuracy\n")
	for _, e := range evs {
		if e.Type == "metrics" {
			fmt.Fprintf(&buf, "%v,%v,%v\n", e.Data["step"], e.Data["train_loss"], e.Data["train_mean_token_accuracy"])
		}
	}
	f := File{ID: newID("file-"), Object: "file", CreatedAt: m.unix(), Filename: "step_metrics.csv", Purpose: PurposeFineTuneResults, Status: "processed", Bytes: int64(buf.Len())}
	if _, err := writeFile(m.filePath(f.ID), &buf); err != nil {
		return "", err
	}
	return f.ID, m.db.insertFile(ctx, f)
}

// ---- checkpoints ----

type weights struct{ W [][]float32 }

func (m *Manager) checkpointDir(jobID string) string {
	return filepath.Join(m.cfg.Dir, "checkpoints", jobID)
}

// checkpoint writes adapter weights and optimiser state into a temporary
// directory, syncs it and renames it into place before recording it, so a
// crash leaves either the whole checkpoint or none.
func (m *Manager) checkpoint(ctx context.Context, jobID, name string, step int, met Metrics, tr *trainer.Trainer, opt *optim.AdamW) error {
	parent := m.checkpointDir(jobID)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return err
	}
	dir := filepath.Join(parent, "step-"+strconv.Itoa(step))
	tmp, err := os.MkdirTemp(parent, ".tmp-*")
	if err != nil {
		return err
	}
	var ws weights
	for _, p := range tr.Params() {
		ws.W = append(ws.W, p.W)
	}
	var wb, ob bytes.Buffer
	if err := gob.NewEncoder(&wb).Encode(ws); err != nil {
		return err
	}
	if err := opt.Save(&ob); err != nil {
		return err
	}
	for f, b := range map[string][]byte{"weights.gob": wb.Bytes(), "optimizer.gob": ob.Bytes()} {
		if _, err := writeFile(filepath.Join(tmp, f), bytes.NewReader(b)); err != nil {
			os.RemoveAll(tmp)
			return err
		}
	}
	os.RemoveAll(dir) // a stale copy from a run that crashed before recording it
	if err := os.Rename(tmp, dir); err != nil {
		os.RemoveAll(tmp)
		return err
	}
	if err := syncDir(parent); err != nil {
		return err
	}
	c := Checkpoint{ID: newID("ftckpt_"), Object: "fine_tuning.job.checkpoint", CreatedAt: m.unix(),
		FineTunedModelCheckpoint: name + ":ckpt-step-" + strconv.Itoa(step), StepNumber: step, Metrics: met, FineTuningJobID: jobID}
	if err := m.db.insertCheckpoint(context.WithoutCancel(ctx), c, dir); err != nil {
		return err
	}
	m.prune(parent)
	return nil
}

// prune keeps the newest KeepCheckpoints checkpoint directories.
func (m *Manager) prune(parent string) {
	entries, err := os.ReadDir(parent)
	if err != nil {
		return
	}
	var steps []int
	for _, e := range entries {
		if s, ok := strings.CutPrefix(e.Name(), "step-"); ok {
			if n, err := strconv.Atoi(s); err == nil {
				steps = append(steps, n)
			}
		}
	}
	slices.Sort(steps)
	for _, s := range steps[:max(0, len(steps)-m.cfg.KeepCheckpoints)] {
		os.RemoveAll(filepath.Join(parent, "step-"+strconv.Itoa(s)))
	}
}

// resume restores the newest checkpoint, if any, and returns its step.
func (m *Manager) resume(ctx context.Context, jobID string, tr *trainer.Trainer, opt *optim.AdamW) (int, error) {
	dir, step, err := m.db.lastCheckpoint(ctx, jobID)
	if err != nil || dir == "" {
		return 0, err
	}
	wb, err := os.ReadFile(filepath.Join(dir, "weights.gob"))
	if err != nil {
		return 0, fmt.Errorf("reading checkpoint: %w", err)
	}
	var ws weights
	if err := gob.NewDecoder(bytes.NewReader(wb)).Decode(&ws); err != nil {
		return 0, fmt.Errorf("reading checkpoint: %w", err)
	}
	params := tr.Params()
	if len(ws.W) != len(params) {
		return 0, fmt.Errorf("checkpoint at step %d holds %d tensors, the adapter has %d", step, len(ws.W), len(params))
	}
	for i, p := range params {
		if len(ws.W[i]) != len(p.W) {
			return 0, fmt.Errorf("checkpoint at step %d: tensor %d has the wrong size", step, i)
		}
		copy(p.W, ws.W[i])
	}
	f, err := os.Open(filepath.Join(dir, "optimizer.gob"))
	if err != nil {
		return 0, fmt.Errorf("reading checkpoint: %w", err)
	}
	defer f.Close()
	if err := opt.Load(f); err != nil {
		return 0, err
	}
	if opt.Steps() != step {
		return 0, fmt.Errorf("checkpoint at step %d holds optimizer state of step %d", step, opt.Steps())
	}
	return step, nil
}

// syncDir makes a rename inside dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}
