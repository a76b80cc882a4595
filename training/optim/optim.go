package optim

import (
	"encoding/gob"
	"errors"
	"fmt"
	"io"
	"math"
	"runtime"
	"sync"
	"sync/atomic"
)

// ErrConfig marks invalid optimiser settings or state.
var ErrConfig = errors.New("optimizer")

// Config holds AdamW's hyperparameters and the learning-rate schedule.
type Config struct {
	LR          float64 // peak learning rate; default 2e-4 (a common LoRA choice)
	Beta1       float64 // default 0.9
	Beta2       float64 // default 0.999
	Eps         float64 // default 1e-8
	WeightDecay float64 // decoupled, multiplied by the current LR; default 0
	ClipNorm    float64 // global gradient-norm limit; 0 = default 1.0, <0 = off
	WarmupSteps int     // linear warm-up from LR/WarmupSteps to LR
	TotalSteps  int     // optimiser steps in the whole run (required)
	Schedule    string  // "cosine" (default), "linear" or "constant" after warm-up
	MinLRRatio  float64 // the decay ends at LR*MinLRRatio; default 0
}

// Validate fills defaults and rejects nonsense.
func (c *Config) Validate() error {
	if c.LR == 0 {
		c.LR = 2e-4
	}
	if c.Beta1 == 0 {
		c.Beta1 = 0.9
	}
	if c.Beta2 == 0 {
		c.Beta2 = 0.999
	}
	if c.Eps == 0 {
		c.Eps = 1e-8
	}
	if c.ClipNorm == 0 {
		c.ClipNorm = 1
	}
	if c.Schedule == "" {
		c.Schedule = "cosine"
	}
	switch {
	case c.LR < 0 || math.IsNaN(c.LR) || math.IsInf(c.LR, 0):
		return fmt.Errorf("%w: learning rate must be a positive number, got %v", ErrConfig, c.LR)
	case c.Beta1 < 0 || c.Beta1 >= 1 || c.Beta2 < 0 || c.Beta2 >= 1:
		return fmt.Errorf("%w: betas must be in [0, 1), got %v, %v", ErrConfig, c.Beta1, c.Beta2)
	case c.Eps < 0 || c.WeightDecay < 0 || c.MinLRRatio < 0 || c.MinLRRatio > 1:
		return fmt.Errorf("%w: eps and weight decay must be >= 0 and MinLRRatio in [0, 1]", ErrConfig)
	case c.TotalSteps < 1:
		return fmt.Errorf("%w: TotalSteps must be at least 1, got %d", ErrConfig, c.TotalSteps)
	case c.WarmupSteps < 0 || c.WarmupSteps > c.TotalSteps:
		return fmt.Errorf("%w: WarmupSteps must be in [0, TotalSteps], got %d", ErrConfig, c.WarmupSteps)
	case c.Schedule != "cosine" && c.Schedule != "linear" && c.Schedule != "constant":
		return fmt.Errorf("%w: schedule must be cosine, linear or constant, got %q", ErrConfig, c.Schedule)
	}
	return nil
}

// LRAt is the learning rate used by optimiser step t (1-based). Warm-up steps
// ramp t/WarmupSteps; then the decay runs over the remaining steps so that
// the first one after warm-up uses the full rate and none is wasted at zero.
func (c *Config) LRAt(t int) float64 {
	if t <= c.WarmupSteps {
		return c.LR * float64(t) / float64(c.WarmupSteps)
	}
	decay := c.TotalSteps - c.WarmupSteps
	p := float64(t-c.WarmupSteps-1) / float64(decay)
	p = min(p, 1)
	var f float64
	switch c.Schedule {
	case "cosine":
		f = 0.5 * (1 + math.Cos(math.Pi*p))
	case "linear":
		f = 1 - p
	default:
		f = 1
	}
	return c.LR * (c.MinLRRatio + (1-c.MinLRRatio)*f)
}

// Param is one trainable tensor and its gradient buffer (same length).
type Param struct {
	W, G  []float32
	Decay bool // apply weight decay (off for e.g. prompt embeddings)
}

// AdamW updates a fixed set of parameters in place.
type AdamW struct {
	cfg    Config
	params []Param
	m, v   [][]float32
	step   int
}

// New builds an optimiser over params; the gradient buffers are the
// caller's, who accumulates into them between steps.
func New(cfg Config, params []Param) (*AdamW, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	o := &AdamW{cfg: cfg, params: params}
	for _, p := range params {
		if len(p.W) != len(p.G) {
			return nil, fmt.Errorf("%w: parameter has %d values but %d gradients", ErrConfig, len(p.W), len(p.G))
		}
		o.m = append(o.m, make([]float32, len(p.W)))
		o.v = append(o.v, make([]float32, len(p.W)))
	}
	return o, nil
}

// Steps reports how many updates have been applied.
func (o *AdamW) Steps() int { return o.step }

// Config returns the validated settings.
func (o *AdamW) Config() Config { return o.cfg }

// StepResult describes one update.
type StepResult struct {
	LR       float64
	GradNorm float64 // global norm after scaling, before clipping
}

// Step scales the accumulated gradients by gradScale (e.g. 1/tokens of the
// accumulated batch), clips them to the global norm limit, applies one
// AdamW update and zeroes the gradients.
func (o *AdamW) Step(gradScale float32) StepResult {
	o.step++
	// Parameters are independent: both passes run on every core. Each
	// parameter's sum of squares is its own, summed in order afterwards,
	// so the norm does not depend on the number of cores.
	sqs := make([]float64, len(o.params))
	o.each(func(j int) {
		var sq float64
		g := o.params[j].G
		for i := range g {
			g[i] *= gradScale
			sq += float64(g[i]) * float64(g[i])
		}
		sqs[j] = sq
	})
	var sq float64
	for _, s := range sqs {
		sq += s
	}
	norm := math.Sqrt(sq)
	clip := float32(1)
	if o.cfg.ClipNorm > 0 && norm > o.cfg.ClipNorm {
		// PyTorch's clip_grad_norm_ adds 1e-6 to the norm.
		clip = float32(o.cfg.ClipNorm / (norm + 1e-6))
	}
	lr := o.cfg.LRAt(o.step)
	b1, b2 := float32(o.cfg.Beta1), float32(o.cfg.Beta2)
	bc1 := float32(1 - math.Pow(o.cfg.Beta1, float64(o.step)))
	bc2 := float32(math.Sqrt(1 - math.Pow(o.cfg.Beta2, float64(o.step))))
	stepSize := float32(lr) / bc1
	eps := float32(o.cfg.Eps)
	o.each(func(j int) {
		p := o.params[j]
		decay := float32(1)
		if p.Decay {
			decay = float32(1 - lr*o.cfg.WeightDecay)
		}
		m, v := o.m[j], o.v[j]
		for i, g := range p.G {
			g *= clip
			m[i] = b1*m[i] + (1-b1)*g
			v[i] = b2*v[i] + (1-b2)*g*g
			denom := float32(math.Sqrt(float64(v[i])))/bc2 + eps
			p.W[i] = p.W[i]*decay - stepSize*m[i]/denom
			p.G[i] = 0
		}
	})
	return StepResult{LR: lr, GradNorm: norm}
}

// each calls fn for every parameter index, the indices split over
// GOMAXPROCS goroutines.
func (o *AdamW) each(fn func(j int)) {
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(runtime.GOMAXPROCS(0), len(o.params)) {
		wg.Go(func() {
			for j := int(next.Add(1)) - 1; j < len(o.params); j = int(next.Add(1)) - 1 {
				fn(j)
			}
		})
	}
	wg.Wait()
}

type state struct {
	Step int
	M, V [][]float32
}

// Save writes the moment estimates and step count (not the parameters,
// which the adapter checkpoint holds).
func (o *AdamW) Save(w io.Writer) error {
	return gob.NewEncoder(w).Encode(state{Step: o.step, M: o.m, V: o.v})
}

// Load restores what Save wrote; the parameter shapes must match.
func (o *AdamW) Load(r io.Reader) error {
	var s state
	if err := gob.NewDecoder(r).Decode(&s); err != nil {
		return fmt.Errorf("%w: reading optimizer state: %v", ErrConfig, err)
	}
	if len(s.M) != len(o.params) || len(s.V) != len(o.params) || s.Step < 0 {
		return fmt.Errorf("%w: optimizer state holds %d tensors, want %d", ErrConfig, len(s.M), len(o.params))
	}
	for i, p := range o.params {
		if len(s.M[i]) != len(p.W) || len(s.V[i]) != len(p.W) {
			return fmt.Errorf("%w: optimizer state tensor %d has the wrong size", ErrConfig, i)
		}
	}
	o.step, o.m, o.v = s.Step, s.M, s.V
	return nil
}
