// Package model is the Llama-family decoder (Llama, Mistral, Qwen2): loading
// a Hugging Face checkpoint into quantized or full-precision weights, and one
// batched forward step over many sequences at once, each with its own
// adapter — LoRA or DoRA updates, a prompt-tuning prefix, its own token
// embedding and output head (PEFT modules_to_save) — and its own place in
// the paged KV cache.
//
// A step flattens every row of the batch into one activation matrix, so each
// base weight is streamed from memory once per step whatever the batch holds;
// LoRA updates stay unmerged and are computed once per group of rows that
// share an adapter. DoRA's row rescale depends on the base weights, so
// Model.PrepareAdapter computes it once per adapter and model.
package model
