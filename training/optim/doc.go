// Package optim holds the optimiser the trainer uses: AdamW with decoupled
// weight decay and bias correction, a warm-up then cosine or linear learning
// rate schedule, and clipping by global gradient norm. It is deterministic:
// the same gradients give bit-identical parameters.
package optim
