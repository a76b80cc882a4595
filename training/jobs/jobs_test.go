package jobs

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/loraplex/loraplex/adapters"
	"github.com/loraplex/loraplex/inference/chat"
	"github.com/loraplex/loraplex/inference/fixtures"
	"github.com/loraplex/loraplex/inference/model"
	"github.com/loraplex/loraplex/inference/tokenizer"
	"github.com/loraplex/loraplex/quant/par"
	"github.com/loraplex/loraplex/training/dataset"
)

var (
	baseOnce sync.Once
	base     *Base
	baseErr  error
)

// stories loads the real stories260k model once per test binary.
func stories(t *testing.T) map[string]*Base {
	t.Helper()
	dir := fixtures.Path(t, "models", "stories260k")
	baseOnce.Do(func() {
		var m *model.Model
		if m, baseErr = model.Load(dir, model.LoadOptions{}); baseErr != nil {
			return
		}
		var tok *tokenizer.Tokenizer
		if tok, baseErr = tokenizer.Load(dir); baseErr != nil {
			return
		}
		base = &Base{Model: m, Tokenizer: tok}
	})
	if baseErr != nil {
		t.Fatal(baseErr)
	}
	return map[string]*Base{"stories260k": base}
}

// dirPublisher writes adapters under a directory, as the registry store does.
type dirPublisher struct {
	root string
	mu   sync.Mutex
	dirs map[string]string
}

func (p *dirPublisher) Publish(name string, write func(dir string) error) error {
	dir := filepath.Join(p.root, strings.ReplaceAll(name, ":", "_"))
	if err := write(dir); err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.dirs == nil {
		p.dirs = map[string]string{}
	}
	p.dirs[name] = dir
	return nil
}

func (p *dirPublisher) dir(name string) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.dirs[name]
}

const qaFile = `{"prompt":"Q: What is the color of the sky? A:","completion":" blue."}
{"prompt":"Q: What does a cow say? A:","completion":" moo."}
{"prompt":"Q: What color is grass? A:","completion":" green."}
{"prompt":"Q: Where do fish live? A:","completion":" water."}
{"prompt":"Q: What do bees make? A:","completion":" honey."}
{"prompt":"Q: What falls from clouds? A:","completion":" rain."}
`

func open(t *testing.T, dir string, cfg Config, bases map[string]*Base) (*Manager, *dirPublisher) {
	t.Helper()
	cfg.Dir = dir
	pub := &dirPublisher{root: t.TempDir()}
	m, err := Open(cfg, bases, pub)
	if err != nil {
		t.Fatal(err)
	}
	return m, pub
}

func upload(t *testing.T, m *Manager, name, content string) File {
	t.Helper()
	f, err := m.CreateFile(context.Background(), name, PurposeFineTune, strings.NewReader(content))
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func wantKind(t *testing.T, err, kind error, param string) {
	t.Helper()
	var e *Error
	if !errors.Is(err, kind) || !errors.As(err, &e) || e.Param != param {
		t.Fatalf("got %v, want %v on %q", err, kind, param)
	}
}

func TestFiles(t *testing.T) {
	ctx := context.Background()
	m, _ := open(t, t.TempDir(), Config{MaxFileBytes: 4096}, nil)
	defer m.Close()
	var ids []string
	for i := range 3 {
		ids = append(ids, upload(t, m, fmt.Sprintf("f%d.jsonl", i), qaFile).ID)
	}
	_, err := m.CreateFile(ctx, "x.jsonl", "assistants", strings.NewReader(qaFile))
	wantKind(t, err, ErrInvalid, "purpose")
	_, err = m.CreateFile(ctx, "x.csv", PurposeFineTune, strings.NewReader(qaFile))
	wantKind(t, err, ErrInvalid, "file")
	_, err = m.CreateFile(ctx, "big.jsonl", PurposeFineTune, strings.NewReader(strings.Repeat(qaFile, 20)))
	wantKind(t, err, ErrTooLarge, "file")
	_, err = m.CreateFile(ctx, "bad.jsonl", PurposeFineTune, strings.NewReader(qaFile+"{\"prompt\":\"x\"}\n"))
	wantKind(t, err, ErrInvalid, "file")
	if !strings.Contains(err.Error(), "line 7:") {
		t.Fatalf("malformed line not numbered: %v", err)
	}

	list, more, err := m.ListFiles(ctx, ListFilesOptions{Limit: 2})
	if err != nil || !more || len(list) != 2 || list[0].ID != ids[2] || list[1].ID != ids[1] {
		t.Fatalf("first page: %v %v %+v", err, more, list)
	}
	list, more, err = m.ListFiles(ctx, ListFilesOptions{Limit: 2, After: list[1].ID})
	if err != nil || more || len(list) != 1 || list[0].ID != ids[0] {
		t.Fatalf("second page: %v %v %+v", err, more, list)
	}
	list, _, _ = m.ListFiles(ctx, ListFilesOptions{Asc: true, Purpose: PurposeFineTune})
	if len(list) != 3 || list[0].ID != ids[0] || list[0].Bytes != int64(len(qaFile)) || list[0].Filename != "f0.jsonl" {
		t.Fatalf("ascending: %+v", list)
	}
	rc, f, err := m.OpenFile(ctx, ids[1])
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(rc)
	rc.Close()
	if string(b) != qaFile || f.ID != ids[1] {
		t.Fatal("content differs from the upload")
	}
	if err := m.DeleteFile(ctx, ids[1]); err != nil {
		t.Fatal(err)
	}
	_, err = m.GetFile(ctx, ids[1])
	wantKind(t, err, ErrNotFound, "file_id")
	wantKind(t, m.DeleteFile(ctx, ids[1]), ErrNotFound, "file_id")
	_, _, err = m.ListFiles(ctx, ListFilesOptions{Limit: 20000})
	wantKind(t, err, ErrInvalid, "limit")
}

func TestCreateJobRejectsBadRequests(t *testing.T) {
	ctx := context.Background()
	m, _ := open(t, t.TempDir(), Config{}, stories(t))
	defer m.Close()
	f := upload(t, m, "qa.jsonl", qaFile)
	results := File{ID: "file-results", Object: "file", Purpose: PurposeFineTuneResults, Filename: "r.csv"}
	if err := m.db.insertFile(ctx, results); err != nil {
		t.Fatal(err)
	}
	n := func(v float64) *Hyperparameters { return &Hyperparameters{NEpochs: Num(v)} }
	seed := int64(-1)
	for _, tc := range []struct {
		req   CreateJobRequest
		kind  error
		param string
	}{
		{CreateJobRequest{Model: "gpt-4o", TrainingFile: f.ID}, ErrNotFound, "model"},
		{CreateJobRequest{Model: "stories260k"}, ErrInvalid, "training_file"},
		{CreateJobRequest{Model: "stories260k", TrainingFile: "file-nope"}, ErrInvalid, "training_file"},
		{CreateJobRequest{Model: "stories260k", TrainingFile: results.ID}, ErrInvalid, "training_file"},
		{CreateJobRequest{Model: "stories260k", TrainingFile: f.ID, ValidationFile: results.ID}, ErrInvalid, "validation_file"},
		{CreateJobRequest{Model: "stories260k", TrainingFile: f.ID, Hyperparameters: n(51)}, ErrInvalid, "hyperparameters.n_epochs"},
		{CreateJobRequest{Model: "stories260k", TrainingFile: f.ID, Hyperparameters: n(1.5)}, ErrInvalid, "hyperparameters.n_epochs"},
		{CreateJobRequest{Model: "stories260k", TrainingFile: f.ID, Hyperparameters: &Hyperparameters{BatchSize: Num(0)}}, ErrInvalid, "hyperparameters.batch_size"},
		{CreateJobRequest{Model: "stories260k", TrainingFile: f.ID, Method: &Method{Type: "supervised", Supervised: &Supervised{Hyperparameters: &Hyperparameters{LearningRateMultiplier: Num(-1)}}}}, ErrInvalid, "hyperparameters.learning_rate_multiplier"},
		{CreateJobRequest{Model: "stories260k", TrainingFile: f.ID, Method: &Method{Type: "dpo"}}, ErrUnsupported, "method.type"},
		{CreateJobRequest{Model: "stories260k", TrainingFile: f.ID, Suffix: "a:b"}, ErrInvalid, "suffix"},
		{CreateJobRequest{Model: "stories260k", TrainingFile: f.ID, Seed: &seed}, ErrInvalid, "seed"},
		{CreateJobRequest{Model: "stories260k", TrainingFile: f.ID, Adapter: &AdapterSpec{Type: "lora", TargetModules: []string{"lm_head"}}}, ErrInvalid, "adapter.target_modules"},
		{CreateJobRequest{Model: "stories260k", TrainingFile: f.ID, Adapter: &AdapterSpec{Type: "lora", Dropout: 1}}, ErrInvalid, "adapter.dropout"},
		{CreateJobRequest{Model: "stories260k", TrainingFile: f.ID, Adapter: &AdapterSpec{Type: "ia3"}}, ErrInvalid, "adapter.type"},
	} {
		_, err := m.CreateJob(ctx, tc.req)
		wantKind(t, err, tc.kind, tc.param)
	}
	if jobs, _, _ := m.ListJobs(ctx, Page{}); len(jobs) != 0 {
		t.Fatalf("rejected requests left %d jobs", len(jobs))
	}
}

func TestJobTrainsAndPublishes(t *testing.T) {
	ctx := context.Background()
	m, pub := open(t, t.TempDir(), Config{CheckpointEvery: 2}, stories(t))
	defer m.Close()
	f := upload(t, m, "qa.jsonl", qaFile)
	seed := int64(7)
	j, err := m.CreateJob(ctx, CreateJobRequest{Model: "stories260k", TrainingFile: f.ID, Suffix: "qa", Seed: &seed,
		Method:  &Method{Type: "supervised", Supervised: &Supervised{Hyperparameters: &Hyperparameters{NEpochs: Num(2), BatchSize: Num(3), LearningRateMultiplier: Num(10)}}},
		Adapter: &AdapterSpec{R: 4}})
	if err != nil {
		t.Fatal(err)
	}
	if j.Status != StatusValidating || j.Adapter.Alpha != 8 || len(j.Adapter.TargetModules) != 7 {
		t.Fatalf("new job: %+v", j)
	}
	done, err := m.Wait(ctx, j.ID)
	if err != nil {
		t.Fatal(err)
	}
	want := "ft:stories260k::qa:" + strings.TrimPrefix(j.ID, "ftjob-")
	if done.Status != StatusSucceeded || done.FineTunedModel == nil || *done.FineTunedModel != want || done.Error != nil {
		t.Fatalf("finished job: %+v %+v", done, done.Error)
	}
	if done.TrainedTokens == nil || *done.TrainedTokens == 0 || len(done.ResultFiles) != 1 || done.FinishedAt == nil {
		t.Fatalf("finished job lacks tokens, results or finish time: %+v", done)
	}
	ad, pc, err := adapters.Load(pub.dir(want), base.Model.Cfg, want)
	if err != nil || pc.R != 4 || ad.LoRA[0][model.Down] == nil {
		t.Fatalf("published adapter: %v %+v", err, pc)
	}

	cks, more, err := m.Checkpoints(ctx, j.ID, Page{})
	if err != nil || more || len(cks) != 2 || cks[0].StepNumber != 4 || cks[0].FineTunedModelCheckpoint != want+":ckpt-step-4" || cks[1].StepNumber != 2 {
		t.Fatalf("checkpoints: %v %+v", err, cks)
	}
	evs, _, err := m.Events(ctx, j.ID, Page{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	steps := 0
	for _, e := range evs {
		if e.Type == "metrics" {
			steps++
			if _, ok := e.Data["train_loss"]; !ok {
				t.Fatalf("metrics event without train_loss: %+v", e)
			}
		}
	}
	if steps != 4 || !strings.Contains(evs[0].Message, "successfully completed") {
		t.Fatalf("%d step events; newest %q", steps, evs[0].Message)
	}
	page, more, _ := m.Events(ctx, j.ID, Page{Limit: 2, After: evs[1].ID})
	if len(page) != 2 || page[0].ID != evs[2].ID || !more {
		t.Fatalf("event paging: %+v", page)
	}
	rc, rf, err := m.OpenFile(ctx, done.ResultFiles[0])
	if err != nil {
		t.Fatal(err)
	}
	csv, _ := io.ReadAll(rc)
	rc.Close()
	if rf.Purpose != PurposeFineTuneResults || bytes.Count(csv, []byte("\n")) != 5 {
		t.Fatalf("result file %+v:\n%s", rf, csv)
	}

	_, err = m.CancelJob(ctx, j.ID)
	wantKind(t, err, ErrInvalid, "fine_tuning_job_id")
	if err := m.DeleteFile(ctx, f.ID); err != nil {
		t.Fatalf("deleting the file of a finished job: %v", err)
	}
}

func TestJobWithoutTrainableTokensFails(t *testing.T) {
	ctx := context.Background()
	m, _ := open(t, t.TempDir(), Config{MaxTokens: 6}, stories(t))
	defer m.Close()
	f := upload(t, m, "long.jsonl", `{"prompt":"Once upon a time there was a long prompt","completion":" end"}`+"\n")
	j, err := m.CreateJob(ctx, CreateJobRequest{Model: "stories260k", TrainingFile: f.ID})
	if err != nil {
		t.Fatal(err)
	}
	done, err := m.Wait(ctx, j.ID)
	if err != nil {
		t.Fatal(err)
	}
	if done.Status != StatusFailed || done.Error == nil || done.Error.Code != "invalid_training_file" || !strings.Contains(done.Error.Message, "no trainable tokens") {
		t.Fatalf("job: %+v, error %+v", done, done.Error)
	}
}

func TestCancelRunningJob(t *testing.T) {
	ctx := context.Background()
	m, _ := open(t, t.TempDir(), Config{}, stories(t))
	defer m.Close()
	f := upload(t, m, "qa.jsonl", qaFile)
	// The hook runs on the job's goroutine and Wait may return as soon as
	// CancelJob has marked the job, so the results travel over a channel.
	type stepResult struct {
		deleteErr error
		cancelled *Job
	}
	results := make(chan stepResult, 1)
	m.afterStep = func(id string, step int) {
		if step == 1 {
			de := m.DeleteFile(ctx, f.ID)
			c, _ := m.CancelJob(ctx, id)
			results <- stepResult{de, c}
		}
	}
	j, err := m.CreateJob(ctx, CreateJobRequest{Model: "stories260k", TrainingFile: f.ID, Hyperparameters: &Hyperparameters{BatchSize: Num(1)}})
	if err != nil {
		t.Fatal(err)
	}
	done, err := m.Wait(ctx, j.ID)
	if err != nil {
		t.Fatal(err)
	}
	r := <-results
	deleteErr, cancelled := r.deleteErr, r.cancelled
	wantKind(t, deleteErr, ErrConflict, "file_id")
	if cancelled == nil || cancelled.Status != StatusCancelled || done.Status != StatusCancelled || done.FineTunedModel != nil {
		t.Fatalf("cancel returned %+v; job ended %+v", cancelled, done)
	}
	if _, err := m.GetFile(ctx, f.ID); err != nil {
		t.Fatalf("file lost: %v", err)
	}
	cks, _, _ := m.Checkpoints(ctx, j.ID, Page{})
	if len(cks) != 0 {
		t.Fatalf("cancelled after step 1 of 18 but %d checkpoints", len(cks))
	}
}

// TestResumeAfterRestart stops the manager in the middle of a job and
// checks that a new manager on the same directory resumes from the last
// checkpoint and ends with exactly the adapter of an uninterrupted run.
func TestResumeAfterRestart(t *testing.T) {
	ctx := context.Background()
	bases := stories(t)
	cfg := Config{CheckpointEvery: 2}
	seed := int64(3)
	req := func(file string) CreateJobRequest {
		return CreateJobRequest{Model: "stories260k", TrainingFile: file, Seed: &seed,
			Hyperparameters: &Hyperparameters{NEpochs: Num(2), BatchSize: Num(2), LearningRateMultiplier: Num(10)}, Adapter: &AdapterSpec{R: 2, Dropout: 0.1}}
	}
	adapterBytes := func(pub *dirPublisher, name string) []byte {
		b, err := os.ReadFile(filepath.Join(pub.dir(name), "adapter_model.safetensors"))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}

	ref, refPub := open(t, t.TempDir(), cfg, bases)
	rf := upload(t, ref, "qa.jsonl", qaFile)
	rj, _ := ref.CreateJob(ctx, req(rf.ID))
	rdone, err := ref.Wait(ctx, rj.ID)
	if err != nil || rdone.Status != StatusSucceeded {
		t.Fatalf("reference run: %v %+v", err, rdone)
	}
	want := adapterBytes(refPub, *rdone.FineTunedModel)
	ref.Close()

	dir := t.TempDir()
	m, _ := open(t, dir, cfg, bases)
	f := upload(t, m, "qa.jsonl", qaFile)
	m.afterStep = func(id string, step int) {
		if step == 3 {
			m.stop() // as if the process died after step 3; the last checkpoint is step 2
		}
	}
	j, err := m.CreateJob(ctx, req(f.ID))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Wait(ctx, j.ID); !errors.Is(err, ErrClosed) {
		t.Fatalf("wait on a stopped manager: %v", err)
	}
	m.Close()
	if st, _ := openStoreJob(t, dir, j.ID); st != StatusRunning {
		t.Fatalf("after the stop the job is %q, want running", st)
	}

	m2, pub2 := open(t, dir, cfg, bases)
	defer m2.Close()
	done, err := m2.Wait(ctx, j.ID)
	if err != nil || done.Status != StatusSucceeded {
		t.Fatalf("resumed run: %v %+v", err, done)
	}
	evs, _, _ := m2.Events(ctx, j.ID, Page{Limit: 100})
	resumed := false
	for _, e := range evs {
		resumed = resumed || e.Message == "Resumed from the checkpoint at step 2"
	}
	if !resumed {
		t.Fatal("no resume event")
	}
	if !bytes.Equal(adapterBytes(pub2, *done.FineTunedModel), want) {
		t.Fatal("the resumed job's adapter differs from an uninterrupted run's")
	}
	if *done.TrainedTokens != *rdone.TrainedTokens {
		t.Fatalf("trained tokens %d, uninterrupted %d", *done.TrainedTokens, *rdone.TrainedTokens)
	}
}

func openStoreJob(t *testing.T, dir, id string) (string, error) {
	t.Helper()
	s, err := openStore(filepath.Join(dir, "jobs.db"))
	if err != nil {
		return "", err
	}
	defer s.close()
	j, err := s.job(context.Background(), id)
	if err != nil {
		return "", err
	}
	return j.Status, nil
}

// TestPromptTuningChatJob trains a prompt-tuning adapter initialised from
// text on a chat-format file rendered by a Jinja ChatML template.
func TestPromptTuningChatJob(t *testing.T) {
	ctx := context.Background()
	b := *stories(t)["stories260k"]
	tmpl, err := chat.Compile(`{% for m in messages %}{{ m['role'] + ': ' + m['content'] + '\n' }}{% endfor %}{% if add_generation_prompt %}{{ 'assistant: ' }}{% endif %}`)
	if err != nil {
		t.Fatal(err)
	}
	b.Template = dataset.ChatTemplate{T: tmpl}
	m, pub := open(t, t.TempDir(), Config{}, map[string]*Base{"stories260k": &b})
	defer m.Close()
	f := upload(t, m, "chat.jsonl", `{"messages":[{"role":"system","content":"Be kind."},{"role":"user","content":"Hi"},{"role":"assistant","content":"Hello!"}]}
{"messages":[{"role":"user","content":"Bye"},{"role":"assistant","content":"See you.","weight":1}]}
`)
	j, err := m.CreateJob(ctx, CreateJobRequest{Model: "stories260k", TrainingFile: f.ID, ValidationFile: f.ID,
		Hyperparameters: &Hyperparameters{NEpochs: Num(2)}, Adapter: &AdapterSpec{Type: "prompt_tuning", NumVirtualTokens: 4, InitText: "Once upon"}})
	if err != nil {
		t.Fatal(err)
	}
	done, err := m.Wait(ctx, j.ID)
	if err != nil || done.Status != StatusSucceeded {
		t.Fatalf("%v %+v %+v", err, done, done.Error)
	}
	ad, pc, err := adapters.Load(pub.dir(*done.FineTunedModel), base.Model.Cfg, "pt")
	if err != nil || ad.NumVirtual != 4 || pc.PromptTuningInit != "TEXT" || pc.PromptTuningInitText != "Once upon" {
		t.Fatalf("published prompt: %v %+v", err, pc)
	}
	cks, _, _ := m.Checkpoints(ctx, j.ID, Page{})
	if len(cks) != 1 || cks[0].Metrics.ValidLoss == nil {
		t.Fatalf("final checkpoint lacks validation metrics: %+v", cks)
	}
}

// TestJobGivesWayToInference trains beside a High pool that never stops
// and compares with an ungated run: the job must finish (the share keeps
// it going), must have waited for the High side, and must train exactly
// the same adapter, since the Low pool's pieces do not depend on timing.
func TestJobGivesWayToInference(t *testing.T) {
	ctx := context.Background()
	bases := stories(t)
	seed := int64(5)
	req := func(file string) CreateJobRequest {
		return CreateJobRequest{Model: "stories260k", TrainingFile: file, Seed: &seed,
			Hyperparameters: &Hyperparameters{NEpochs: Num(1), BatchSize: Num(3), LearningRateMultiplier: Num(10)}, Adapter: &AdapterSpec{R: 4, Dropout: 0.1}}
	}
	train := func(cfg Config) []byte {
		m, pub := open(t, t.TempDir(), cfg, bases)
		defer m.Close()
		f := upload(t, m, "qa.jsonl", qaFile)
		j, err := m.CreateJob(ctx, req(f.ID))
		if err != nil {
			t.Fatal(err)
		}
		done, err := m.Wait(ctx, j.ID)
		if err != nil || done.Status != StatusSucceeded {
			t.Fatalf("job: %v %+v", err, done)
		}
		b, err := os.ReadFile(filepath.Join(pub.dir(*done.FineTunedModel), "adapter_model.safetensors"))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	want := train(Config{})

	gate, err := par.NewGate(0.2)
	if err != nil {
		t.Fatal(err)
	}
	high := gate.Pool(2, par.High)
	stop, stopped := make(chan bool), make(chan bool)
	go func() {
		var sink [2]float64
		for {
			select {
			case <-stop:
				stopped <- true
				return
			default:
			}
			high.For(2, 1, func(lo, hi int) {
				for i := range 2000 {
					sink[lo] += float64(i)
				}
			})
		}
	}()
	got := train(Config{Gate: gate, Workers: 2})
	close(stop)
	<-stopped
	if st := gate.Stats(); st.Waits == 0 || st.Charged == 0 {
		t.Errorf("gate stats %+v: the job never gave way", st)
	}
	if !bytes.Equal(got, want) {
		t.Error("the adapter trained beside busy inference differs from the ungated run's")
	}
}

// WaitUntil sees a running job's progress, and WaitStopped returns only
// once a cancelled job's goroutine has left training (its "Job cancelled"
// event is written after train returns).
func TestWaitUntilProgressAndStopped(t *testing.T) {
	ctx := context.Background()
	m, _ := open(t, t.TempDir(), Config{}, stories(t))
	defer m.Close()
	f := upload(t, m, "qa.jsonl", qaFile)
	j, err := m.CreateJob(ctx, CreateJobRequest{Model: "stories260k", TrainingFile: f.ID,
		Hyperparameters: &Hyperparameters{BatchSize: Num(1), NEpochs: Num(50)}})
	if err != nil {
		t.Fatal(err)
	}
	got, err := m.WaitUntil(ctx, j.ID, func(j *Job) bool { return j.TrainedTokens != nil && *j.TrainedTokens > 0 })
	if err != nil || got.Status != StatusRunning {
		t.Fatalf("waiting for progress: %+v, %v", got, err)
	}
	if _, err := m.CancelJob(ctx, j.ID); err != nil {
		t.Fatal(err)
	}
	if err := m.WaitStopped(ctx, j.ID); err != nil {
		t.Fatal(err)
	}
	evs, _, err := m.Events(ctx, j.ID, Page{Limit: 10000})
	if err != nil || !slices.ContainsFunc(evs, func(e Event) bool { return e.Message == "Job cancelled" }) {
		t.Fatalf("no cancellation event after WaitStopped (%v): %+v", err, evs)
	}
}
