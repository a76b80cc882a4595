// Package kvcache stores the attention keys and values of every running
// sequence in fixed-size blocks drawn from one preallocated pool, so memory is
// bounded by a budget and sequences of any length share it without
// fragmentation (the paged-attention layout). Each sequence owns a block
// table; the model reads and writes keys and values through it.
package kvcache
