// Package trainer runs the forward and backward pass of a Llama-family base
// model with a trainable adapter (LoRA or prompt tuning) on top. The base stays
// frozen in its storage format: its linear layers are only ever used through
// quant.Matrix.MulT and MulGrad, and every layer's activations are recomputed
// during the backward pass so memory grows with one layer, not the whole
// depth.
package trainer
