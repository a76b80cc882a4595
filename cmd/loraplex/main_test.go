package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/loraplex/loraplex/inference/fixtures"
)

// run calls a command in-process and returns what it printed.
func run(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var buf bytes.Buffer
	stdout = &buf
	defer func() { stdout = os.Stdout }()
	for _, c := range commands {
		if c.name == args[0] {
			err := c.run(context.Background(), args[1:])
			return buf.String(), err
		}
	}
	t.Fatalf("no command %q", args[0])
	return "", nil
}

// The CLI contract: generate --temperature 0 --json reproduces the
// independent C implementation's greedy continuations of stories260k.
func TestGenerateMatchesReference(t *testing.T) {
	dir := fixtures.Path(t, "models", "stories260k")
	f, err := os.Open(filepath.Join(dir, "reference-5.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var ref struct {
			Prompt    string  `json:"prompt"`
			PromptIDs []int32 `json:"prompt_ids"`
			Greedy    []int32 `json:"greedy_ids"`
			Text      string  `json:"greedy_text"`
		}
		if err := json.Unmarshal(sc.Bytes(), &ref); err != nil {
			t.Fatal(err)
		}
		out, err := run(t, "generate", "--model", dir, "--prompt", ref.Prompt, "--temperature", "0", "--max-tokens", "48", "--json", "--threads", "2")
		if err != nil {
			t.Fatal(err)
		}
		var got generateOutput
		if err := json.Unmarshal([]byte(out), &got); err != nil {
			t.Fatalf("output is not the JSON contract: %v\n%s", err, out)
		}
		if !equalIDs(got.PromptIDs, ref.PromptIDs) || !equalIDs(got.IDs, ref.Greedy) || got.Text != ref.Text || got.FinishReason != "length" {
			t.Errorf("%q:\n got %v %v %q %s\nwant %v %v %q length", ref.Prompt, got.PromptIDs, got.IDs, got.Text, got.FinishReason, ref.PromptIDs, ref.Greedy, ref.Text)
		}
	}
}

func TestTokenize(t *testing.T) {
	dir := fixtures.Path(t, "models", "stories260k")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--text", "Once upon a time"}, `{"ids":[1,403,407,261,378]}`},
		{[]string{"--text", "Once upon a time", "--no-special"}, `{"ids":[403,407,261,378]}`},
		{[]string{"--text", ""}, `{"ids":[1]}`},
	} {
		out, err := run(t, append([]string{"tokenize", "--model", dir}, tc.args...)...)
		if err != nil || strings.TrimSpace(out) != tc.want {
			t.Errorf("tokenize %v = %s, %v; want %s", tc.args, out, err, tc.want)
		}
	}
}

// reference is the fixtures' PyTorch reference: the token sequence, the
// logits of each model variant over it, and the greedy continuation.
type reference struct {
	Sequence []int32                `json:"sequence"`
	Logits   map[string][][]float64 `json:"logits"`
	Greedy   []int32                `json:"greedy_llama_fp32"`
}

func loadReference(t *testing.T) reference {
	t.Helper()
	raw, err := os.ReadFile(fixtures.Path(t, "fixtures", "reference_logits.json"))
	if err != nil {
		t.Fatal(err)
	}
	var ref reference
	if err := json.Unmarshal(raw, &ref); err != nil {
		t.Fatal(err)
	}
	return ref
}

// logits must match the PyTorch references: float32 by default (the
// fixture is a float32 checkpoint), NF4 plus LoRA with --quant nf4.
func TestLogitsMatchPyTorch(t *testing.T) {
	model := fixtures.Path(t, "fixtures", "tiny-llama")
	lora := fixtures.Path(t, "fixtures", "lora-r8")
	ref := loadReference(t)
	ids := strings.Trim(jsonOf(t, ref.Sequence), "[]")
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"llama_fp32", nil},
		{"llama_nf4dq_lora", []string{"--quant", "nf4", "--adapter", lora}},
	} {
		out, err := run(t, append([]string{"logits", "--model", model, "--ids", ids}, tc.args...)...)
		if err != nil {
			t.Fatal(err)
		}
		var got struct{ Logits [][]float64 }
		if err := json.Unmarshal([]byte(out), &got); err != nil {
			t.Fatal(err)
		}
		want := ref.Logits[tc.name]
		if len(got.Logits) != len(want) {
			t.Fatalf("%s: %d positions, want %d", tc.name, len(got.Logits), len(want))
		}
		worst := 0.0
		for p := range want {
			for i := range want[p] {
				worst = math.Max(worst, math.Abs(got.Logits[p][i]-want[p][i]))
			}
		}
		if worst > 1e-4 {
			t.Errorf("%s: max abs diff %g > 1e-4", tc.name, worst)
		}
	}
	out, err := run(t, "generate", "--model", model, "--prompt-ids", ids, "--temperature", "0", "--max-tokens", "8", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var g generateOutput
	if err := json.Unmarshal([]byte(out), &g); err != nil || !equalIDs(g.IDs, ref.Greedy) || g.Text != "" {
		t.Errorf("greedy without a tokenizer = %+v (%v), want ids %v and empty text", g, err, ref.Greedy)
	}
}

func TestBadInputIsOneLine(t *testing.T) {
	model := fixtures.Path(t, "fixtures", "tiny-llama")
	for _, args := range [][]string{
		{"generate", "--model", model},
		{"generate", "--model", model, "--prompt", "hi"},
		{"generate", "--model", t.TempDir(), "--prompt-ids", "1"},
		{"generate", "--model", model, "--prompt-ids", "1,x"},
		{"generate", "--model", model, "--prompt-ids", "1,99999"},
		{"logits", "--model", model, "--ids", ""},
		{"logits", "--model", model, "--ids", "1", "--quant", "int3"},
		{"logits", "--model", model, "--ids", "1", "--adapter", t.TempDir()},
		{"tokenize", "--model", t.TempDir(), "--text", "x"},
		{"quantize", "--model", model},
	} {
		_, err := run(t, args...)
		if err == nil {
			t.Errorf("%v: no error", args)
			continue
		}
		if msg := err.Error(); strings.Contains(msg, "\n") || msg == "" {
			t.Errorf("%v: error is not one line: %q", args, msg)
		}
	}
}

func equalIDs(a, b []int32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func jsonOf(t *testing.T, v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
