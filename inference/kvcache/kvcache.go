package kvcache

import (
	"errors"
	"fmt"
	"sync"
)

// ErrOutOfBlocks means the pool has too few free blocks for a reservation.
// The caller should wait for sequences to finish or preempt one.
var ErrOutOfBlocks = errors.New("kvcache: out of KV cache blocks")

// Seq is the KV state of one sequence: its block table and how many tokens
// are stored. The zero value is an empty sequence. A Seq belongs to one Pool
// and must be used by one goroutine at a time.
type Seq struct {
	Blocks []int32 // block indices, in token order
	Len    int     // tokens stored
}

// Cap is how many tokens fit in the blocks the sequence holds.
func (s *Seq) Cap(blockSize int) int { return len(s.Blocks) * blockSize }

// Pool is a fixed set of KV blocks. Each block holds BlockSize tokens of keys
// and values for every layer and KV head, laid out as
// [layer][K,V][kvHead][token][headDim] so one head's keys inside a block are
// contiguous. Reserve, Free and Truncate are safe for concurrent use; reading
// and writing a sequence's blocks is up to the sequence's owner.
type Pool struct {
	layers, kvHeads, headDim, blockSize int
	blockFloats                         int
	data                                []float32

	mu   sync.Mutex
	free []int32 // stack of free block indices
}

// BlockBytes is the memory one block takes for the given shape.
func BlockBytes(layers, kvHeads, headDim, blockSize int) int64 {
	return int64(layers) * 2 * int64(kvHeads) * int64(headDim) * int64(blockSize) * 4
}

// NewPool allocates numBlocks blocks of blockSize tokens. It panics on
// non-positive sizes, which are programming errors.
func NewPool(layers, kvHeads, headDim, blockSize, numBlocks int) *Pool {
	if layers <= 0 || kvHeads <= 0 || headDim <= 0 || blockSize <= 0 || numBlocks <= 0 {
		panic(fmt.Sprintf("kvcache: bad pool shape layers=%d kvHeads=%d headDim=%d blockSize=%d blocks=%d",
			layers, kvHeads, headDim, blockSize, numBlocks))
	}
	p := &Pool{layers: layers, kvHeads: kvHeads, headDim: headDim, blockSize: blockSize}
	p.blockFloats = layers * 2 * kvHeads * headDim * blockSize
	p.data = make([]float32, p.blockFloats*numBlocks)
	p.free = make([]int32, numBlocks)
	for i := range p.free {
		// Pop order hands out low blocks first, which keeps touched memory compact.
		p.free[i] = int32(numBlocks - 1 - i)
	}
	return p
}

// BlockSize is the number of tokens per block.
func (p *Pool) BlockSize() int { return p.blockSize }

// Total is the number of blocks in the pool.
func (p *Pool) Total() int { return len(p.data) / p.blockFloats }

// Used is the number of blocks held by sequences.
func (p *Pool) Used() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.Total() - len(p.free)
}

// Available is the number of free blocks.
func (p *Pool) Available() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.free)
}

// BlocksFor is the number of blocks n tokens need.
func (p *Pool) BlocksFor(n int) int { return (n + p.blockSize - 1) / p.blockSize }

// Need is how many more blocks s needs to hold n more tokens: what Reserve
// would take. Schedulers use it for admission.
func (p *Pool) Need(s *Seq, n int) int { return max(0, p.BlocksFor(s.Len+n)-len(s.Blocks)) }

// Reserve makes room for s.Len+n tokens. It takes all the blocks it needs or
// none, returning ErrOutOfBlocks when the pool is short.
func (p *Pool) Reserve(s *Seq, n int) error {
	need := p.Need(s, n)
	if need == 0 {
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if need > len(p.free) {
		return fmt.Errorf("%w: need %d more, %d free of %d", ErrOutOfBlocks, need, len(p.free), p.Total())
	}
	k := len(p.free) - need
	for i := len(p.free) - 1; i >= k; i-- {
		s.Blocks = append(s.Blocks, p.free[i])
	}
	p.free = p.free[:k]
	return nil
}

// Free returns all of s's blocks to the pool and empties s.
func (p *Pool) Free(s *Seq) { p.Truncate(s, 0) }

// Truncate shortens s to its first n tokens (for preemption and rollback) and
// returns every block it no longer needs, including reserved blocks past the
// end; n ≥ s.Len keeps all stored tokens.
func (p *Pool) Truncate(s *Seq, n int) {
	n = max(0, min(n, s.Len))
	keep := p.BlocksFor(n)
	p.mu.Lock()
	for i := len(s.Blocks) - 1; i >= keep; i-- {
		p.free = append(p.free, s.Blocks[i])
	}
	p.mu.Unlock()
	s.Blocks = s.Blocks[:keep]
	s.Len = n
}

// K returns the keys of kvHead in layer for block b: BlockSize×HeadDim floats,
// token-major.
func (p *Pool) K(b int32, layer, kvHead int) []float32 { return p.slab(b, layer, 0, kvHead) }

// V is K's counterpart for values.
func (p *Pool) V(b int32, layer, kvHead int) []float32 { return p.slab(b, layer, 1, kvHead) }

func (p *Pool) slab(b int32, layer, kv, head int) []float32 {
	n := p.blockSize * p.headDim
	off := int(b)*p.blockFloats + ((layer*2+kv)*p.kvHeads+head)*n
	return p.data[off : off+n : off+n]
}

// Write stores the key and value rows (kvHeads×headDim each) of token pos of
// s in layer. The token must lie within s's reserved blocks.
func (p *Pool) Write(s *Seq, layer, pos int, k, v []float32) {
	b := s.Blocks[pos/p.blockSize]
	t := (pos % p.blockSize) * p.headDim
	d := p.headDim
	for h := 0; h < p.kvHeads; h++ {
		copy(p.K(b, layer, h)[t:t+d], k[h*d:(h+1)*d])
		copy(p.V(b, layer, h)[t:t+d], v[h*d:(h+1)*d])
	}
}
