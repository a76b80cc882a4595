package dataset

import "github.com/loraplex/loraplex/inference/chat"

// ChatTemplate renders with a compiled Jinja chat template exactly as the
// server does for /v1/chat/completions: roles pass through unchanged and
// bos_token / eos_token are the tokenizer's.
type ChatTemplate struct {
	T        *chat.Template
	BOS, EOS string
}

// Render implements Template.
func (c ChatTemplate) Render(msgs []Message, addGenerationPrompt bool) (string, error) {
	cm := make([]chat.Message, len(msgs))
	for i, m := range msgs {
		cm[i] = chat.Message{Role: m.Role, Content: m.Content}
	}
	return c.T.Render(cm, chat.RenderOptions{AddGenerationPrompt: addGenerationPrompt, BOS: c.BOS, EOS: c.EOS})
}
