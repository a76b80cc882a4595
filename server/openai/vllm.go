package openai

// TokenizeRequest is vLLM's POST /tokenize body: either prompt or messages.
type TokenizeRequest struct {
	Model               string    `json:"model"`
	Prompt              *string   `json:"prompt"`
	Messages            []Message `json:"messages"`
	AddSpecialTokens    *bool     `json:"add_special_tokens"`
	AddGenerationPrompt *bool     `json:"add_generation_prompt"`
}

// TokenizeResponse is vLLM's /tokenize answer.
type TokenizeResponse struct {
	Count       int     `json:"count"`
	MaxModelLen int     `json:"max_model_len"`
	Tokens      []int32 `json:"tokens"`
}

// DetokenizeRequest is vLLM's POST /detokenize body.
type DetokenizeRequest struct {
	Model  string  `json:"model"`
	Tokens []int64 `json:"tokens"`
}

// DetokenizeResponse is vLLM's /detokenize answer.
type DetokenizeResponse struct {
	Prompt string `json:"prompt"`
}

// LoadAdapterRequest is vLLM's POST /v1/load_lora_adapter body.
type LoadAdapterRequest struct {
	Name string `json:"lora_name"`
	Path string `json:"lora_path"`
	// Replace is vLLM's load_inplace: overwrite an adapter of that name.
	Replace bool `json:"load_inplace"`
}

// UnloadAdapterRequest is vLLM's POST /v1/unload_lora_adapter body.
type UnloadAdapterRequest struct {
	Name string `json:"lora_name"`
}
