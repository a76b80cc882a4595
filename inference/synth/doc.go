// Package synth writes random-weight Llama model directories in Hugging Face
// layout (config.json, model.safetensors, a byte-level BPE tokenizer with a
// ChatML template). Tests, benchmarks, `loraplex bench` and the built-in demo
// model use them where a real checkpoint would be too big or not at hand.
package synth
