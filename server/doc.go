// Package server is loraplex's HTTP API: OpenAI-compatible chat and legacy
// completions where the `model` field picks a LoRA or prompt-tuning adapter,
// vLLM's adapter load/unload and tokenize endpoints, and Prometheus metrics
// (including the vLLM-named gauges gateways route on). It drives the engine
// and the adapter registry through the small interfaces in backend.go.
package server
