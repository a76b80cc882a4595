package jobs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/loraplex/loraplex/inference/model"
	"github.com/loraplex/loraplex/quant/par"
	"github.com/loraplex/loraplex/training/dataset"
)

// Config holds the job manager's options.
type Config struct {
	Dir             string  // data directory: database, uploaded files, checkpoints (required)
	Workers         int     // training threads; default 1, leaving the rest to inference
	CheckpointEvery int     // optimiser steps between checkpoints; default 50
	KeepCheckpoints int     // checkpoint directories kept per job; default 3
	MaxFileBytes    int64   // upload limit; default 512 MiB (OpenAI's)
	MaxTokens       int     // sequence length limit; default 2048
	TooLong         string  // "truncate" (default) or "reject" over-long examples
	MaxBatchTokens  int     // rows in one forward/backward; larger batches accumulate; default 4096
	ActivationBytes int64   // activations kept between forward and backward instead of recomputed; default 512 MiB
	ComputeDType    string  // precision of the frozen weights' products (trainer.Config.ComputeDType); default bfloat16
	LoRALR          float64 // learning rate at multiplier 1 for LoRA; default 1e-3
	PromptLR        float64 // learning rate at multiplier 1 for prompt tuning; default 3e-2
	Org             string  // organisation part of fine-tuned model names; default ""
	// Gate, when set, puts the training threads on its Low side: they give
	// way to the inference pool on its High side beyond the gate's share.
	// Without it training competes with inference as an equal.
	Gate *par.Gate
}

// Validate fills defaults and rejects nonsense.
func (c *Config) Validate() error {
	if c.Dir == "" {
		return fmt.Errorf("%w: jobs: Dir is required", ErrInvalid)
	}
	def := func(p *int, v int) {
		if *p == 0 {
			*p = v
		}
	}
	def(&c.Workers, 1)
	def(&c.CheckpointEvery, 50)
	def(&c.KeepCheckpoints, 3)
	def(&c.MaxTokens, 2048)
	def(&c.MaxBatchTokens, 4096)
	if c.MaxFileBytes == 0 {
		c.MaxFileBytes = 512 << 20
	}
	if c.ActivationBytes == 0 {
		c.ActivationBytes = 512 << 20
	}
	if c.TooLong == "" {
		c.TooLong = "truncate"
	}
	if c.LoRALR == 0 {
		c.LoRALR = 1e-3
	}
	if c.PromptLR == 0 {
		c.PromptLR = 3e-2
	}
	if c.Workers < 1 || c.CheckpointEvery < 1 || c.KeepCheckpoints < 1 || c.MaxTokens < 2 || c.MaxBatchTokens < 1 ||
		c.MaxFileBytes < 1 || c.ActivationBytes < 0 || c.LoRALR < 0 || c.PromptLR < 0 || strings.Contains(c.Org, ":") {
		return fmt.Errorf("%w: jobs: counts, limits and rates must be positive and Org must not contain ':'", ErrInvalid)
	}
	if c.TooLong != "truncate" && c.TooLong != "reject" {
		return fmt.Errorf("%w: jobs: TooLong must be truncate or reject, got %q", ErrInvalid, c.TooLong)
	}
	return nil
}

// Base is a base model jobs can train on.
type Base struct {
	Model     *model.Model
	Tokenizer dataset.Tokenizer
	Template  dataset.Template // nil when the model has no chat template
}

// Publisher makes a finished adapter servable under name: it calls write
// with a fresh directory to fill in PEFT format and registers the result.
type Publisher interface {
	Publish(name string, write func(dir string) error) error
}

// Manager runs fine-tuning jobs in the background and keeps files, jobs,
// events and checkpoints in an embedded SQLite database, so jobs survive a
// restart: a job found running resumes from its last checkpoint.
type Manager struct {
	cfg   Config
	bases map[string]*Base
	pub   Publisher
	db    *store
	pool  *par.Pool
	now   func() time.Time

	ctx  context.Context // cancelled by Close
	stop context.CancelFunc
	wg   sync.WaitGroup
	wake chan struct{} // a job was queued

	mu      sync.Mutex
	cancels map[string]context.CancelFunc // running job -> user cancel
	changed chan struct{}                 // closed and replaced on every job update and when a job stops training

	afterStep func(jobID string, step int) // test hook
}

// Open opens (or creates) the data directory, resumes unfinished jobs and
// starts the background runner.
func Open(cfg Config, bases map[string]*Base, pub Publisher) (*Manager, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	for _, d := range []string{"files", "checkpoints"} {
		if err := os.MkdirAll(filepath.Join(cfg.Dir, d), 0o755); err != nil {
			return nil, fmt.Errorf("jobs: creating data directory: %w", err)
		}
	}
	db, err := openStore(filepath.Join(cfg.Dir, "jobs.db"))
	if err != nil {
		return nil, fmt.Errorf("jobs: %w", err)
	}
	ctx, stop := context.WithCancel(context.Background())
	pool := par.New
	if cfg.Gate != nil {
		pool = func(workers int) *par.Pool { return cfg.Gate.Pool(workers, par.Low) }
	}
	m := &Manager{cfg: cfg, bases: bases, pub: pub, db: db, pool: pool(cfg.Workers), now: time.Now,
		ctx: ctx, stop: stop, wake: make(chan struct{}, 1), cancels: map[string]context.CancelFunc{}, changed: make(chan struct{})}
	validating, err := db.jobsWithStatus(ctx, StatusValidating)
	if err != nil {
		db.close()
		return nil, fmt.Errorf("jobs: %w", err)
	}
	for _, id := range validating {
		m.goValidate(id)
	}
	m.wg.Add(1)
	go m.runner()
	return m, nil
}

// Close stops the background work and closes the database. A job that was
// running stays "running" on disk and resumes at the next Open.
func (m *Manager) Close() error {
	m.stop()
	m.wg.Wait()
	return m.db.close()
}

func (m *Manager) unix() int64 { return m.now().Unix() }

// Wait blocks until job id has finished (succeeded, failed or cancelled)
// and returns it.
func (m *Manager) Wait(ctx context.Context, id string) (*Job, error) {
	return m.WaitUntil(ctx, id, func(*Job) bool { return false })
}

// WaitUntil blocks until ok holds for job id or the job has finished, and
// returns it; ok sees every stored update, e.g. trained_tokens after each
// optimiser step.
func (m *Manager) WaitUntil(ctx context.Context, id string, ok func(*Job) bool) (*Job, error) {
	for {
		m.mu.Lock()
		ch := m.changed
		m.mu.Unlock()
		j, err := m.db.job(ctx, id)
		if err != nil {
			return nil, err
		}
		if finished(j.Status) || ok(j) {
			return j, nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-m.ctx.Done():
			return nil, ErrClosed
		}
	}
}

// WaitStopped blocks until job id no longer trains. A cancelled job is
// marked at once but stops at its next step; this waits for that step.
func (m *Manager) WaitStopped(ctx context.Context, id string) error {
	for {
		m.mu.Lock()
		_, training := m.cancels[id]
		ch := m.changed
		m.mu.Unlock()
		if !training {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// ---- files ----

var jsonlName = regexp.MustCompile(`(?i)\.jsonl$`)

// CreateFile stores an upload. Fine-tuning files must be .jsonl and are
// checked line by line here, so a bad file is refused before any job uses it.
func (m *Manager) CreateFile(ctx context.Context, filename, purpose string, r io.Reader) (File, error) {
	if purpose != PurposeFineTune {
		return File{}, invalid("purpose", "invalid_purpose", "purpose %q is not supported; use %q", purpose, PurposeFineTune)
	}
	name := filepath.Base(filepath.Clean("/" + filename))
	if !jsonlName.MatchString(name) {
		return File{}, invalid("file", "invalid_file_format", "fine-tuning files must be JSONL with a .jsonl name, got %q", filename)
	}
	f := File{ID: newID("file-"), Object: "file", CreatedAt: m.unix(), Filename: name, Purpose: purpose, Status: "processed"}
	path := m.filePath(f.ID)
	n, err := writeFile(path, io.LimitReader(r, m.cfg.MaxFileBytes+1))
	if err != nil {
		return File{}, fmt.Errorf("jobs: storing upload: %w", err)
	}
	if n > m.cfg.MaxFileBytes {
		os.Remove(path)
		return File{}, &Error{Kind: ErrTooLarge, Code: "file_too_large", Param: "file", Message: fmt.Sprintf("files are limited to %d bytes", m.cfg.MaxFileBytes)}
	}
	f.Bytes = n
	if _, err := m.readRecords(f.ID); err != nil {
		os.Remove(path)
		return File{}, err
	}
	if err := m.db.insertFile(ctx, f); err != nil {
		os.Remove(path)
		return File{}, fmt.Errorf("jobs: %w", err)
	}
	return f, nil
}

func (m *Manager) filePath(id string) string { return filepath.Join(m.cfg.Dir, "files", id) }

// writeFile writes r to path atomically (temporary file, fsync, rename).
func writeFile(path string, r io.Reader) (int64, error) {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".upload-*")
	if err != nil {
		return 0, err
	}
	n, err := io.Copy(tmp, r)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		os.Remove(tmp.Name())
	}
	return n, err
}

// readRecords parses a stored fine-tuning file.
func (m *Manager) readRecords(id string) ([]dataset.Record, error) {
	f, err := os.Open(m.filePath(id))
	if err != nil {
		return nil, fmt.Errorf("jobs: opening file %s: %w", id, err)
	}
	defer f.Close()
	recs, err := dataset.Read(f, dataset.ReadConfig{})
	if err != nil {
		return nil, invalid("file", "invalid_file_format", "%v", err)
	}
	return recs, nil
}

// ListFilesOptions filters and pages GET /v1/files.
type ListFilesOptions struct {
	Purpose string
	After   string
	Limit   int  // 1..10000; 0 means 10000
	Asc     bool // oldest first
}

// ListFiles lists files newest first (or oldest first with Asc).
func (m *Manager) ListFiles(ctx context.Context, o ListFilesOptions) ([]File, bool, error) {
	limit, err := limitOf(o.Limit, 10000, 10000)
	if err != nil {
		return nil, false, err
	}
	col := ""
	if o.Purpose != "" {
		col = "purpose"
	}
	var out []File
	more, err := m.db.list(ctx, "files", col, o.Purpose, Page{After: o.After, Limit: limit}, o.Asc, func(b []byte) error {
		return appendJSON(&out, b)
	})
	return out, more, err
}

// GetFile returns a file's metadata.
func (m *Manager) GetFile(ctx context.Context, id string) (File, error) { return m.db.file(ctx, id) }

// OpenFile returns a file's content.
func (m *Manager) OpenFile(ctx context.Context, id string) (io.ReadCloser, File, error) {
	f, err := m.db.file(ctx, id)
	if err != nil {
		return nil, f, err
	}
	rc, err := os.Open(m.filePath(id))
	if err != nil {
		return nil, f, fmt.Errorf("jobs: file %s: %w", id, err)
	}
	return rc, f, nil
}

// DeleteFile removes a file unless an unfinished job uses it (ErrConflict).
func (m *Manager) DeleteFile(ctx context.Context, id string) error {
	if _, err := m.db.file(ctx, id); err != nil {
		return err
	}
	job, err := m.db.fileInUse(ctx, id)
	if err != nil {
		return fmt.Errorf("jobs: %w", err)
	}
	if job != "" {
		return &Error{Kind: ErrConflict, Code: "file_in_use", Param: "file_id",
			Message: fmt.Sprintf("file %s is used by fine-tuning job %s; cancel the job or wait for it to finish", id, job)}
	}
	if err := m.db.deleteFile(ctx, id); err != nil {
		return fmt.Errorf("jobs: %w", err)
	}
	if err := os.Remove(m.filePath(id)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("jobs: %w", err)
	}
	return nil
}

// ---- jobs ----

var suffixRE = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,64}$`)

// CreateJob checks the request, stores the job as validating_files and
// validates its files in the background.
func (m *Manager) CreateJob(ctx context.Context, req CreateJobRequest) (*Job, error) {
	if m.ctx.Err() != nil {
		return nil, ErrClosed
	}
	if _, ok := m.bases[req.Model]; !ok {
		names := make([]string, 0, len(m.bases))
		for n := range m.bases {
			names = append(names, n)
		}
		slices.Sort(names)
		return nil, &Error{Kind: ErrNotFound, Code: "model_not_found", Param: "model",
			Message: fmt.Sprintf("base model %q is not available for fine-tuning; available: %s", req.Model, strings.Join(names, ", "))}
	}
	j := &Job{ID: newID("ftjob-"), Object: "fine_tuning.job", CreatedAt: m.unix(), Model: req.Model, OrganizationID: m.cfg.Org,
		TrainingFile: req.TrainingFile, Status: StatusValidating, Suffix: req.Suffix, Metadata: req.Metadata, ResultFiles: []string{}}
	if err := m.checkFile(ctx, "training_file", req.TrainingFile); err != nil {
		return nil, err
	}
	if req.ValidationFile != "" {
		if err := m.checkFile(ctx, "validation_file", req.ValidationFile); err != nil {
			return nil, err
		}
		j.ValidationFile = &req.ValidationFile
	}
	if req.Suffix != "" && !suffixRE.MatchString(req.Suffix) {
		return nil, invalid("suffix", "invalid_suffix", "suffix must be 1-64 letters, digits, '-', '_' or '.', got %q", req.Suffix)
	}
	if req.Seed != nil {
		if *req.Seed < 0 || *req.Seed > math.MaxInt32 {
			return nil, invalid("seed", "invalid_seed", "seed must be in 0..2147483647, got %d", *req.Seed)
		}
		j.Seed = *req.Seed
	} else {
		j.Seed = m.now().UnixNano() & math.MaxInt32
	}
	hp, method, err := methodOf(req)
	if err != nil {
		return nil, err
	}
	j.Hyperparameters, j.Method = hp, method
	if j.Adapter, err = adapterOf(req.Adapter); err != nil {
		return nil, err
	}
	if err := m.db.insertJob(ctx, j); err != nil {
		return nil, fmt.Errorf("jobs: %w", err)
	}
	m.event(j.ID, "info", "Validating training file: "+j.TrainingFile, nil)
	m.goValidate(j.ID)
	return j, nil
}

func (m *Manager) checkFile(ctx context.Context, param, id string) error {
	if id == "" {
		return invalid(param, "missing_required_parameter", "%s is required", param)
	}
	f, err := m.db.file(ctx, id)
	if err != nil {
		var e *Error
		if errors.As(err, &e) {
			e.Kind, e.Param = ErrInvalid, param
		}
		return err
	}
	if f.Purpose != PurposeFineTune {
		return invalid(param, "invalid_file_purpose", "file %s has purpose %q; upload it with purpose %q", id, f.Purpose, PurposeFineTune)
	}
	return nil
}

// methodOf merges the method form and the deprecated top-level form of the
// hyperparameters and checks their ranges.
func methodOf(req CreateJobRequest) (Hyperparameters, Method, error) {
	method := Method{Type: "supervised"}
	hp := Hyperparameters{}
	if req.Hyperparameters != nil {
		hp = *req.Hyperparameters
	}
	if req.Method != nil {
		switch req.Method.Type {
		case "supervised", "":
		case "dpo", "reinforcement":
			return hp, method, &Error{Kind: ErrUnsupported, Code: "unsupported_method", Param: "method.type", Message: fmt.Sprintf("method %q is not supported; use \"supervised\"", req.Method.Type)}
		default:
			return hp, method, invalid("method.type", "invalid_method", "unknown method %q; use \"supervised\"", req.Method.Type)
		}
		if s := req.Method.Supervised; s != nil && s.Hyperparameters != nil {
			if req.Hyperparameters != nil {
				return hp, method, invalid("hyperparameters", "conflicting_hyperparameters", "give hyperparameters either in method.supervised or at the top level, not both")
			}
			hp = *s.Hyperparameters
		}
	}
	check := func(a Auto, name string, lo, hi float64, integer bool) error {
		if !a.Set {
			return nil
		}
		if a.Value < lo || a.Value > hi || (integer && a.Value != math.Trunc(a.Value)) || (!integer && a.Value <= 0) {
			kind := "a number"
			if integer {
				kind = "an integer"
			}
			return invalid("hyperparameters."+name, "invalid_hyperparameter", "%s must be \"auto\" or %s in [%g, %g], got %g", name, kind, lo, hi, a.Value)
		}
		return nil
	}
	if err := errors.Join(check(hp.NEpochs, "n_epochs", 1, 50, true), check(hp.BatchSize, "batch_size", 1, 256, true),
		check(hp.LearningRateMultiplier, "learning_rate_multiplier", 0, 1000, false)); err != nil {
		var e *Error
		errors.As(err, &e)
		return hp, method, e
	}
	method.Supervised = &Supervised{Hyperparameters: &hp}
	return hp, method, nil
}

// adapterOf applies defaults to the adapter extension: LoRA r=16, alpha=32
// on all seven linear modules.
func adapterOf(s *AdapterSpec) (AdapterSpec, error) {
	a := AdapterSpec{Type: "lora"}
	if s != nil {
		a = *s
	}
	switch a.Type {
	case "", "lora":
		a.Type = "lora"
		if a.NumVirtualTokens != 0 || a.InitText != "" {
			return a, invalid("adapter", "invalid_adapter", "num_virtual_tokens and init_text belong to prompt_tuning")
		}
		if a.R == 0 {
			a.R = 16
		}
		if a.Alpha == 0 {
			a.Alpha = 2 * float64(a.R)
		}
		if len(a.TargetModules) == 0 {
			for mod := range model.NumModules {
				a.TargetModules = append(a.TargetModules, mod.String())
			}
		}
		if a.R < 1 || a.R > 1024 {
			return a, invalid("adapter.r", "invalid_adapter", "r must be in 1..1024, got %d", a.R)
		}
		if a.Alpha <= 0 || math.IsInf(a.Alpha, 0) {
			return a, invalid("adapter.alpha", "invalid_adapter", "alpha must be positive, got %g", a.Alpha)
		}
		if a.Dropout < 0 || a.Dropout >= 1 {
			return a, invalid("adapter.dropout", "invalid_adapter", "dropout must be in [0, 1), got %g", a.Dropout)
		}
		for _, name := range a.TargetModules {
			if _, ok := model.ModuleByName(name); !ok {
				return a, invalid("adapter.target_modules", "invalid_adapter", "unknown module %q; use q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj or down_proj", name)
			}
		}
	case "prompt_tuning":
		if a.R != 0 || a.Alpha != 0 || a.Dropout != 0 || len(a.TargetModules) != 0 {
			return a, invalid("adapter", "invalid_adapter", "r, alpha, dropout and target_modules belong to lora")
		}
		if a.NumVirtualTokens == 0 {
			a.NumVirtualTokens = 20
		}
		if a.NumVirtualTokens < 1 || a.NumVirtualTokens > 1024 {
			return a, invalid("adapter.num_virtual_tokens", "invalid_adapter", "num_virtual_tokens must be in 1..1024, got %d", a.NumVirtualTokens)
		}
	default:
		return a, invalid("adapter.type", "invalid_adapter", "adapter type must be \"lora\" or \"prompt_tuning\", got %q", a.Type)
	}
	return a, nil
}

// GetJob returns a job.
func (m *Manager) GetJob(ctx context.Context, id string) (*Job, error) { return m.db.job(ctx, id) }

// ListJobs lists jobs newest first; limit defaults to 20.
func (m *Manager) ListJobs(ctx context.Context, p Page) ([]*Job, bool, error) {
	limit, err := limitOf(p.Limit, 20, 10000)
	if err != nil {
		return nil, false, err
	}
	var out []*Job
	more, err := m.db.list(ctx, "jobs", "", "", Page{After: p.After, Limit: limit}, false, func(b []byte) error {
		return appendJSON(&out, b)
	})
	return out, more, err
}

// Events lists a job's events newest first; limit defaults to 20.
func (m *Manager) Events(ctx context.Context, id string, p Page) ([]Event, bool, error) {
	if _, err := m.db.job(ctx, id); err != nil {
		return nil, false, err
	}
	limit, err := limitOf(p.Limit, 20, 10000)
	if err != nil {
		return nil, false, err
	}
	var out []Event
	more, err := m.db.list(ctx, "events", "job_id", id, Page{After: p.After, Limit: limit}, false, func(b []byte) error {
		return appendJSON(&out, b)
	})
	return out, more, err
}

// Checkpoints lists a job's checkpoints newest first; limit defaults to 10.
func (m *Manager) Checkpoints(ctx context.Context, id string, p Page) ([]Checkpoint, bool, error) {
	if _, err := m.db.job(ctx, id); err != nil {
		return nil, false, err
	}
	limit, err := limitOf(p.Limit, 10, 10000)
	if err != nil {
		return nil, false, err
	}
	var out []Checkpoint
	more, err := m.db.list(ctx, "checkpoints", "job_id", id, Page{After: p.After, Limit: limit}, false, func(b []byte) error {
		return appendJSON(&out, b)
	})
	return out, more, err
}

// CancelJob cancels a job that has not finished; a running job stops at
// its next step. Cancelling a finished job is an ErrInvalid error.
func (m *Manager) CancelJob(ctx context.Context, id string) (*Job, error) {
	return m.update(ctx, id, func(j *Job) error {
		if finished(j.Status) {
			return invalid("fine_tuning_job_id", "job_finished", "job %s has already %s and cannot be cancelled", id, j.Status)
		}
		if cancel, ok := m.cancels[id]; ok {
			cancel()
		}
		j.Status = StatusCancelled
		now := m.unix()
		j.FinishedAt = &now
		return nil
	})
}

// update applies fn to the stored job under the manager's lock, so the
// runner and API calls never overwrite each other's changes. fn returning
// an error leaves the job as it was.
func (m *Manager) update(ctx context.Context, id string, fn func(j *Job) error) (*Job, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	j, err := m.db.job(ctx, id)
	if err != nil {
		return nil, err
	}
	if err := fn(j); err != nil {
		return nil, err
	}
	if err := m.db.updateJob(ctx, j); err != nil {
		return nil, fmt.Errorf("jobs: %w", err)
	}
	close(m.changed)
	m.changed = make(chan struct{})
	return j, nil
}

func limitOf(limit, def, most int) (int, error) {
	if limit == 0 {
		return def, nil
	}
	if limit < 1 || limit > most {
		return 0, invalid("limit", "invalid_limit", "limit must be in 1..%d, got %d", most, limit)
	}
	return limit, nil
}

// MaxFileBytes is the upload limit, for the HTTP layer's body limit.
func (m *Manager) MaxFileBytes() int64 { return m.cfg.MaxFileBytes }
