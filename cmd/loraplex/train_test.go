package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/loraplex/loraplex/inference/fixtures"
)

// train learns a few question-answer pairs on the real stories260k model and
// writes a PEFT adapter that generate then uses to answer them greedily.
func TestTrainThenGenerate(t *testing.T) {
	model := fixtures.Path(t, "models", "stories260k")
	qa := map[string]string{"What color is the sky?": "blue", "What does a cat say?": "meow", "Where is the ball?": "park"}
	data := filepath.Join(t.TempDir(), "qa.jsonl")
	var lines []string
	for i := 0; i < 4; i++ {
		for q, a := range qa {
			b, _ := json.Marshal(map[string]string{"prompt": "Q: " + q + " A:", "completion": " " + a + "."})
			lines = append(lines, string(b))
		}
	}
	if err := os.WriteFile(data, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "adapter")
	if _, err := run(t, "train", "--model", model, "--data", data, "--out", out, "--epochs", "10", "--learning-rate-multiplier", "5", "--seed", "1"); err != nil {
		t.Fatal(err)
	}
	for q, a := range qa {
		got, err := run(t, "generate", "--model", model, "--adapter", out, "--prompt", "Q: "+q+" A:", "--temperature", "0", "--max-tokens", "6")
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(strings.TrimSpace(got), a) {
			t.Errorf("%q: answered %q, want %q", q, got, a)
		}
	}
	if _, err := run(t, "train", "--model", model, "--data", data, "--out", out); err == nil || !strings.Contains(err.Error(), "already holds files") {
		t.Errorf("training into a full --out: %v, want a refusal", err)
	}
}
