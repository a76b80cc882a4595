package dataset

import (
	"reflect"
	"testing"

	"github.com/loraplex/loraplex/inference/chat"
)

// chatMLJinja is the ChatML template as Hugging Face tokenizers ship it.
const chatMLJinja = `{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}`

func TestChatTemplateMatchesReference(t *testing.T) {
	tmpl, err := chat.Compile(chatMLJinja)
	if err != nil {
		t.Fatal(err)
	}
	recs := []Record{{Line: 1, Format: FormatChat, Messages: []Message{
		{"system", "s", 0}, {"user", "hi", 0}, {"assistant", "yo", 1}, {"user", "q", 0}, {"assistant", "ok", 0},
	}}}
	got, _, err := Tokenize(recs, byteTok{}, ChatTemplate{T: tmpl, BOS: "<s>", EOS: "</s>"}, Config{})
	if err != nil {
		t.Fatal(err)
	}
	want, _, err := Tokenize(recs, byteTok{}, chatML{}, Config{})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Jinja template gives %+v\nhand-written ChatML gives %+v", got, want)
	}
}
