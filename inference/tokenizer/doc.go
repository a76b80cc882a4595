// Package tokenizer loads a Hugging Face tokenizer.json (with
// tokenizer_config.json and generation_config.json) and encodes text to token
// ids and back. It supports the two BPE families Llama-style models ship:
// SentencePiece-style BPE with byte fallback (Llama 2, TinyLlama, Mistral) and
// byte-level BPE (GPT-2, Llama 3, Qwen2, SmolLM), plus an incremental
// detokenizer (Stream) that only ever emits complete UTF-8.
package tokenizer
