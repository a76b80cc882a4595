package model

import (
	"fmt"
	"math"
	"sync/atomic"

	"github.com/loraplex/loraplex/inference/kvcache"
	"github.com/loraplex/loraplex/inference/ops"
	"github.com/loraplex/loraplex/quant"
	"github.com/loraplex/loraplex/quant/par"
	"github.com/loraplex/loraplex/quant/vec"
)

// SeqInput is one sequence's share of a forward step.
type SeqInput struct {
	Tokens []int32 // new tokens this step: a prefill chunk, or 1 when decoding

	// Embeds are input-embedding rows (k×Hidden) processed before Tokens at
	// consecutive positions. The caller puts an adapter's prompt-tuning
	// prefix here on a sequence's first step.
	Embeds []float32

	KV        *kvcache.Seq // positions continue from KV.Len; the step appends and advances Len
	Adapter   *Adapter     // nil = base model
	AllLogits bool         // logits at every new position; else only at the last
}

// group is a run of consecutive rows that share an adapter.
type group struct {
	lo, hi int
	a      *Adapter
}

// Workspace holds every scratch buffer of a forward step, so steady-state
// decoding allocates nothing. A Workspace serves one Forward at a time.
type Workspace struct {
	m          *Model
	rows, seqs int // capacities

	x, xn, q, k, v, attn, gate, up []float32
	cos, sin                       []float32 // rows × HeadDim/2
	pos, rowSeq                    []int     // per row: position, batch index
	itemRows                       []int     // rows whose attention runs per (row, head) item
	bigSeqs                        []int     // batch indices whose attention runs as matrix products
	gemm                           gemmScratch
	start                          []int // per batch index: first row
	order                          []int // batch indices, grouped by adapter
	groups                         []group
	lora                           []float32 // per module of a step: rows × max LoRA rank, x·Aᵀ
	bt                             []float32 // Bᵀ of unprepared LoRAs with large groups, per (module, group)
	maxRank                        int
	tasks                          []loraTask
	next                           atomic.Int64 // the next task to claim
	hx, logits                     []float32
	out                            [][]float32
	scores                         [][]float32 // per worker: attention weights

	// State of the current step, read by the parallel loop bodies.
	batch    []SeqInput
	kv       *kvcache.Pool
	layer    int
	op       rowOp
	n        int  // rows this step
	nw       int  // workers this step
	attnWide bool // attention is worth spreading over the workers
	rowsFn   func(lo, hi int)
	attnFn   func(lo, hi int)
	loraFn   func(lo, hi int)
}

type rowOp int

const (
	opNormIn rowOp = iota
	opRope
	opResidualNormPost
	opSwiGLU
	opResidual
)

// NewWorkspace sizes scratch for steps of up to maxTokens rows (tokens plus
// embedding rows) over up to maxSeqs sequences. A larger step still works: the
// workspace grows, allocating once.
func NewWorkspace(m *Model, maxTokens, maxSeqs int) *Workspace {
	ws := &Workspace{m: m}
	ws.rowsFn = ws.rowsWork
	ws.attnFn = ws.attnWork
	ws.loraFn = ws.claimLoRA
	ws.grow(max(maxTokens, 1), max(maxSeqs, 1))
	return ws
}

// growLogits makes room for n rows of logits. Only rows that want logits get
// them, so this is sized by sequences, not tokens, unless AllLogits asks.
func (ws *Workspace) growLogits(n int) {
	c := ws.m.Cfg
	if len(ws.hx) < n*c.Hidden {
		ws.hx = make([]float32, n*c.Hidden)
		ws.logits = make([]float32, n*c.Vocab)
	}
}

func (ws *Workspace) grow(rows, seqs int) {
	c := ws.m.Cfg
	if rows > ws.rows {
		ws.rows = rows
		qd, kd, half := c.Heads*c.HeadDim, c.KVHeads*c.HeadDim, c.HeadDim/2
		ws.x = make([]float32, rows*c.Hidden)
		ws.xn = make([]float32, rows*c.Hidden)
		ws.q = make([]float32, rows*qd)
		ws.k = make([]float32, rows*kd)
		ws.v = make([]float32, rows*kd)
		ws.attn = make([]float32, rows*qd)
		ws.gate = make([]float32, rows*c.Intermediate)
		ws.up = make([]float32, rows*c.Intermediate)
		ws.cos = make([]float32, rows*half)
		ws.sin = make([]float32, rows*half)
		ws.pos = make([]int, rows)
		ws.rowSeq = make([]int, rows)
		ws.itemRows = make([]int, 0, rows)
		ws.lora = nil
	}
	if seqs > ws.seqs {
		ws.seqs = seqs
		ws.growLogits(seqs)
		ws.start = make([]int, seqs)
		ws.order = make([]int, seqs)
		ws.groups = make([]group, 0, seqs)
		ws.bigSeqs = make([]int, 0, seqs)
		ws.out = make([][]float32, seqs)
	}
}

// Forward runs one step and returns each sequence's logits (rows × Vocab,
// row-major: one row, or one per new position with AllLogits), valid until
// the next step on ws. It panics where Step would return an error: callers
// that cannot guarantee valid input and reserved KV room should use Step.
func (m *Model) Forward(p *par.Pool, ws *Workspace, kv *kvcache.Pool, batch []SeqInput) [][]float32 {
	out, err := m.Step(p, ws, kv, batch)
	if err != nil {
		panic(err)
	}
	return out
}

// Step is Forward with errors: bad tokens, embedding rows or adapters give
// ErrBadInput, a KV pool without room gives kvcache.ErrOutOfBlocks; in both
// cases no sequence has advanced. A nil p runs on the calling goroutine.
func (m *Model) Step(p *par.Pool, ws *Workspace, kv *kvcache.Pool, batch []SeqInput) ([][]float32, error) {
	if p == nil {
		p = par.Serial
	}
	if ws.m != m {
		return nil, fmt.Errorf("%w: workspace belongs to another model", ErrBadInput)
	}
	c := m.Cfg
	n, maxRank := 0, 0
	for i := range batch {
		s := &batch[i]
		if s.KV == nil {
			return nil, fmt.Errorf("%w: sequence %d has no KV state", ErrBadInput, i)
		}
		if len(s.Embeds)%c.Hidden != 0 {
			return nil, fmt.Errorf("%w: sequence %d has %d embedding values, not a multiple of hidden size %d", ErrBadInput, i, len(s.Embeds), c.Hidden)
		}
		for _, t := range s.Tokens {
			if t < 0 || int(t) >= c.Vocab {
				return nil, fmt.Errorf("%w: sequence %d has token %d outside the vocabulary of %d", ErrBadInput, i, t, c.Vocab)
			}
		}
		r, err := m.checkAdapter(s.Adapter)
		if err != nil {
			return nil, fmt.Errorf("sequence %d: %w", i, err)
		}
		maxRank = max(maxRank, r)
		n += len(s.Embeds)/c.Hidden + len(s.Tokens)
	}
	if n == 0 {
		return ws.out[:0], nil
	}
	for i := range batch {
		s := &batch[i]
		if err := kv.Reserve(s.KV, len(s.Embeds)/c.Hidden+len(s.Tokens)); err != nil {
			return nil, fmt.Errorf("sequence %d: %w", i, err)
		}
	}
	ws.grow(n, len(batch))
	if len(ws.lora) < maxModules*n*maxRank {
		ws.lora = make([]float32, maxModules*n*maxRank)
	}
	ws.batch, ws.kv, ws.n, ws.maxRank = batch, kv, n, maxRank
	ws.layout()
	ws.prepareScores(p)

	for li := range m.Layers {
		ws.layerStep(p, li)
	}
	for i := range batch {
		s := &batch[i]
		s.KV.Len += len(s.Embeds)/c.Hidden + len(s.Tokens)
	}
	out := ws.head(p)
	ws.batch, ws.kv = nil, nil
	return out, nil
}

// checkAdapter verifies that a fits the model and, for DoRA, was prepared
// for it, and returns the largest rank.
func (m *Model) checkAdapter(a *Adapter) (int, error) {
	r, err := m.adapterShapes(a)
	if err != nil || a == nil || a.prepared == m || !a.IsDoRA() {
		return r, err
	}
	return 0, fmt.Errorf("%w: DoRA adapter %q was not prepared for this model; call Model.PrepareAdapter after loading it", ErrBadInput, a.ID)
}

// adapterShapes verifies every shape of a against the model and returns the
// largest rank.
func (m *Model) adapterShapes(a *Adapter) (int, error) {
	if a == nil {
		return 0, nil
	}
	if a.LoRA != nil && len(a.LoRA) != len(m.Layers) {
		return 0, fmt.Errorf("%w: adapter %q has LoRA for %d layers, the model has %d", ErrBadInput, a.ID, len(a.LoRA), len(m.Layers))
	}
	r := 0
	for li, layer := range a.LoRA {
		for mod, l := range layer {
			if l == nil {
				continue
			}
			out, in := ModuleShape(m.Cfg, Module(mod))
			if l.R <= 0 || len(l.A) != l.R*in || len(l.B) != out*l.R {
				return 0, fmt.Errorf("%w: adapter %q layer %d %s: rank %d with A of %d and B of %d values, want %d×%d and %d×%d",
					ErrBadInput, a.ID, li, Module(mod), l.R, len(l.A), len(l.B), l.R, in, out, l.R)
			}
			if (l.Magnitude != nil && len(l.Magnitude) != out) || (l.MagScale != nil && len(l.MagScale) != len(l.Magnitude)) {
				return 0, fmt.Errorf("%w: adapter %q layer %d %s: DoRA magnitude of %d and scale of %d values, want %d",
					ErrBadInput, a.ID, li, Module(mod), len(l.Magnitude), len(l.MagScale), out)
			}
			r = max(r, l.R)
		}
	}
	for _, t := range []struct {
		name string
		w    quant.Matrix
	}{{"embed_tokens", a.Embed}, {"lm_head", a.Head}} {
		if t.w != nil && (t.w.Rows() != m.Cfg.Vocab || t.w.Cols() != m.Cfg.Hidden) {
			return 0, fmt.Errorf("%w: adapter %q replaces %s with a [%d %d] matrix, the model needs [%d %d] (vocabulary × hidden)",
				ErrBadInput, a.ID, t.name, t.w.Rows(), t.w.Cols(), m.Cfg.Vocab, m.Cfg.Hidden)
		}
	}
	return r, nil
}

// layout orders the batch so rows sharing an adapter are consecutive, fills
// the input rows (embedding rows, then token embeddings) and computes each
// row's position and rotary angles.
func (ws *Workspace) layout() {
	c := ws.m.Cfg
	batch := ws.batch
	ws.order = ws.order[:0]
	ws.groups = ws.groups[:0]
	for i := range batch {
		first := true
		for _, j := range ws.order {
			if batch[j].Adapter == batch[i].Adapter {
				first = false
				break
			}
		}
		if !first {
			continue
		}
		lo := 0
		if len(ws.groups) > 0 {
			lo = ws.groups[len(ws.groups)-1].hi
		}
		hi := lo
		for j := i; j < len(batch); j++ {
			if batch[j].Adapter != batch[i].Adapter {
				continue
			}
			ws.order = append(ws.order, j)
			ws.start[j] = hi
			hi += len(batch[j].Embeds)/c.Hidden + len(batch[j].Tokens)
		}
		ws.groups = append(ws.groups, group{lo: lo, hi: hi, a: batch[i].Adapter})
	}
	h, half := c.Hidden, c.HeadDim/2
	ws.itemRows, ws.bigSeqs = ws.itemRows[:0], ws.bigSeqs[:0]
	keys := 0 // keys the per-row attention visits, per head
	for _, i := range ws.order {
		s := &batch[i]
		row := ws.start[i]
		ne := len(s.Embeds) / h
		if n := ne + len(s.Tokens); n >= gemmAttnRows {
			ws.bigSeqs = append(ws.bigSeqs, i)
		} else {
			for r := row; r < row+n; r++ {
				ws.itemRows = append(ws.itemRows, r)
				keys += s.KV.Len + r - row + 1
			}
		}
		copy(ws.x[row*h:], s.Embeds)
		embed := ws.m.Embed
		if s.Adapter != nil && s.Adapter.Embed != nil {
			embed = s.Adapter.Embed
		}
		for j, t := range s.Tokens {
			embed.Row(ws.x[(row+ne+j)*h:(row+ne+j+1)*h], int(t))
		}
		for j := 0; j < ne+len(s.Tokens); j++ {
			r := row + j
			ws.pos[r], ws.rowSeq[r] = s.KV.Len+j, i
			ops.RopeAngles(ws.cos[r*half:(r+1)*half], ws.sin[r*half:(r+1)*half], ws.m.invFreq, s.KV.Len+j)
		}
	}
	// Scores and mixing: two multiply-adds per key and head dimension.
	ws.attnWide = 2*keys*c.Heads*c.HeadDim >= 4*minParallelWork
}

// prepareScores makes sure every worker has room for the attention weights
// of the longest context in the step.
func (ws *Workspace) prepareScores(p *par.Pool) {
	ctx := 0
	for i := range ws.batch {
		s := &ws.batch[i]
		ctx = max(ctx, s.KV.Len+len(s.Embeds)/ws.m.Cfg.Hidden+len(s.Tokens))
	}
	ws.nw = p.Workers()
	for len(ws.scores) < ws.nw {
		ws.scores = append(ws.scores, nil)
	}
	for w := range ws.scores[:ws.nw] {
		if len(ws.scores[w]) < ctx {
			// Doubling keeps a growing decode from reallocating every token.
			ws.scores[w] = make([]float32, max(ctx, 2*len(ws.scores[w]), 256))
		}
	}
}

func (ws *Workspace) layerStep(p *par.Pool, li int) {
	m, c := ws.m, ws.m.Cfg
	l := &m.Layers[li]
	ws.layer = li
	h, inter := c.Hidden, c.Intermediate
	ws.rowLoop(p, opNormIn, h)
	ws.linear(p, l, proj{Q, ws.q, ws.xn}, proj{K, ws.k, ws.xn}, proj{V, ws.v, ws.xn})
	ws.rowLoop(p, opRope, c.Heads*c.HeadDim)
	if ws.attnWide {
		p.For(ws.nw, 1, ws.attnFn)
	} else if len(ws.itemRows) > 0 {
		ws.attnWork(0, ws.nw)
	}
	for _, i := range ws.bigSeqs {
		ws.attnGEMM(p, i)
	}
	ws.linear(p, l, proj{O, ws.xn, ws.attn})
	ws.rowLoop(p, opResidualNormPost, 2*h)
	ws.linear(p, l, proj{Gate, ws.gate, ws.xn}, proj{Up, ws.up, ws.xn})
	ws.rowLoop(p, opSwiGLU, 4*inter) // the exp weighs a few multiply-adds
	ws.linear(p, l, proj{Down, ws.xn, ws.gate})
	ws.rowLoop(p, opResidual, h)
}

// rowLoop runs op over all rows in parallel; width estimates the work per row
// so small steps stay on one goroutine.
func (ws *Workspace) rowLoop(p *par.Pool, op rowOp, width int) {
	ws.op = op
	p.For(ws.n, max(1, 1<<15/max(width, 1)), ws.rowsFn)
}

func (ws *Workspace) rowsWork(lo, hi int) {
	c := ws.m.Cfg
	l := &ws.m.Layers[ws.layer]
	h, eps := c.Hidden, float32(c.NormEps)
	switch ws.op {
	case opNormIn:
		for r := lo; r < hi; r++ {
			ops.RMSNorm(ws.xn[r*h:(r+1)*h], ws.x[r*h:(r+1)*h], l.InNorm, eps)
		}
	case opRope:
		d, half := c.HeadDim, c.HeadDim/2
		qd, kd := c.Heads*d, c.KVHeads*d
		for r := lo; r < hi; r++ {
			cs, sn := ws.cos[r*half:(r+1)*half], ws.sin[r*half:(r+1)*half]
			for hd := 0; hd < c.Heads; hd++ {
				ops.Rope(ws.q[r*qd+hd*d:r*qd+(hd+1)*d], cs, sn)
			}
			for hd := 0; hd < c.KVHeads; hd++ {
				ops.Rope(ws.k[r*kd+hd*d:r*kd+(hd+1)*d], cs, sn)
			}
			ws.kv.Write(ws.batch[ws.rowSeq[r]].KV, ws.layer, ws.pos[r], ws.k[r*kd:(r+1)*kd], ws.v[r*kd:(r+1)*kd])
		}
	case opResidualNormPost:
		for r := lo; r < hi; r++ {
			x := ws.x[r*h : (r+1)*h]
			vec.Add(x, ws.xn[r*h:(r+1)*h])
			ops.RMSNorm(ws.xn[r*h:(r+1)*h], x, l.PostNorm, eps)
		}
	case opSwiGLU:
		in := c.Intermediate
		for r := lo; r < hi; r++ {
			g := ws.gate[r*in : (r+1)*in]
			ops.SwiGLU(g, g, ws.up[r*in:(r+1)*in])
		}
	case opResidual:
		vec.Add(ws.x[lo*h:hi*h], ws.xn[lo*h:hi*h])
	}
}

// attnWork is worker w's share of attention: (row, KV head) items w,
// w+nw, … Striding balances causal prefill, where later rows see longer
// contexts. An item runs every query head that reads its KV head, so the
// keys and values come from memory once and from cache for the rest of
// the group.
func (ws *Workspace) attnWork(lo, hi int) {
	c := ws.m.Cfg
	d, bs := c.HeadDim, ws.kv.BlockSize()
	qd, group := c.Heads*d, c.Heads/c.KVHeads
	scale := float32(1 / math.Sqrt(float64(d)))
	items := len(ws.itemRows) * c.KVHeads
	for w := lo; w < hi; w++ {
		for it := w; it < items; it += ws.nw {
			r, kvh := ws.itemRows[it/c.KVHeads], it%c.KVHeads
			seq := ws.batch[ws.rowSeq[r]].KV
			// Keys [first, n) are visible: all earlier positions, or the
			// last SlidingWindow of them (Mistral, Qwen2).
			n, first := ws.pos[r]+1, 0
			if win := c.SlidingWindow; win > 0 && n > win {
				first = n - win
			}
			sc := ws.scores[w][:n-first]
			for hd := kvh * group; hd < (kvh+1)*group; hd++ {
				q := ws.q[r*qd+hd*d : r*qd+(hd+1)*d]
				for b := first / bs; b*bs < n; b++ {
					lo, hi := max(b*bs, first), min((b+1)*bs, n)
					ops.DotRows(sc[lo-first:], q, ws.kv.K(seq.Blocks[b], ws.layer, kvh)[(lo-b*bs)*d:], hi-lo, scale)
				}
				ops.Softmax(sc)
				o := ws.attn[r*qd+hd*d : r*qd+(hd+1)*d]
				clear(o)
				for b := first / bs; b*bs < n; b++ {
					lo, hi := max(b*bs, first), min((b+1)*bs, n)
					ops.AxpyRows(o, sc[lo-first:], ws.kv.V(seq.Blocks[b], ws.layer, kvh)[(lo-b*bs)*d:], hi-lo)
				}
			}
		}
	}
}

// proj is one linear module of a layer applied to x, into y.
type proj struct {
	mod  Module
	y, x []float32
}

// maxModules is the most projections one linear call takes (q, k and v).
const maxModules = 3

// loraTask is a run of rows of one adapter group that one worker updates
// with one module's LoRA.
type loraTask struct {
	lr              *LoRA
	bt              []float32 // Bᵀ, or nil to use B as it is
	x, y, t         []float32 // the module's whole operands; t is x·Aᵀ scratch
	in, out, lo, hi int
}

// linear computes y = x·Wᵀ for all rows of every projection in ps (which
// read the same kind of input and write distinct outputs), adds each
// adapter group's low-rank update (rescaled for DoRA), then the bias, which
// DoRA leaves out of its rescale. The low-rank updates of all groups and
// modules run as one parallel region: with many adapters each group is a
// single row, far too little work to spread on its own.
func (ws *Workspace) linear(p *par.Pool, l *Layer, ps ...proj) {
	for _, pr := range ps {
		l.W[pr.mod].MulT(p, pr.y, pr.x, ws.n)
	}
	ws.loraTasks(ps)
	if len(ws.tasks) > 0 {
		work := 0
		for i := range ws.tasks {
			tk := &ws.tasks[i]
			work += (tk.hi - tk.lo) * tk.lr.R * (tk.in + tk.out)
		}
		ws.next.Store(0)
		if work < minParallelWork || len(ws.tasks) == 1 {
			ws.claimLoRA(0, 1)
		} else {
			p.For(min(ws.nw, len(ws.tasks)), 1, ws.loraFn)
		}
		clear(ws.tasks) // drop the references to adapters
		ws.tasks = ws.tasks[:0]
	}
	for _, pr := range ps {
		if b := l.Bias[pr.mod]; b != nil {
			out := len(b)
			for r := 0; r < ws.n; r++ {
				vec.Add(pr.y[r*out:(r+1)*out], b)
			}
		}
	}
}

// minParallelWork is the multiply-adds below which a region stays on the
// calling goroutine: waking another worker costs more than it saves.
const minParallelWork = 1 << 15

// loraChunkWork is the multiply-adds of one LoRA task: small enough that
// the workers balance a big group's rows, large enough that claiming is
// cheap next to the work.
const loraChunkWork = 1 << 16

// loraTasks lists the LoRA work of ps for the step's groups, transposing B
// for unprepared LoRAs whose group is large enough to gain from it.
func (ws *Workspace) loraTasks(ps []proj) {
	n, R := ws.n, ws.maxRank
	btUsed := 0
	for k, pr := range ps {
		out, in := ModuleShape(ws.m.Cfg, pr.mod)
		for _, g := range ws.groups {
			if g.a == nil || g.a.LoRA == nil {
				continue
			}
			lr := g.a.LoRA[ws.layer][pr.mod]
			if lr == nil {
				continue
			}
			bt := lr.bt
			if bt == nil && lr.bt16 == nil && g.hi-g.lo >= loraTransposeRows {
				if need := btUsed + lr.R*out; len(ws.bt) < need {
					// Tasks already listed keep the old array alive.
					ws.bt = make([]float32, 2*need)
					btUsed = 0
				}
				bt = ws.bt[btUsed : btUsed+lr.R*out]
				btUsed += lr.R * out
				ops.Transpose(bt, lr.B, out, lr.R)
			}
			chunk := (max(1, loraChunkWork/(lr.R*(in+out))) + loraBlock - 1) &^ (loraBlock - 1)
			for lo := g.lo; lo < g.hi; lo += chunk {
				ws.tasks = append(ws.tasks, loraTask{
					lr: lr, bt: bt, x: pr.x, y: pr.y, t: ws.lora[k*n*R : (k+1)*n*R],
					in: in, out: out, lo: lo, hi: min(g.hi, lo+chunk),
				})
			}
		}
	}
}

// loraBlock is the rows the group kernels (ops.LoRAGroup16) take at once,
// reading A and Bᵀ once for all of them: a task's rows are a multiple of it.
const loraBlock = 4

// loraTransposeRows is the group size from which transposing B (one extra
// pass over it) pays for itself through vector updates in every row.
const loraTransposeRows = 4

// claimLoRA is one worker's loop over the step's LoRA tasks; its range is
// ignored: workers claim tasks in turn, so one that starts late or loses
// its core does less.
func (ws *Workspace) claimLoRA(_, _ int) {
	for {
		i := int(ws.next.Add(1)) - 1
		if i >= len(ws.tasks) {
			return
		}
		tk := &ws.tasks[i]
		lr, in, out, lo, hi := tk.lr, tk.in, tk.out, tk.lo, tk.hi
		y, t, x := tk.y[lo*out:hi*out], tk.t[lo*lr.R:hi*lr.R], tk.x[lo*in:hi*in]
		switch {
		case lr.bt16 != nil:
			ops.LoRAGroup16(y, t, x, lr.a16, lr.bt16, hi-lo, in, out, lr.R, lr.Scale)
		case tk.bt != nil:
			ops.LoRAGroup(y, t, x, lr.A, tk.bt, hi-lo, in, out, lr.R, lr.Scale)
		default:
			ops.LoRA(y, t, x, lr.A, lr.B, hi-lo, in, out, lr.R, lr.Scale)
		}
		if lr.MagScale != nil {
			for r := 0; r < hi-lo; r++ {
				vec.Mul(y[r*out:(r+1)*out], lr.MagScale)
			}
		}
	}
}

// head computes logits for the rows each sequence asked for. Rows under
// the base head come first and share one product; each adapter with its own
// head (modules_to_save) then gets one product over its contiguous rows.
func (ws *Workspace) head(p *par.Pool) [][]float32 {
	c := ws.m.Cfg
	h, vocab := c.Hidden, c.Vocab
	nOut := 0
	for i := range ws.batch {
		s := &ws.batch[i]
		if rows := len(s.Embeds)/h + len(s.Tokens); s.AllLogits {
			nOut += rows
		} else {
			nOut += min(rows, 1)
		}
	}
	ws.growLogits(nOut)
	nOut = ws.headRows(0, nil)
	if nOut > 0 {
		ws.m.Head.MulT(p, ws.logits, ws.hx, nOut)
	}
	for _, g := range ws.groups {
		if g.a == nil || g.a.Head == nil {
			continue
		}
		lo := nOut
		if nOut = ws.headRows(lo, g.a); nOut > lo {
			g.a.Head.MulT(p, ws.logits[lo*vocab:], ws.hx[lo*h:], nOut-lo)
		}
	}
	return ws.out[:len(ws.batch)]
}

// headRows normalizes, from logit row nOut on, the final hidden rows of the
// sequences that use adapter a's head, or the base head when a is nil,
// points their outputs at the matching logit rows and returns the next
// free row.
func (ws *Workspace) headRows(nOut int, a *Adapter) int {
	c := ws.m.Cfg
	h, vocab := c.Hidden, c.Vocab
	for _, i := range ws.order {
		s := &ws.batch[i]
		if own := s.Adapter != nil && s.Adapter.Head != nil; (a == nil && own) || (a != nil && s.Adapter != a) {
			continue
		}
		rows := len(s.Embeds)/h + len(s.Tokens)
		first := ws.start[i]
		if !s.AllLogits && rows > 0 {
			first, rows = first+rows-1, 1
		}
		for r := first; r < first+rows; r++ {
			ops.RMSNorm(ws.hx[(nOut+r-first)*h:(nOut+r-first+1)*h], ws.x[r*h:(r+1)*h], ws.m.Norm, float32(c.NormEps))
		}
		ws.out[i] = ws.logits[nOut*vocab : (nOut+rows)*vocab : (nOut+rows)*vocab]
		nOut += rows
	}
	return nOut
}
