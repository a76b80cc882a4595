package trainer

import (
	"context"
	"errors"
	"fmt"
	"math"

	"github.com/loraplex/loraplex/inference/model"
	"github.com/loraplex/loraplex/inference/ops"
	"github.com/loraplex/loraplex/quant/par"
	"github.com/loraplex/loraplex/quant/vec"
	"github.com/loraplex/loraplex/training/dataset"
	"github.com/loraplex/loraplex/training/optim"
)

// Sentinel errors.
var (
	// ErrConfig marks invalid trainer settings or adapter specs.
	ErrConfig = errors.New("trainer: bad configuration")
	// ErrInput marks a batch the model cannot process.
	ErrInput = errors.New("trainer: bad input")
)

// Config holds the trainer's options.
type Config struct {
	// Dropout is the LoRA dropout probability applied to each adapted
	// module's input during training (PEFT's lora_dropout), in [0, 1).
	Dropout float32
	// LogitRows bounds how many rows of vocabulary logits exist at once;
	// the head and the loss run in chunks of this many rows. Default 256:
	// the head's backward widens its weights once per chunk, and 256 rows
	// of logits and their gradient take 65 MB at a vocabulary of 32000.
	LogitRows int
	// Seed drives the dropout masks.
	Seed uint64
	// KeepBytes bounds the activations kept from the forward pass for the
	// backward pass. Layers whose activations fit are not recomputed (about
	// a third less work for them); the others are recomputed from their
	// saved input, so memory stays bounded for any depth and length. 0
	// recomputes every layer.
	KeepBytes int64
	// ComputeDType is the precision of the products with the frozen
	// weights (base layers and head): "bfloat16", the default, rounds the
	// dequantized weights and the activations to bfloat16 and sums the
	// products in float32, as QLoRA does with
	// bnb_4bit_compute_dtype=bfloat16, about twice as fast where the CPU
	// has AVX512_BF16 (elsewhere it computes in float32); "float32"
	// multiplies in float32 everywhere. LoRA products, norms, attention
	// and the optimiser stay float32 either way.
	ComputeDType string
}

// Compute dtypes of Config.ComputeDType.
const (
	ComputeFloat32  = "float32"
	ComputeBFloat16 = "bfloat16"
)

// Validate fills defaults and rejects nonsense.
func (c *Config) Validate() error {
	if c.LogitRows == 0 {
		c.LogitRows = 256
	}
	switch c.ComputeDType {
	case "":
		c.ComputeDType = ComputeBFloat16
	case ComputeFloat32, ComputeBFloat16:
	default:
		return fmt.Errorf("%w: compute dtype %q: use %s or %s", ErrConfig, c.ComputeDType, ComputeFloat32, ComputeBFloat16)
	}
	if c.Dropout < 0 || c.Dropout >= 1 || c.LogitRows < 1 || c.KeepBytes < 0 {
		return fmt.Errorf("%w: dropout must be in [0, 1) and LogitRows positive, got %v and %d", ErrConfig, c.Dropout, c.LogitRows)
	}
	return nil
}

// Result summarises the loss over a batch.
type Result struct {
	Loss    float64 // summed negative log-likelihood of the label tokens
	Tokens  int     // label tokens
	Correct int     // label tokens that are the argmax of their logits
}

// Add accumulates another batch's result.
func (r *Result) Add(o Result) {
	r.Loss += o.Loss
	r.Tokens += o.Tokens
	r.Correct += o.Correct
}

// Mean is the mean loss per label token.
func (r Result) Mean() float64 {
	if r.Tokens == 0 {
		return 0
	}
	return r.Loss / float64(r.Tokens)
}

// Trainer computes losses and adapter gradients for one model and adapter.
// The adapter's LoRA A/B and Prompt slices are the trained parameters,
// updated in place by the optimiser. A Trainer is not safe for concurrent
// use.
type Trainer struct {
	m       *model.Model
	ad      *model.Adapter
	cfg     Config
	invFreq []float64
	shape   ops.AttnShape

	gA, gB  [][model.NumModules][]float32
	gPrompt []float32

	// Layout of the current batch.
	n        int
	starts   []int // first row of each sequence
	lens     []int // rows of each sequence (virtual tokens included)
	targets  []int32
	pos      []int
	cos, sin []float32 // per position, HeadDim/2 each
	train    bool      // dropout on
	keepAll  bool      // a backward pass follows: keep activations within KeepBytes
	key      uint64    // dropout stream of this batch

	xs    [][]float32 // input of every layer, and the final hidden state
	c     acts        // activations of the layer being recomputed
	kept  []acts      // activations of layers 0..keepN-1, kept from the forward pass
	keepN int
	g     grads
	attn  ops.AttnScratch
	// The layer being computed's normed inputs, SwiGLU output and
	// dropped-out LoRA input: recomputed in the backward pass, not kept.
	h1, h2, mlp, xd []float32
	mask            []float32 // the last dropout's mask/(1−p)
	out             []float32 // scratch layer output during recomputation
	rowLoss         []rowLoss // per row of a logits chunk
}

// rowLoss is one row's share of a Result, computed in parallel.
type rowLoss struct {
	loss    float64
	correct bool
}

// acts are one layer's activations, kept for its backward pass.
type acts struct {
	q, k, v, probs, a, x2, gate, up []float32
	t                               [model.NumModules][]float32 // x·Aᵀ per module
}

// grads is the backward scratch.
type grads struct {
	dx, dh, da, dq, dk, dv, dgate, dup, dmlp, dxd []float32
	hn, dhn, logits, dlogits, bt, dbt, lora       []float32
}

// New binds a trainer to a frozen model and the adapter to train.
func New(m *model.Model, ad *model.Adapter, cfg Config) (*Trainer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	c := m.Cfg
	if ad == nil || (ad.LoRA == nil && ad.NumVirtual == 0) {
		return nil, fmt.Errorf("%w: nothing to train: the adapter has neither LoRA nor prompt embeddings", ErrConfig)
	}
	if ad.LoRA != nil && len(ad.LoRA) != len(m.Layers) {
		return nil, fmt.Errorf("%w: adapter has LoRA for %d layers, the model has %d", ErrConfig, len(ad.LoRA), len(m.Layers))
	}
	if ad.Embed != nil || ad.Head != nil || ad.IsDoRA() {
		return nil, fmt.Errorf("%w: training DoRA magnitudes or replaced embeddings/heads is not supported", ErrConfig)
	}
	if len(ad.Prompt) != ad.NumVirtual*c.Hidden {
		return nil, fmt.Errorf("%w: %d prompt values for %d virtual tokens of %d", ErrConfig, len(ad.Prompt), ad.NumVirtual, c.Hidden)
	}
	t := &Trainer{m: m, ad: ad, cfg: cfg, invFreq: c.InvFreq(),
		shape: ops.AttnShape{Heads: c.Heads, KVHeads: c.KVHeads, HeadDim: c.HeadDim, Scale: float32(1 / math.Sqrt(float64(c.HeadDim)))}}
	if ad.LoRA != nil {
		t.gA = make([][model.NumModules][]float32, len(ad.LoRA))
		t.gB = make([][model.NumModules][]float32, len(ad.LoRA))
		for li, layer := range ad.LoRA {
			for mod, l := range layer {
				if l == nil {
					continue
				}
				out, in := model.ModuleShape(c, model.Module(mod))
				if l.R < 1 || len(l.A) != l.R*in || len(l.B) != out*l.R {
					return nil, fmt.Errorf("%w: layer %d %s: rank %d with %d and %d values does not fit [%d %d]", ErrConfig, li, model.Module(mod), l.R, len(l.A), len(l.B), out, in)
				}
				t.gA[li][mod] = make([]float32, len(l.A))
				t.gB[li][mod] = make([]float32, len(l.B))
			}
		}
	}
	t.gPrompt = make([]float32, len(ad.Prompt))
	return t, nil
}

// Adapter is the adapter being trained.
func (t *Trainer) Adapter() *model.Adapter { return t.ad }

// Params lists every trained tensor with its gradient, in a fixed order
// (layers, then modules, A before B, then the prompt), for the optimiser.
func (t *Trainer) Params() []optim.Param {
	var ps []optim.Param
	for li, layer := range t.ad.LoRA {
		for mod, l := range layer {
			if l != nil {
				ps = append(ps, optim.Param{W: l.A, G: t.gA[li][mod], Decay: true}, optim.Param{W: l.B, G: t.gB[li][mod], Decay: true})
			}
		}
	}
	if len(t.ad.Prompt) > 0 {
		ps = append(ps, optim.Param{W: t.ad.Prompt, G: t.gPrompt, Decay: true})
	}
	return ps
}

// Accumulate runs forward and backward over a batch and adds the gradients
// of the summed label-token loss to the adapter's gradient buffers. key
// selects the dropout masks (use a different one for every batch).
func (t *Trainer) Accumulate(ctx context.Context, p *par.Pool, batch []dataset.Example, key uint64) (Result, error) {
	return t.run(ctx, p, batch, key, true)
}

// Loss runs the forward pass only, without dropout.
func (t *Trainer) Loss(ctx context.Context, p *par.Pool, batch []dataset.Example) (Result, error) {
	return t.run(ctx, p, batch, 0, false)
}

// Logits returns the logits at every position of one sequence (virtual
// tokens included), rows × Vocab, without dropout: the same computation the
// server runs for this adapter.
func (t *Trainer) Logits(p *par.Pool, tokens []int32) ([]float32, error) {
	if err := t.layout([]dataset.Example{{Tokens: tokens, Train: make([]bool, len(tokens))}}, 0, false, false); err != nil {
		return nil, err
	}
	if err := t.forward(context.Background(), p); err != nil {
		return nil, err
	}
	c := t.m.Cfg
	h, vocab := c.Hidden, c.Vocab
	hn := grow(&t.g.hn, t.n*h)
	last := t.xs[len(t.m.Layers)]
	for r := 0; r < t.n; r++ {
		ops.RMSNorm(hn[r*h:(r+1)*h], last[r*h:(r+1)*h], t.m.Norm, float32(c.NormEps))
	}
	logits := make([]float32, t.n*vocab)
	t.m.Head.MulT(p, logits, hn, t.n)
	return logits, nil
}

func (t *Trainer) run(ctx context.Context, p *par.Pool, batch []dataset.Example, key uint64, backward bool) (Result, error) {
	if err := t.layout(batch, key, backward && t.cfg.Dropout > 0, backward); err != nil {
		return Result{}, err
	}
	if err := t.forward(ctx, p); err != nil {
		return Result{}, err
	}
	res := t.head(p, backward)
	if !backward {
		return res, nil
	}
	dx := t.g.dx
	for li := len(t.m.Layers) - 1; li >= 0; li-- {
		if err := ctx.Err(); err != nil {
			return Result{}, err
		}
		t.backwardLayer(p, li, t.xs[li], dx)
	}
	h := t.m.Cfg.Hidden
	for s := range batch {
		for j := 0; j < t.ad.NumVirtual; j++ {
			r := t.starts[s] + j
			vec.Add(t.gPrompt[j*h:(j+1)*h], dx[r*h:(r+1)*h])
		}
	}
	return res, nil
}

// layout places the batch's rows one sequence after another, fills the
// labels and the rotary angles, and sizes every buffer.
func (t *Trainer) layout(batch []dataset.Example, key uint64, train, keep bool) error {
	c := t.m.Cfg
	nv := t.ad.NumVirtual
	t.starts, t.lens = t.starts[:0], t.lens[:0]
	n, longest := 0, 0
	for i, ex := range batch {
		if len(ex.Tokens) == 0 || len(ex.Train) != len(ex.Tokens) {
			return fmt.Errorf("%w: example %d has %d tokens and %d label flags", ErrInput, i, len(ex.Tokens), len(ex.Train))
		}
		for _, id := range ex.Tokens {
			if id < 0 || int(id) >= c.Vocab {
				return fmt.Errorf("%w: example %d has token %d outside the vocabulary of %d", ErrInput, i, id, c.Vocab)
			}
		}
		rows := nv + len(ex.Tokens)
		if c.SlidingWindow > 0 && rows > c.SlidingWindow {
			return fmt.Errorf("%w: example %d has %d positions, beyond the model's sliding attention window of %d; lower the maximum sequence length", ErrInput, i, rows, c.SlidingWindow)
		}
		t.starts = append(t.starts, n)
		t.lens = append(t.lens, rows)
		n += rows
		longest = max(longest, rows)
	}
	if n == 0 {
		return fmt.Errorf("%w: empty batch", ErrInput)
	}
	t.n, t.train, t.key, t.keepAll = n, train, key, keep
	t.targets = t.targets[:0]
	for _, ex := range batch {
		for j := 0; j < nv+len(ex.Tokens); j++ {
			// Row j predicts token j-nv+1; virtual rows and unlabelled
			// tokens are ignored.
			target := int32(ops.IgnoreIndex)
			if i := j - nv + 1; i >= 1 && i < len(ex.Tokens) && ex.Train[i] {
				target = ex.Tokens[i]
			}
			t.targets = append(t.targets, target)
		}
	}
	half := c.HeadDim / 2
	if have := len(t.cos) / half; have < longest {
		t.cos = append(t.cos, make([]float32, (longest-have)*half)...)
		t.sin = append(t.sin, make([]float32, (longest-have)*half)...)
		for pos := have; pos < longest; pos++ {
			ops.RopeAngles(t.cos[pos*half:(pos+1)*half], t.sin[pos*half:(pos+1)*half], t.invFreq, pos)
		}
	}
	t.pos = t.pos[:0]
	for _, l := range t.lens {
		for j := 0; j < l; j++ {
			t.pos = append(t.pos, j)
		}
	}
	t.size(n)
	h := c.Hidden
	x := t.xs[0]
	for s, ex := range batch {
		r := t.starts[s]
		copy(x[r*h:], t.ad.Prompt)
		r += nv
		for j, id := range ex.Tokens {
			t.m.Embed.Row(x[(r+j)*h:(r+j+1)*h], int(id))
		}
	}
	return nil
}

// size grows every buffer to n rows.
func (t *Trainer) size(n int) {
	c := t.m.Cfg
	h, f, qd, kd := c.Hidden, c.Intermediate, c.Heads*c.HeadDim, c.KVHeads*c.HeadDim
	for len(t.xs) < len(t.m.Layers)+1 {
		t.xs = append(t.xs, nil)
	}
	for i := range t.xs {
		grow(&t.xs[i], n*h)
	}
	probs := ops.AttnProbsLen(t.lens, t.shape)
	perLayer := t.c.size(t, n, probs)
	t.keepN = 0
	if t.keepAll {
		t.keepN = min(len(t.m.Layers), int(t.cfg.KeepBytes/max(perLayer, 1)))
	}
	for len(t.kept) < t.keepN {
		t.kept = append(t.kept, acts{})
	}
	for i := range t.keepN {
		t.kept[i].size(t, n, probs)
	}
	grow(&t.out, n*h)
	maxIn := max(h, qd, f)
	g := &t.g
	grow(&g.dx, n*h)
	grow(&g.dh, n*h)
	grow(&g.da, n*qd)
	grow(&g.dq, n*qd)
	grow(&g.dk, n*kd)
	grow(&g.dv, n*kd)
	grow(&g.dgate, n*f)
	grow(&g.dup, n*f)
	grow(&g.dmlp, n*f)
	grow(&t.h1, n*h)
	grow(&t.h2, n*h)
	grow(&t.mlp, n*f)
	if t.cfg.Dropout > 0 {
		grow(&t.xd, n*maxIn)
		grow(&g.dxd, n*maxIn)
	}
	rows := min(n, t.cfg.LogitRows)
	grow(&g.hn, rows*h)
	grow(&g.dhn, rows*h)
	grow(&g.logits, rows*c.Vocab)
	grow(&g.dlogits, rows*c.Vocab)
	if cap(t.rowLoss) < rows {
		t.rowLoss = make([]rowLoss, rows)
	}
}

// size grows a's buffers to n rows and returns their size in bytes.
func (a *acts) size(t *Trainer, n, probs int) int64 {
	c := t.m.Cfg
	h, f, qd, kd := c.Hidden, c.Intermediate, c.Heads*c.HeadDim, c.KVHeads*c.HeadDim
	floats := 0
	g := func(b *[]float32, n int) {
		grow(b, n)
		floats += n
	}
	g(&a.q, n*qd)
	g(&a.k, n*kd)
	g(&a.v, n*kd)
	g(&a.probs, probs)
	g(&a.a, n*qd)
	g(&a.x2, n*h)
	g(&a.gate, n*f)
	g(&a.up, n*f)
	for mod := range model.NumModules {
		r := t.rank(model.Module(mod))
		if r == 0 {
			continue
		}
		g(&a.t[mod], n*r)
	}
	return 4 * int64(floats)
}

// acts returns where layer li's activations live.
func (t *Trainer) acts(li int) *acts {
	if li < t.keepN {
		return &t.kept[li]
	}
	return &t.c
}

// rank is the largest LoRA rank of mod over the layers (0 if none).
func (t *Trainer) rank(mod model.Module) int {
	r := 0
	for _, layer := range t.ad.LoRA {
		if l := layer[mod]; l != nil {
			r = max(r, l.R)
		}
	}
	return r
}

func (t *Trainer) forward(ctx context.Context, p *par.Pool) error {
	for li := range t.m.Layers {
		if err := ctx.Err(); err != nil {
			return err
		}
		t.forwardLayer(p, li, t.acts(li), t.xs[li], t.xs[li+1])
	}
	return nil
}

// head runs the final norm, the output projection and the loss in chunks
// of LogitRows rows; with backward it leaves ∂loss/∂(last hidden state) in
// g.dx.
func (t *Trainer) head(p *par.Pool, backward bool) Result {
	c := t.m.Cfg
	h, vocab, eps := c.Hidden, c.Vocab, float32(c.NormEps)
	last := t.xs[len(t.m.Layers)]
	dx := t.g.dx[:t.n*h]
	if backward {
		clear(dx)
	}
	var res Result
	for r0 := 0; r0 < t.n; r0 += t.cfg.LogitRows {
		r1 := min(r0+t.cfg.LogitRows, t.n)
		labelled := false
		for _, tg := range t.targets[r0:r1] {
			labelled = labelled || tg >= 0
		}
		if !labelled {
			continue
		}
		rows := r1 - r0
		hn, logits, dl := t.g.hn[:rows*h], t.g.logits[:rows*vocab], t.g.dlogits[:rows*vocab]
		p.For(rows, rowGrain(h), func(lo, hi int) {
			for r := r0 + lo; r < r0+hi; r++ {
				ops.RMSNorm(hn[(r-r0)*h:(r-r0+1)*h], last[r*h:(r+1)*h], t.m.Norm, eps)
			}
		})
		t.mulT(p, t.m.Head, logits, hn, rows)
		losses := t.rowLoss[:rows]
		p.For(rows, 1, func(lo, hi int) {
			for i := lo; i < hi; i++ {
				tg, drow := t.targets[r0+i], dl[i*vocab:(i+1)*vocab]
				if tg < 0 {
					if backward {
						clear(drow)
					}
					continue
				}
				row := logits[i*vocab : (i+1)*vocab]
				losses[i].correct = int32(vec.MaxIndex(row)) == tg
				// One row at a time, so the gradient is that of the summed
				// (not averaged) loss; the optimiser step divides by
				// tokens. Without a backward pass drow is scratch.
				loss, _ := ops.CrossEntropy(drow, row, vocab, t.targets[r0+i:r0+i+1])
				losses[i].loss = float64(loss)
			}
		})
		for i, tg := range t.targets[r0:r1] {
			if tg >= 0 {
				res.Loss += losses[i].loss
				res.Tokens++
				if losses[i].correct {
					res.Correct++
				}
			}
		}
		if !backward {
			continue
		}
		dhn := t.g.dhn[:rows*h]
		clear(dhn)
		t.mulGrad(p, t.m.Head, dhn, dl, rows)
		p.For(rows, rowGrain(2*h), func(lo, hi int) {
			for r := r0 + lo; r < r0+hi; r++ {
				ops.RMSNormBackward(dx[r*h:(r+1)*h], nil, dhn[(r-r0)*h:(r-r0+1)*h], last[r*h:(r+1)*h], t.m.Norm, eps)
			}
		})
	}
	return res
}

func grow(b *[]float32, n int) []float32 {
	if cap(*b) < n {
		*b = make([]float32, n)
	}
	*b = (*b)[:n]
	return *b
}
