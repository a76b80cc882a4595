package sched

import (
	"fmt"

	"github.com/loraplex/loraplex/quant/par"
)

// Config bounds the scheduler's queue, batch and KV memory. Zero fields take
// the defaults below.
type Config struct {
	// MaxQueue is how many requests may wait for admission; Submit returns
	// ErrQueueFull beyond it. Default 256.
	MaxQueue int
	// MaxRunning is how many sequences share a step. Default 16.
	MaxRunning int
	// MaxBatchTokens bounds the rows (tokens and prompt-tuning embeddings)
	// of one forward step, which bounds a step's latency. Default 512.
	MaxBatchTokens int
	// PrefillChunk is the most prompt rows one sequence feeds per step, so
	// a long prompt is spread over several steps instead of stalling every
	// decoding sequence. Default 128.
	PrefillChunk int
	// PrefillFirst gives new requests a step of their own: a step that
	// can admit waiting requests runs only their prompt chunks, and the
	// decoding sequences wait for the next one. Time to first token drops
	// to about one prompt's prefill; running streams pause for it. Off,
	// admissions share the step with every decoding sequence.
	PrefillFirst bool
	// BlockSize is the number of tokens per KV cache block. Default 16.
	BlockSize int
	// KVBytes is the memory budget of the KV cache. Default 256 MiB.
	KVBytes int64
	// MaxContext caps prompt plus generated tokens; 0 means the model's
	// max_position_embeddings.
	MaxContext int
	// Pool runs the forward pass; nil means a pool over every CPU.
	Pool *par.Pool
}

// Default values of Config fields left zero.
const (
	DefaultMaxQueue       = 256
	DefaultMaxRunning     = 16
	DefaultMaxBatchTokens = 512
	DefaultPrefillChunk   = 128
	DefaultBlockSize      = 16
	DefaultKVBytes        = 256 << 20
)

// withDefaults returns c with zero fields set to their defaults.
func (c Config) withDefaults() Config {
	set := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	set(&c.MaxQueue, DefaultMaxQueue)
	set(&c.MaxRunning, DefaultMaxRunning)
	set(&c.MaxBatchTokens, DefaultMaxBatchTokens)
	set(&c.PrefillChunk, DefaultPrefillChunk)
	set(&c.BlockSize, DefaultBlockSize)
	if c.KVBytes == 0 {
		c.KVBytes = DefaultKVBytes
	}
	return c
}

// Validate reports fields that are negative or inconsistent. Zero fields
// are valid: they mean the default.
func (c Config) Validate() error {
	for _, f := range []struct {
		name string
		v    int64
	}{
		{"MaxQueue", int64(c.MaxQueue)}, {"MaxRunning", int64(c.MaxRunning)},
		{"MaxBatchTokens", int64(c.MaxBatchTokens)}, {"PrefillChunk", int64(c.PrefillChunk)},
		{"BlockSize", int64(c.BlockSize)}, {"KVBytes", c.KVBytes}, {"MaxContext", int64(c.MaxContext)},
	} {
		if f.v < 0 {
			return fmt.Errorf("%w: %s = %d must not be negative (0 means the default)", ErrConfig, f.name, f.v)
		}
	}
	d := c.withDefaults()
	if d.PrefillChunk > d.MaxBatchTokens {
		return fmt.Errorf("%w: PrefillChunk %d exceeds MaxBatchTokens %d; a chunk must fit in one step", ErrConfig, d.PrefillChunk, d.MaxBatchTokens)
	}
	return nil
}
