// Package safetensors reads and writes the safetensors weight format used by
// Hugging Face checkpoints and PEFT adapters. Files are memory-mapped read-only
// and their headers validated as strictly as the reference parser, so a
// multi-gigabyte model costs address space rather than a second copy in RAM.
package safetensors
