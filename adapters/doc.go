// Package adapters reads and writes Hugging Face PEFT adapter directories —
// LoRA (with DoRA, rsLoRA, rank and alpha patterns, and modules_to_save
// copies of lm_head and embed_tokens) and prompt tuning — and turns them into
// the engine's model.Adapter. Everything is checked against the base model's
// config before it is used, so a bad adapter is reported by name, module and
// shape instead of serving wrong outputs; DoRA adapters are also prepared
// against the loaded base (Options.Model, NewModelLoader).
package adapters
