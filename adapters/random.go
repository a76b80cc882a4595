package adapters

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/loraplex/loraplex/inference/config"
	"github.com/loraplex/loraplex/inference/model"
)

// RandomSpec describes a random LoRA adapter, the kind load tests and
// benchmarks create by the hundred.
type RandomSpec struct {
	R     int // rank, default 16
	Alpha int // lora_alpha, default 2·R
	// TargetModules are the adapted projections of every layer ("q_proj",
	// ...); default all seven.
	TargetModules []string
	BaseModel     string // written as base_model_name_or_path
}

// randomDelta is the standard deviation of one output of the update
// Scale·B·A·x for a unit-variance input x: small next to a decoder's
// activations, so the adapted model still behaves, yet its outputs differ
// from the base's.
const randomDelta = 0.02

// RandomLoRA builds a LoRA adapter for base with deterministic random
// weights: A from PEFT's own init, kaiming_uniform(a=√5), i.e.
// U(−1/√in, 1/√in), and B, which PEFT starts at zero, also uniform and
// non-zero so the adapter changes the outputs by about randomDelta. The same
// spec and seed give the same adapter; the config is ready for SaveLoRA.
func RandomLoRA(base *config.Config, spec RandomSpec, seed int64) (*model.Adapter, *PEFTConfig, error) {
	if spec.R == 0 {
		spec.R = 16
	}
	if spec.Alpha == 0 {
		spec.Alpha = 2 * spec.R
	}
	if len(spec.TargetModules) == 0 {
		for m := range model.NumModules {
			spec.TargetModules = append(spec.TargetModules, m.String())
		}
	}
	if spec.R < 1 || spec.Alpha < 1 {
		return nil, nil, fmt.Errorf("%w: random LoRA needs r >= 1 and lora_alpha >= 1, got r %d, alpha %d", ErrConfig, spec.R, spec.Alpha)
	}
	var mods []model.Module
	seen := map[model.Module]bool{}
	for _, name := range spec.TargetModules {
		m, ok := model.ModuleByName(name)
		if !ok {
			return nil, nil, fmt.Errorf("%w: target module %q is not one of q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj", ErrConfig, name)
		}
		if seen[m] {
			return nil, nil, fmt.Errorf("%w: target module %q listed twice", ErrConfig, name)
		}
		seen[m] = true
		mods = append(mods, m)
	}
	cfg := &PEFTConfig{PeftType: TypeLoRA, TaskType: TaskCausalLM, BaseModel: spec.BaseModel,
		R: spec.R, Alpha: float64(spec.Alpha), TargetModules: Modules{Names: spec.TargetModules}}
	scale := cfg.Scale(spec.R, cfg.Alpha)
	// A·x has R outputs of variance 1/3 (A's entries have variance 1/(3·in));
	// B of variance σ² makes each output of Scale·B·A·x have variance
	// Scale²·R·σ²/3, so σ = randomDelta·√3 / (Scale·√R) and U(−b, b) with
	// b = √3·σ.
	bBound := 3 * randomDelta / (float64(scale) * math.Sqrt(float64(spec.R)))
	rng := rand.New(rand.NewPCG(uint64(seed), 0x72616e64))
	a := &model.Adapter{LoRA: make([][model.NumModules]*model.LoRA, base.Layers)}
	for l := range a.LoRA {
		for _, m := range mods {
			out, in := model.ModuleShape(base, m)
			lo := &model.LoRA{R: spec.R, Scale: scale, A: make([]float32, spec.R*in), B: make([]float32, out*spec.R)}
			aBound := 1 / math.Sqrt(float64(in))
			for i := range lo.A {
				lo.A[i] = float32((2*rng.Float64() - 1) * aBound)
			}
			for i := range lo.B {
				lo.B[i] = float32((2*rng.Float64() - 1) * bBound)
			}
			a.LoRA[l][m] = lo
		}
	}
	return a, cfg, nil
}
