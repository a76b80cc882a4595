package model

import "github.com/loraplex/loraplex/inference/ops"

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
// y = W x + Scale · B (A x).
type LoRA struct {
	R     int
	Scale float32
	A     []float32 // R × in, row-major (PEFT lora_A.weight)
	B     []float32 // out × R, row-major (PEFT lora_B.weight)

	bt []float32 // B transposed (R × out), set by Prepare
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

// Bytes is the memory the adapter's weights take.
func (a *Adapter) Bytes() int64 {
	if a == nil {
		return 0
	}
	n := int64(len(a.Prompt))
	for _, layer := range a.LoRA {
		for _, l := range layer {
			if l != nil {
				n += int64(len(l.A) + len(l.B) + len(l.bt))
			}
		}
	}
	return 4 * n
}
