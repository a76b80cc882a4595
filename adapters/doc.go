// Package adapters reads and writes Hugging Face PEFT adapter directories
// (LoRA and prompt tuning) and turns them into the engine's model.Adapter.
// Everything is checked against the base model's config before it is used,
// so a bad adapter is reported by name, module and shape instead of serving
// wrong outputs.
package adapters
