// Package ops holds the per-operation math of a Llama-family decoder —
// RMSNorm, rotary embeddings, SwiGLU, softmax, causal grouped-query attention,
// low-rank (LoRA) updates and cross-entropy — each with its backward pass,
// plus DoRA's magnitude rescale, which serving computes once per adapter.
//
// Inference and training both call these functions, so the trainer
// back-propagates through exactly the arithmetic the server runs. Every
// backward function accumulates into its gradient outputs (dx += ...), like
// quant.Matrix.MulGrad, so gradients from several paths simply add up.
package ops
