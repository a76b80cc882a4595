package model

import (
	"math"
	"strings"
	"testing"

	"github.com/loraplex/loraplex/inference/fixtures"
	"github.com/loraplex/loraplex/inference/kvcache"
	"github.com/loraplex/loraplex/inference/safetensors"
	"github.com/loraplex/loraplex/quant"
)

// quantHeadBound is how far an NF4 lm_head may move the logits: the RMS of
// the difference over the RMS of the logits. NF4 keeps about 10% relative
// RMS error per weight (16 levels per block of 64), and a logit's error is
// a sum of such errors over the hidden dimension, so it keeps that ratio.
const quantHeadBound = 0.15

// relRMS is ‖got - want‖ / ‖want‖ over the flattened values.
func relRMS(got, want []float32) float64 {
	var d, w float64
	for i := range want {
		e := float64(got[i]) - float64(want[i])
		d += e * e
		w += float64(want[i]) * float64(want[i])
	}
	return math.Sqrt(d / w)
}

// An NF4 lm_head loads as a separate NF4 matrix (the embedding lookup keeps
// the stored one, also when tied) and keeps the logits within
// quantHeadBound of the stored head's, untied against the float32
// reference logits.
func TestQuantHead(t *testing.T) {
	ref := loadReference(t)
	var want []float32
	for _, row := range ref.Logits.FP32 {
		for _, v := range row {
			want = append(want, float32(v))
		}
	}
	tied := rewriteConfig(t, func(ts []safetensors.Tensor) []safetensors.Tensor {
		var out []safetensors.Tensor
		for _, tn := range ts {
			if tn.Name != "lm_head.weight" {
				out = append(out, tn)
			}
		}
		return out
	}, func(b []byte) []byte {
		return []byte(strings.Replace(string(b), `"tie_word_embeddings": false`, `"tie_word_embeddings": true`, 1))
	})
	logits := func(dir, head string) []float32 {
		m, err := Load(dir, LoadOptions{Quant: "none", QuantHead: head})
		if err != nil {
			t.Fatal(err)
		}
		defer m.Close()
		_, embNF4 := m.Embed.(*quant.NF4)
		_, headNF4 := m.Head.(*quant.NF4)
		if embNF4 || headNF4 != (head == "nf4") || (head == "nf4" && m.Head == m.Embed) {
			t.Fatalf("head %q: embeddings %T, lm_head %T", head, m.Embed, m.Head)
		}
		var seq kvcache.Seq
		return append([]float32(nil), m.Forward(nil, NewWorkspace(m, 8, 1), newKV(m, 4), []SeqInput{{Tokens: ref.Sequence, KV: &seq, AllLogits: true}})[0]...)
	}
	untied := fixtures.Path(t, "fixtures", "tiny-llama")
	for _, tc := range []struct {
		name, dir string
		want      []float32
	}{
		{"untied", untied, want},
		{"tied", tied, logits(tied, "keep")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := logits(tc.dir, "nf4")
			if e := relRMS(got, tc.want); e > quantHeadBound || e == 0 {
				t.Fatalf("NF4 head moves the logits by %.3g of their RMS, want (0, %g]", e, quantHeadBound)
			} else {
				t.Logf("NF4 head: logits within %.3g of their RMS", e)
			}
		})
	}
	if _, err := Load(untied, LoadOptions{QuantHead: "int4"}); err == nil || !strings.Contains(err.Error(), "int4") {
		t.Fatalf("unknown lm_head quantization: error %v", err)
	}
}
