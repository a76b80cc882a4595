// Package training is the built-in trainer: it turns OpenAI fine-tuning files
// into PEFT adapters for the resident base model. The sub-packages hold the
// pieces (dataset parsing and tokenisation, the AdamW optimiser, the
// forward/backward pass, and the persistent job manager behind the
// fine-tuning API).
package training
