package synth

import (
	"testing"

	"github.com/loraplex/loraplex/inference/chat"
)

// The shipped template must render ChatML in the project's Jinja engine.
func TestChatTemplateRenders(t *testing.T) {
	tmpl, err := chat.Compile(ChatTemplate)
	if err != nil {
		t.Fatal(err)
	}
	got, err := tmpl.Render([]chat.Message{{Role: "system", Content: "Be brief."}, {Role: "user", Content: "Hi"}},
		chat.RenderOptions{AddGenerationPrompt: true, BOS: BeginOfText, EOS: IMEnd})
	if err != nil {
		t.Fatal(err)
	}
	want := "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
	if got != want {
		t.Errorf("rendered %q, want %q", got, want)
	}
}
