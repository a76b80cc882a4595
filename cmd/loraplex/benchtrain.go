package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"

	"github.com/loraplex/loraplex/training/jobs"
)

// The job bench runs beside a scenario with --with-training: LoRA r=16 on
// all seven projections, batch size 1, on benchTrainExamples generated
// prompt/completion pairs of about 40 tokens, for the most epochs the API
// allows, so that it outlasts any scenario.
const (
	benchTrainExamples = 256
	benchTrainEpochs   = 50
)

// benchTrainer starts and cancels bench's fine-tuning jobs through the
// server's job manager, the one serve's HTTP API drives.
type benchTrainer struct {
	mgr   *jobs.Manager
	model string // the base model's name
	file  string // the uploaded training file
	seed  int64
}

// benchTrainWords are the generated examples' vocabulary.
var benchTrainWords = strings.Fields(`the a one two red blue green small large old new river city garden
	market window letter summer winter morning evening quiet bright slow quick open closed north south
	walks finds keeps brings reads writes builds carries follows remembers`)

// newBenchTrainer uploads the generated training file.
func newBenchTrainer(ctx context.Context, mgr *jobs.Manager, model string, seed int64) (*benchTrainer, error) {
	rng := rand.New(rand.NewPCG(uint64(seed), 0x7472))
	text := func(n int) string {
		w := make([]string, n)
		for i := range w {
			w[i] = benchTrainWords[rng.IntN(len(benchTrainWords))]
		}
		return strings.Join(w, " ")
	}
	var data strings.Builder
	enc := json.NewEncoder(&data)
	for range benchTrainExamples {
		if err := enc.Encode(map[string]string{"prompt": text(12) + ":", "completion": " " + text(8) + "."}); err != nil {
			return nil, err
		}
	}
	f, err := mgr.CreateFile(ctx, "bench-train.jsonl", jobs.PurposeFineTune, strings.NewReader(data.String()))
	if err != nil {
		return nil, fmt.Errorf("uploading the training file: %w", err)
	}
	return &benchTrainer{mgr: mgr, model: model, file: f.ID, seed: seed}, nil
}

// start creates a job and returns it once it has trained its first step,
// so that the scenario meets a job in its steady state.
func (t *benchTrainer) start(ctx context.Context) (*jobs.Job, error) {
	seed := t.seed
	j, err := t.mgr.CreateJob(ctx, jobs.CreateJobRequest{Model: t.model, TrainingFile: t.file, Suffix: "bench", Seed: &seed,
		Hyperparameters: &jobs.Hyperparameters{NEpochs: jobs.Num(benchTrainEpochs), BatchSize: jobs.Num(1)},
		Adapter:         &jobs.AdapterSpec{Type: "lora", R: benchRank, Alpha: 2 * benchRank}})
	if err != nil {
		return nil, fmt.Errorf("starting the fine-tuning job: %w", err)
	}
	j, err = t.mgr.WaitUntil(ctx, j.ID, func(j *jobs.Job) bool { return j.TrainedTokens != nil && *j.TrainedTokens > 0 })
	if err != nil {
		return nil, fmt.Errorf("waiting for the fine-tuning job's first step: %w", err)
	}
	if j.Status != jobs.StatusRunning {
		return nil, fmt.Errorf("the fine-tuning job %s %s before the scenario: %s", j.ID, j.Status, jobError(j))
	}
	return j, nil
}

// stop reads the job's progress, cancels it and waits until it no longer
// trains, so the next scenario runs alone. It returns the job as it was
// before the cancel and as it ended.
func (t *benchTrainer) stop(ctx context.Context, id string) (last, ended *jobs.Job, err error) {
	ctx = context.WithoutCancel(ctx) // an interrupted bench still stops its job
	if last, err = t.mgr.GetJob(ctx, id); err != nil {
		return nil, nil, err
	}
	if ended, err = t.mgr.CancelJob(ctx, id); err != nil {
		if errors.Is(err, jobs.ErrInvalid) {
			return nil, nil, fmt.Errorf("the fine-tuning job %s ended during the scenario (%s), so the scenario's figures do not show a running job: shorten --duration or --requests", id, last.Status)
		}
		return nil, nil, fmt.Errorf("cancelling the fine-tuning job: %w", err)
	}
	if err := t.mgr.WaitStopped(ctx, id); err != nil {
		return nil, nil, err
	}
	return last, ended, nil
}

func jobError(j *jobs.Job) string {
	if j.Error == nil {
		return "no error given"
	}
	return j.Error.Message
}

func trainedTokens(j *jobs.Job) int64 {
	if j.TrainedTokens == nil {
		return 0
	}
	return *j.TrainedTokens
}
