package model

import (
	"fmt"
	"math"

	"github.com/loraplex/loraplex/inference/ops"
	"github.com/loraplex/loraplex/quant"
	"github.com/loraplex/loraplex/quant/par"
)

// Module names one of the seven linear projections of a decoder layer.
type Module int

// The linear modules of a Llama-family decoder layer, in PEFT's naming.
const (
	Q Module = iota
	K
	V
	O
	Gate
	Up
	Down
	NumModules
)

var moduleNames = [NumModules]string{"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}

// String returns the Hugging Face name of the module, e.g. "q_proj".
func (m Module) String() string {
	if m < 0 || m >= NumModules {
		return "unknown"
	}
	return moduleNames[m]
}

// ModuleByName maps "q_proj".."down_proj" to a Module.
func ModuleByName(name string) (Module, bool) {
	for i, n := range moduleNames {
		if n == name {
			return Module(i), true
		}
	}
	return 0, false
}

// LoRA is the low-rank update of one linear module, kept unmerged:
// y = W x + Scale · B (A x). With DoRA the sum is rescaled row by row:
// y = MagScale ⊙ (W x + Scale · B (A x)), plus any bias after the rescale.
type LoRA struct {
	R     int
	Scale float32
	A     []float32 // R × in, row-major (PEFT lora_A.weight)
	B     []float32 // out × R, row-major (PEFT lora_B.weight)

	// Magnitude is DoRA's learned row magnitude m (out values, PEFT
	// lora_magnitude_vector); nil for plain LoRA.
	Magnitude []float32
	// MagScale is m / ‖W + Scale·B·A‖₂ per output row (out values), which
	// depends on the base weights, so Model.PrepareAdapter computes it.
	MagScale []float32

	bt []float32 // B transposed (R × out), set by Prepare

	// A and Bᵀ rounded to bfloat16, set by PrepareBF16; when present the
	// forward uses them instead of A and B.
	a16, bt16 []uint16
}

// Prepare precomputes the transpose of B, which lets every forward step
// apply the update as R vector operations per row instead of one short dot
// product per output. It costs half the adapter's memory again. Call it
// once, after A and B are final and before the LoRA is shared.
func (l *LoRA) Prepare() {
	out := len(l.B) / max(l.R, 1)
	l.bt = make([]float32, len(l.B))
	ops.Transpose(l.bt, l.B, out, l.R)
}

// PrepareBF16 stores A and Bᵀ rounded to bfloat16, which the forward then
// uses instead of the float32 weights: half the bytes per step, the cost
// that bounds decoding a batch whose sequences use different adapters. The
// update then differs from the float32 one by bfloat16 rounding of the
// adapter weights (about 0.2% relative per weight), as when PEFT runs a
// LoRA in bfloat16. DoRA's MagScale is still computed from the float32
// weights. Call it once, after A and B are final and before the LoRA is
// shared.
func (l *LoRA) PrepareBF16() {
	out := len(l.B) / max(l.R, 1)
	bt := make([]float32, len(l.B))
	ops.Transpose(bt, l.B, out, l.R)
	l.a16, l.bt16 = make([]uint16, len(l.A)), make([]uint16, len(bt))
	ops.ToBF16(l.a16, l.A)
	ops.ToBF16(l.bt16, bt)
}

// Adapter is everything a request may carry on top of the base model: LoRA
// updates, a prompt-tuning prefix, or both. It is immutable once built, so
// one Adapter can serve many sequences at once.
type Adapter struct {
	// ID identifies the adapter's content (name plus content hash). It keys
	// every cache that depends on the adapter, such as cached KV prefixes.
	ID string

	// LoRA[layer][module] is nil where the module is not adapted. A nil
	// slice means the adapter has no LoRA part.
	LoRA [][NumModules]*LoRA

	// Prompt holds NumVirtual rows of Hidden input embeddings that PEFT
	// prompt tuning places before every other token, BOS included.
	Prompt     []float32
	NumVirtual int

	// Embed and Head replace the base model's token embedding and output
	// head (vocab × hidden each) for this adapter's sequences: PEFT's
	// modules_to_save copies of embed_tokens and lm_head. nil keeps the
	// base's.
	Embed, Head quant.Matrix

	// prepared is the model whose weights the DoRA MagScale vectors were
	// computed against; serving on any other would be silently wrong.
	prepared *Model
}

// IsDoRA reports whether any module carries a DoRA magnitude, which makes
// the adapter depend on Model.PrepareAdapter.
func (a *Adapter) IsDoRA() bool {
	for _, layer := range a.LoRA {
		for _, l := range layer {
			if l != nil && l.Magnitude != nil {
				return true
			}
		}
	}
	return false
}

// Prepare calls LoRA.Prepare on every module.
func (a *Adapter) Prepare() {
	for _, layer := range a.LoRA {
		for _, l := range layer {
			if l != nil {
				l.Prepare()
			}
		}
	}
}

// PrepareBF16 calls LoRA.PrepareBF16 on every module.
func (a *Adapter) PrepareBF16() {
	for _, layer := range a.LoRA {
		for _, l := range layer {
			if l != nil {
				l.PrepareBF16()
			}
		}
	}
}

// PrepareAdapter readies a for serving on m: it checks every shape against
// the model and computes each DoRA module's MagScale from m's own weights —
// dequantized where they are NF4, the weights the forward really uses, as
// PEFT takes the DoRA norm of the base it runs on. A DoRA adapter therefore
// belongs to one model: Step refuses it on any model it was not prepared
// for. Call it once, after loading and before the adapter is shared; for
// adapters without DoRA it only checks. p spreads the norms (about
// rank × the adapted weights' size in work) over workers; nil runs them
// serially. Errors wrap ErrBadInput.
func (m *Model) PrepareAdapter(p *par.Pool, a *Adapter) error {
	if a == nil {
		return nil
	}
	a.prepared = nil
	if _, err := m.adapterShapes(a); err != nil {
		return err
	}
	if p == nil {
		p = par.Serial
	}
	for li, layer := range a.LoRA {
		for mod, l := range layer {
			if l == nil || l.Magnitude == nil {
				continue
			}
			w := m.Layers[li].W[mod]
			out, in := w.Rows(), w.Cols()
			scale := make([]float32, out)
			p.For(out, max(1, 1<<16/(in*(l.R+1))), func(lo, hi int) {
				ops.DoRAScale(scale, l.Magnitude, l.A, l.B, make([]float32, in), w.Row, lo, hi, in, l.R, l.Scale)
			})
			for o, v := range scale {
				if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
					return fmt.Errorf("%w: DoRA adapter %q layer %d %s row %d: the adapted weight row has norm 0, so magnitude %v cannot rescale it",
						ErrBadInput, a.ID, li, Module(mod), o, l.Magnitude[o])
				}
			}
			l.MagScale = scale
		}
	}
	a.prepared = m
	return nil
}

// Bytes is the memory the adapter's weights take.
func (a *Adapter) Bytes() int64 {
	if a == nil {
		return 0
	}
	n := int64(len(a.Prompt))
	for _, layer := range a.LoRA {
		for _, l := range layer {
			if l != nil {
				n += int64(len(l.A) + len(l.B) + len(l.bt) + len(l.Magnitude) + len(l.MagScale) + (len(l.a16)+len(l.bt16)+1)/2)
			}
		}
	}
	b := 4 * n
	if a.Embed != nil {
		b += a.Embed.Bytes()
	}
	if a.Head != nil && a.Head != a.Embed {
		b += a.Head.Bytes()
	}
	return b
}
