package trainer

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/loraplex/loraplex/inference/model"
)

// LoRASpec describes a LoRA adapter to train.
type LoRASpec struct {
	R       int
	Alpha   float32
	Targets []model.Module // modules adapted in every layer
}

// NewLoRA builds a fresh LoRA adapter with PEFT's initialisation: A drawn
// from kaiming_uniform(a=√5), i.e. U(−1/√in, 1/√in), and B zero, so the
// adapter starts as an exact no-op.
func NewLoRA(m *model.Model, spec LoRASpec, seed uint64) (*model.Adapter, error) {
	if spec.R < 1 || len(spec.Targets) == 0 || spec.Alpha <= 0 {
		return nil, fmt.Errorf("%w: LoRA needs r >= 1, alpha > 0 and at least one target module", ErrConfig)
	}
	rng := rand.New(rand.NewPCG(seed, 0x4c6f5241))
	a := &model.Adapter{LoRA: make([][model.NumModules]*model.LoRA, len(m.Layers))}
	for li := range m.Layers {
		for _, mod := range spec.Targets {
			if mod < 0 || mod >= model.NumModules {
				return nil, fmt.Errorf("%w: unknown module %d", ErrConfig, mod)
			}
			out, in := model.ModuleShape(m.Cfg, mod)
			bound := 1 / math.Sqrt(float64(in))
			l := &model.LoRA{R: spec.R, Scale: spec.Alpha / float32(spec.R),
				A: make([]float32, spec.R*in), B: make([]float32, out*spec.R)}
			for i := range l.A {
				l.A[i] = float32((2*rng.Float64() - 1) * bound)
			}
			a.LoRA[li][mod] = l
		}
	}
	return a, nil
}

// NewPromptTuning builds a prompt-tuning adapter of n virtual tokens. With
// initIDs empty the rows are drawn from N(0, 1) as PEFT's RANDOM init
// (nn.Embedding's default) does; otherwise they are the base embeddings of
// initIDs, repeated or cut to n rows as PEFT's TEXT init does.
func NewPromptTuning(m *model.Model, n int, initIDs []int32, seed uint64) (*model.Adapter, error) {
	h := m.Cfg.Hidden
	if n < 1 {
		return nil, fmt.Errorf("%w: prompt tuning needs at least one virtual token", ErrConfig)
	}
	a := &model.Adapter{Prompt: make([]float32, n*h), NumVirtual: n}
	if len(initIDs) == 0 {
		rng := rand.New(rand.NewPCG(seed, 0x50726f6d))
		for i := range a.Prompt {
			a.Prompt[i] = float32(rng.NormFloat64())
		}
		return a, nil
	}
	for i := 0; i < n; i++ {
		id := initIDs[i%len(initIDs)]
		if id < 0 || int(id) >= m.Cfg.Vocab {
			return nil, fmt.Errorf("%w: init token %d outside the vocabulary", ErrConfig, id)
		}
		m.Embed.Row(a.Prompt[i*h:(i+1)*h], int(id))
	}
	return a, nil
}
