// Package checkpoint writes a loaded NF4 model back to disk as a Hugging Face
// bitsandbytes pre-quantized checkpoint (the *-bnb-4bit layout), so a restart
// skips quantization and transformers with bitsandbytes can read our output.
// Unquantized tensors are streamed byte for byte from the source checkpoint.
package checkpoint
