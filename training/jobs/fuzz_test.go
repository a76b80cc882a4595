package jobs

import (
	"encoding/json"
	"errors"
	"testing"
)

// FuzzCreateJobRequest feeds arbitrary bodies through the request checks:
// they must never panic, and whatever they accept must be in range.
func FuzzCreateJobRequest(f *testing.F) {
	for _, s := range []string{
		`{"model":"m","training_file":"file-1","hyperparameters":{"n_epochs":"auto","batch_size":4,"learning_rate_multiplier":0.5}}`,
		`{"method":{"type":"supervised","supervised":{"hyperparameters":{"n_epochs":3}}},"adapter":{"type":"lora","r":8,"alpha":16,"target_modules":["q_proj"]}}`,
		`{"adapter":{"type":"prompt_tuning","num_virtual_tokens":20,"init_text":"Hi"}}`,
		`{"hyperparameters":{"n_epochs":1e308}}`, `{"method":{"type":"dpo"}}`, `{"adapter":{"r":-1}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var req CreateJobRequest
		if json.Unmarshal(b, &req) != nil {
			return
		}
		hp, _, err := methodOf(req)
		if err == nil {
			inRange := func(a Auto, lo, hi float64) bool { return !a.Set || (a.Value >= lo && a.Value <= hi) }
			if !inRange(hp.NEpochs, 1, 50) || !inRange(hp.BatchSize, 1, 256) || !inRange(hp.LearningRateMultiplier, 0, 1000) || (hp.LearningRateMultiplier.Set && hp.LearningRateMultiplier.Value == 0) {
				t.Fatalf("accepted out-of-range hyperparameters %+v", hp)
			}
		} else if !errors.Is(err, ErrInvalid) && !errors.Is(err, ErrUnsupported) {
			t.Fatalf("unexpected error kind: %v", err)
		}
		a, err := adapterOf(req.Adapter)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("unexpected error kind: %v", err)
			}
			return
		}
		switch a.Type {
		case "lora":
			if a.R < 1 || a.Alpha <= 0 || a.Dropout < 0 || a.Dropout >= 1 || len(a.TargetModules) == 0 {
				t.Fatalf("accepted LoRA spec %+v", a)
			}
		case "prompt_tuning":
			if a.NumVirtualTokens < 1 {
				t.Fatalf("accepted prompt spec %+v", a)
			}
		default:
			t.Fatalf("accepted adapter type %q", a.Type)
		}
	})
}
