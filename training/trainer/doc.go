// Package trainer runs the forward and backward pass of a Llama-family base
// model with a trainable adapter (LoRA or prompt tuning) on top. The base stays
// frozen in its storage format: its linear layers are only ever used through
// quant.Matrix.MulT and MulGrad (only the input gradient of a frozen weight
// is computed, never its own), in bfloat16 (quant.MulTBF16, MulGradBF16)
// unless Config.ComputeDType asks for float32. Layers whose activations fit in
// Config.KeepBytes keep them from the forward pass; the others are recomputed
// during the backward pass from their saved input, so memory grows with one
// layer, not the whole depth.
package trainer
