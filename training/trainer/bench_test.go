package trainer

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/loraplex/loraplex/inference/config"
	"github.com/loraplex/loraplex/inference/model"
	"github.com/loraplex/loraplex/inference/synth"
	"github.com/loraplex/loraplex/quant"
	"github.com/loraplex/loraplex/quant/par"
	"github.com/loraplex/loraplex/training/dataset"
	"github.com/loraplex/loraplex/training/optim"
)

// benchModel builds a model of shape sh with random weights: BF16
// embeddings and head (as a real checkpoint stores them) and NF4 decoder
// linear weights, quantized on every core. Values do not change speed.
func benchModel(b *testing.B, sh synth.Shape) *model.Model {
	j, err := sh.ConfigJSON("bf16")
	if err != nil {
		b.Fatal(err)
	}
	cfg, err := config.Parse(j)
	if err != nil {
		b.Fatal(err)
	}
	layers := make([]model.Layer, cfg.Layers)
	ones := make([]float32, cfg.Hidden)
	for i := range ones {
		ones[i] = 1
	}
	var wg sync.WaitGroup
	next := atomic.Int64{}
	for range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			w := make([]float32, cfg.Intermediate*max(cfg.Hidden, cfg.Heads*cfg.HeadDim))
			for i := int(next.Add(1)) - 1; i < len(layers); i = int(next.Add(1)) - 1 {
				rng := rand.New(rand.NewPCG(1, uint64(i)))
				l := &layers[i]
				l.InNorm, l.PostNorm = ones, ones
				for mod := range model.NumModules {
					out, in := model.ModuleShape(cfg, mod)
					bound := float32(math.Sqrt(3 / float64(in)))
					for j := range w[:out*in] {
						w[j] = bound * (2*rng.Float32() - 1)
					}
					l.W[mod] = quant.QuantizeNF4(out, in, w[:out*in])
				}
			}
		})
	}
	wg.Wait()
	rng := rand.New(rand.NewPCG(1, 2))
	bf16 := func() quant.Matrix {
		bits := make([]uint16, cfg.Vocab*cfg.Hidden)
		for i := range bits {
			bits[i] = uint16(math.Float32bits(0.04*(rng.Float32()-0.5)) >> 16)
		}
		return quant.NewBF16(cfg.Vocab, cfg.Hidden, bits)
	}
	embed, head := bf16(), quant.Matrix(nil)
	if cfg.TieEmbeddings {
		head = embed
	} else {
		head = bf16()
	}
	m, err := model.New(cfg, embed, layers, ones, head)
	if err != nil {
		b.Fatal(err)
	}
	return m
}

// BenchmarkTrainS measures LoRA r=16 training on all seven modules of S at
// batch 4 × 256 tokens, every token a label: one optimiser step per
// iteration. Anchor: PyTorch fp32 on 2 threads trains S at 202 tokens/s
// with 4.7 GB peak RSS.
func BenchmarkTrainS(b *testing.B) { benchShape(b, benchModel(b, synth.S), 4) }

// BenchmarkTrainM is BenchmarkTrainS for M at batch 1 × 256. Anchor:
// PyTorch fp32 on 2 threads trains M at 38.5 tokens/s with 7.0 GB peak RSS.
func BenchmarkTrainM(b *testing.B) { benchShape(b, benchModel(b, synth.M), 1) }

// benchShape runs benchTrain recomputing every layer, then keeping every
// layer's activations (peak RSS is the process's, so the second figure
// covers both), each in float32 and bfloat16 compute.
func benchShape(b *testing.B, m *model.Model, seqs int) {
	for _, keep := range []int64{0, 2 << 30} {
		for _, dt := range []string{ComputeFloat32, ComputeBFloat16} {
			b.Run(fmt.Sprintf("keep=%dMiB/compute=%s", keep>>20, dt), func(b *testing.B) { benchTrain(b, m, keep, seqs, dt) })
		}
	}
}

func benchTrain(b *testing.B, m *model.Model, keep int64, seqs int, dt string) {
	ad, err := NewLoRA(m, LoRASpec{R: 16, Alpha: 32, Targets: allModules}, 1)
	if err != nil {
		b.Fatal(err)
	}
	tr, err := New(m, ad, Config{Dropout: 0.05, KeepBytes: keep, ComputeDType: dt})
	if err != nil {
		b.Fatal(err)
	}
	opt, err := optim.New(optim.Config{TotalSteps: 1000}, tr.Params())
	if err != nil {
		b.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(3, 4))
	batch := make([]dataset.Example, seqs)
	for i := range batch {
		ex := dataset.Example{Tokens: make([]int32, 256), Train: make([]bool, 256)}
		for j := range ex.Tokens {
			ex.Tokens[j] = int32(rng.IntN(m.Cfg.Vocab))
			ex.Train[j] = j > 0
		}
		batch[i] = ex
	}
	p := par.New(0)
	ctx := context.Background()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		res, err := tr.Accumulate(ctx, p, batch, uint64(i))
		if err != nil {
			b.Fatal(err)
		}
		opt.Step(1 / float32(res.Tokens))
	}
	b.ReportMetric(float64(b.N*seqs*256)/b.Elapsed().Seconds(), "tokens/s")
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) == nil {
		b.ReportMetric(float64(ru.Maxrss)/1024, "peakRSS-MiB")
	}
}
