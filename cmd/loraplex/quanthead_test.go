package main

import (
	"encoding/json"
	"math"
	"strings"
	"testing"

	"github.com/loraplex/loraplex/inference/fixtures"
)

// --quant-head nf4 reaches the model: the logits move off the float32
// reference, within the bound the model package documents (0.15 of their
// RMS); an unknown value is a one-line error.
func TestQuantHeadFlag(t *testing.T) {
	model := fixtures.Path(t, "fixtures", "tiny-llama")
	ref := loadReference(t)
	ids := strings.Trim(jsonOf(t, ref.Sequence), "[]")
	out, err := run(t, "logits", "--model", model, "--ids", ids, "--quant-head", "nf4")
	if err != nil {
		t.Fatal(err)
	}
	var got struct{ Logits [][]float64 }
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatal(err)
	}
	want := ref.Logits["llama_fp32"]
	if len(got.Logits) != len(want) {
		t.Fatalf("%d positions, want %d", len(got.Logits), len(want))
	}
	var d, w float64
	for p := range want {
		for i := range want[p] {
			d += (got.Logits[p][i] - want[p][i]) * (got.Logits[p][i] - want[p][i])
			w += want[p][i] * want[p][i]
		}
	}
	if e := math.Sqrt(d / w); e == 0 || e > 0.15 {
		t.Errorf("--quant-head nf4 moved the logits by %.3g of their RMS, want (0, 0.15]", e)
	}
	_, err = run(t, "logits", "--model", model, "--ids", "1", "--quant-head", "int4")
	if err == nil || !strings.Contains(err.Error(), "int4") || strings.Contains(err.Error(), "\n") {
		t.Errorf("--quant-head int4: error %v, want one line naming the value", err)
	}
}
