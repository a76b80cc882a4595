// Package config reads the config.json (and generation_config.json) of a
// Hugging Face Llama-family model directory into one validated Config. It
// accepts the spellings that transformers 4 and 5 write and rejects, with a
// clear message, every architecture or option the engine cannot run.
package config
