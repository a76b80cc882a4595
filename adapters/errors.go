package adapters

import "errors"

var (
	// ErrNotAdapter means a directory holds no PEFT adapter_config.json.
	ErrNotAdapter = errors.New("not a PEFT adapter directory")
	// ErrConfig means adapter_config.json is malformed or inconsistent.
	ErrConfig = errors.New("invalid adapter_config.json")
	// ErrUnsupported means a valid PEFT feature that loraplex does not serve
	// (bias tensors, modules_to_save beyond lm_head and embed_tokens, LoRA on
	// those two, other PEFT methods, pickle files).
	ErrUnsupported = errors.New("unsupported adapter feature")
	// ErrWeights means the adapter's tensors are missing, malformed or not
	// finite.
	ErrWeights = errors.New("invalid adapter weights")
	// ErrIncompatible means the adapter does not fit the base model: unknown
	// modules, wrong dimensions, layers the base does not have.
	ErrIncompatible = errors.New("adapter does not fit the base model")
	// ErrExists means a save target already holds files.
	ErrExists = errors.New("adapter directory already exists")
)
