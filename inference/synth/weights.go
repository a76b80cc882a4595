package synth

import (
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"io"
	"math"
	"math/rand/v2"
	"runtime"
	"sync"

	"github.com/loraplex/loraplex/inference/safetensors"
)

// init kinds of a tensor.
type initKind int

const (
	initNormal initKind = iota // N(0, std²)
	initNorm                   // RMSNorm weight: 1 + N(0, std²)
)

type tensorSpec struct {
	t    safetensors.Tensor // name, dtype, shape; no data
	kind initKind
	std  float64
}

// specs lists the tensors of a Llama checkpoint with their initialisation.
// Linear weights get std 1/√in so each projection keeps activations O(1);
// the two projections that write into the residual stream are further
// scaled by 1/√(2·layers) so the stream does not grow with depth. The
// embedding and output rows get std 2/√hidden, which after RMSNorm gives
// logits of standard deviation about 2: peaked enough that greedy decoding
// varies with the input, never degenerate.
func specs(s Shape, dtype safetensors.DType) []tensorSpec {
	hd := s.Hidden / s.Heads
	h, f, kv := s.Hidden, s.Intermediate, s.KVHeads*hd
	resid := 1 / math.Sqrt(float64(2*s.Layers))
	var out []tensorSpec
	add := func(name string, kind initKind, std float64, shape ...int) {
		out = append(out, tensorSpec{safetensors.Tensor{Name: name, DType: dtype, Shape: shape}, kind, std})
	}
	lin := func(name string, outF, inF int, scale float64) {
		add(name, initNormal, scale/math.Sqrt(float64(inF)), outF, inF)
	}
	add("model.embed_tokens.weight", initNormal, 2/math.Sqrt(float64(h)), s.Vocab, h)
	for i := range s.Layers {
		p := fmt.Sprintf("model.layers.%d.", i)
		add(p+"input_layernorm.weight", initNorm, 0.1, h)
		add(p+"post_attention_layernorm.weight", initNorm, 0.1, h)
		lin(p+"self_attn.q_proj.weight", h, h, 1)
		lin(p+"self_attn.k_proj.weight", kv, h, 1)
		lin(p+"self_attn.v_proj.weight", kv, h, 1)
		lin(p+"self_attn.o_proj.weight", h, h, resid)
		lin(p+"mlp.gate_proj.weight", f, h, 1)
		lin(p+"mlp.up_proj.weight", f, h, 1)
		lin(p+"mlp.down_proj.weight", h, f, resid)
	}
	add("model.norm.weight", initNorm, 0.1, h)
	if !s.Tied {
		add("lm_head.weight", initNormal, 2/math.Sqrt(float64(h)), s.Vocab, h)
	}
	return out
}

// rngFor gives each chunk of each tensor its own stream, so values depend
// only on the seed, the tensor's name and the position, not on the order or
// the parallelism they are generated with.
func rngFor(seed int64, name string, chunkIdx int) *rand.Rand {
	h := fnv.New64a()
	io.WriteString(h, name)
	return rand.New(rand.NewPCG(uint64(seed), h.Sum64()+uint64(chunkIdx)*0x9e3779b97f4a7c15))
}

// chunk is how many values one generator fills at a time; with the number of
// parallel generators it bounds the memory a tensor of any size needs.
const chunk = 1 << 16

// emit streams one tensor's values to w in its dtype, generating up to
// GOMAXPROCS chunks in parallel and writing them in order.
func emit(sp tensorSpec, seed int64, w io.Writer) error {
	n := sp.t.Numel()
	size := 4
	if sp.t.DType == safetensors.BF16 {
		size = 2
	}
	workers := runtime.GOMAXPROCS(0)
	bufs := make([][]byte, workers)
	for i := range bufs {
		bufs[i] = make([]byte, chunk*size)
	}
	chunks := (n + chunk - 1) / chunk
	for first := 0; first < chunks; first += workers {
		batch := min(workers, chunks-first)
		var wg sync.WaitGroup
		for b := range batch {
			wg.Go(func() { fill(bufs[b], sp, seed, first+b, n, size) })
		}
		wg.Wait()
		for b := range batch {
			m := min(chunk, n-(first+b)*chunk)
			if _, err := w.Write(bufs[b][:m*size]); err != nil {
				return err
			}
		}
	}
	return nil
}

// fill writes chunk c of the tensor into buf.
func fill(buf []byte, sp tensorSpec, seed int64, c, n, size int) {
	rng := rngFor(seed, sp.t.Name, c)
	m := min(chunk, n-c*chunk)
	for i := range m {
		v := float32(rng.NormFloat64() * sp.std)
		if sp.kind == initNorm {
			v += 1
		}
		if size == 2 {
			binary.LittleEndian.PutUint16(buf[2*i:], safetensors.BF16Bits(v))
		} else {
			binary.LittleEndian.PutUint32(buf[4*i:], math.Float32bits(v))
		}
	}
}
