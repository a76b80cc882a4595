package jobs

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
)

// Sentinel errors; every error the Manager returns wraps one of them, so the
// HTTP layer maps them to status codes with errors.Is.
var (
	ErrNotFound    = errors.New("not found")                // 404
	ErrInvalid     = errors.New("invalid request")          // 400
	ErrConflict    = errors.New("conflict")                 // 409: the object is in use
	ErrUnsupported = errors.New("not supported")            // 400
	ErrTooLarge    = errors.New("file too large")           // 413
	ErrClosed      = errors.New("job manager is shut down") // 503
)

// Error is an error about one request field. Param names the field as the
// OpenAI error object does; Code is a machine-readable reason.
type Error struct {
	Kind    error // one of the sentinels
	Code    string
	Param   string
	Message string
}

func (e *Error) Error() string { return e.Kind.Error() + ": " + e.Message }
func (e *Error) Unwrap() error { return e.Kind }

func invalid(param, code, format string, args ...any) error {
	return &Error{Kind: ErrInvalid, Code: code, Param: param, Message: fmt.Sprintf(format, args...)}
}

// File statuses and purposes.
const (
	PurposeFineTune        = "fine-tune"
	PurposeFineTuneResults = "fine-tune-results"
)

// File is an uploaded file (OpenAI's OpenAIFile object).
type File struct {
	ID        string `json:"id"`
	Object    string `json:"object"` // "file"
	Bytes     int64  `json:"bytes"`
	CreatedAt int64  `json:"created_at"`
	Filename  string `json:"filename"`
	Purpose   string `json:"purpose"`
	Status    string `json:"status"` // "processed"
}

// Job statuses, in lifecycle order.
const (
	StatusValidating = "validating_files"
	StatusQueued     = "queued"
	StatusRunning    = "running"
	StatusSucceeded  = "succeeded"
	StatusFailed     = "failed"
	StatusCancelled  = "cancelled"
)

func finished(status string) bool {
	return status == StatusSucceeded || status == StatusFailed || status == StatusCancelled
}

// Auto is a hyperparameter that is either "auto" or a number. The zero
// value is "auto".
type Auto struct {
	Set   bool
	Value float64
}

// Num is a set value.
func Num(v float64) Auto { return Auto{Set: true, Value: v} }

// MarshalJSON writes "auto" or the number.
func (a Auto) MarshalJSON() ([]byte, error) {
	if !a.Set {
		return []byte(`"auto"`), nil
	}
	return strconv.AppendFloat(nil, a.Value, 'g', -1, 64), nil
}

// UnmarshalJSON reads "auto" or a number.
func (a *Auto) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if string(b) == `"auto"` || string(b) == "null" {
		*a = Auto{}
		return nil
	}
	v, err := strconv.ParseFloat(string(b), 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		return fmt.Errorf("want \"auto\" or a number, got %s", b)
	}
	*a = Num(v)
	return nil
}

// Hyperparameters are OpenAI's supervised fine-tuning knobs.
type Hyperparameters struct {
	NEpochs                Auto `json:"n_epochs"`
	BatchSize              Auto `json:"batch_size"`
	LearningRateMultiplier Auto `json:"learning_rate_multiplier"`
}

// Method is the fine-tuning method; only "supervised" is supported.
type Method struct {
	Type       string      `json:"type"`
	Supervised *Supervised `json:"supervised,omitempty"`
}

// Supervised carries the method's hyperparameters.
type Supervised struct {
	Hyperparameters *Hyperparameters `json:"hyperparameters,omitempty"`
}

// AdapterSpec is loraplex's extension: which adapter a job trains.
type AdapterSpec struct {
	Type string `json:"type"` // "lora" (default) or "prompt_tuning"

	R             int      `json:"r,omitempty"`
	Alpha         float64  `json:"alpha,omitempty"`
	Dropout       float64  `json:"dropout"`
	TargetModules []string `json:"target_modules,omitempty"`

	NumVirtualTokens int    `json:"num_virtual_tokens,omitempty"`
	InitText         string `json:"init_text,omitempty"`
}

// JobError says why a job failed.
type JobError struct {
	Code    string  `json:"code"`
	Message string  `json:"message"`
	Param   *string `json:"param"`
}

// Job is a fine-tuning job (OpenAI's FineTuningJob object plus "adapter").
type Job struct {
	ID              string            `json:"id"`
	Object          string            `json:"object"` // "fine_tuning.job"
	CreatedAt       int64             `json:"created_at"`
	FinishedAt      *int64            `json:"finished_at"`
	EstimatedFinish *int64            `json:"estimated_finish"`
	Model           string            `json:"model"`
	OrganizationID  string            `json:"organization_id"`
	TrainingFile    string            `json:"training_file"`
	ValidationFile  *string           `json:"validation_file"`
	Status          string            `json:"status"`
	Error           *JobError         `json:"error"`
	FineTunedModel  *string           `json:"fine_tuned_model"`
	Hyperparameters Hyperparameters   `json:"hyperparameters"`
	Method          Method            `json:"method"`
	ResultFiles     []string          `json:"result_files"`
	TrainedTokens   *int64            `json:"trained_tokens"`
	Seed            int64             `json:"seed"`
	Suffix          string            `json:"user_provided_suffix,omitempty"`
	Integrations    []json.RawMessage `json:"integrations"`
	Metadata        map[string]string `json:"metadata"`
	Adapter         AdapterSpec       `json:"adapter"`
}

// CreateJobRequest is the body of POST /v1/fine_tuning/jobs.
type CreateJobRequest struct {
	Model           string            `json:"model"`
	TrainingFile    string            `json:"training_file"`
	ValidationFile  string            `json:"validation_file,omitempty"`
	Suffix          string            `json:"suffix,omitempty"`
	Seed            *int64            `json:"seed,omitempty"`
	Hyperparameters *Hyperparameters  `json:"hyperparameters,omitempty"` // deprecated top-level form
	Method          *Method           `json:"method,omitempty"`
	Metadata        map[string]string `json:"metadata,omitempty"`
	Adapter         *AdapterSpec      `json:"adapter,omitempty"`
}

// Event is one line of a job's log (fine_tuning.job.event).
type Event struct {
	ID        string         `json:"id"`
	Object    string         `json:"object"` // "fine_tuning.job.event"
	CreatedAt int64          `json:"created_at"`
	Level     string         `json:"level"` // info, warn, error
	Message   string         `json:"message"`
	Type      string         `json:"type"` // message, metrics
	Data      map[string]any `json:"data"`
}

// Metrics are a checkpoint's training metrics.
type Metrics struct {
	Step                   int      `json:"step"`
	TrainLoss              float64  `json:"train_loss"`
	TrainMeanTokenAccuracy float64  `json:"train_mean_token_accuracy"`
	ValidLoss              *float64 `json:"valid_loss"`
	ValidMeanTokenAccuracy *float64 `json:"valid_mean_token_accuracy"`
}

// Checkpoint is a saved training state (fine_tuning.job.checkpoint).
type Checkpoint struct {
	ID                       string  `json:"id"`
	Object                   string  `json:"object"` // "fine_tuning.job.checkpoint"
	CreatedAt                int64   `json:"created_at"`
	FineTunedModelCheckpoint string  `json:"fine_tuned_model_checkpoint"`
	StepNumber               int     `json:"step_number"`
	Metrics                  Metrics `json:"metrics"`
	FineTuningJobID          string  `json:"fine_tuning_job_id"`
}

// Page selects a slice of a newest-first list: items after the one with ID
// After (exclusive), at most Limit of them.
type Page struct {
	After string
	Limit int
}
