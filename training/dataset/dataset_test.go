package dataset

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// byteTok is a byte-level tokenizer: BOS 1, EOS 2, bytes at 3..258 and the
// ChatML markers as single special tokens, so expected ids are easy to write
// by hand.
type byteTok struct{}

var specials = []struct {
	text string
	id   int32
}{{"<s>", 1}, {"</s>", 2}, {"<|im_start|>", 259}, {"<|im_end|>", 260}}

func (byteTok) Encode(text string, addSpecial bool) []int32 {
	var ids []int32
	if addSpecial {
		ids = append(ids, 1)
	}
	for len(text) > 0 {
		matched := false
		for _, s := range specials {
			if strings.HasPrefix(text, s.text) {
				ids, text, matched = append(ids, s.id), text[len(s.text):], true
				break
			}
		}
		if !matched {
			ids, text = append(ids, int32(text[0])+3), text[1:]
		}
	}
	return ids
}

func (byteTok) EOS() []int32 { return []int32{2} }

// chatML renders the ChatML template used by many instruct models.
type chatML struct{}

func (chatML) Render(msgs []Message, gen bool) (string, error) {
	var sb strings.Builder
	for _, m := range msgs {
		sb.WriteString("<|im_start|>" + m.Role + "\n" + m.Content + "<|im_end|>\n")
	}
	if gen {
		sb.WriteString("<|im_start|>assistant\n")
	}
	return sb.String(), nil
}

func bytesOf(s string) []int32 {
	var ids []int32
	for i := 0; i < len(s); i++ {
		ids = append(ids, int32(s[i])+3)
	}
	return ids
}

func cat(parts ...[]int32) []int32 {
	var out []int32
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

func flags(n int, on ...[2]int) []bool {
	f := make([]bool, n)
	for _, r := range on {
		for i := r[0]; i < r[1]; i++ {
			f[i] = true
		}
	}
	return f
}

func TestReadErrorsCarryLineNumbers(t *testing.T) {
	tests := []struct {
		name, file, want string
	}{
		{"not json", "{\"prompt\":\"a\",\"completion\":\"b\"}\nnope\n", "line 2: invalid training data: not a JSON object"},
		{"no assistant", `{"messages":[{"role":"user","content":"hi"}]}`, "line 1: invalid training data: no assistant message"},
		{"bad role", `{"messages":[{"role":"robot","content":"hi"},{"role":"assistant","content":"x"}]}`, "line 1: messages[0]: invalid training data: unknown role \"robot\""},
		{"bad weight", `{"messages":[{"role":"user","content":"hi"},{"role":"assistant","content":"x","weight":2}]}`, "\"weight\" must be 0 or 1, got 2"},
		{"weight on user", `{"messages":[{"role":"user","content":"hi","weight":1},{"role":"assistant","content":"x"}]}`, "only allowed on assistant"},
		{"tools", `{"messages":[{"role":"assistant","content":"x"}],"tools":[{"type":"function"}]}`, "\"tools\" are not supported"},
		{"mixed formats", "{\"prompt\":\"a\",\"completion\":\"b\"}\n\n{\"messages\":[{\"role\":\"assistant\",\"content\":\"x\"}]}\n", "line 3: invalid training data: this line is chat but earlier lines are prompt-completion"},
		{"empty completion", `{"prompt":"a","completion":""}`, "missing or empty \"completion\""},
		{"empty file", "\n\n", "the file has no examples"},
		{"image part", `{"messages":[{"role":"user","content":[{"type":"image_url"}]},{"role":"assistant","content":"x"}]}`, "only \"text\" parts"},
		{"two values", `{"prompt":"a","completion":"b"} {}`, "more than one JSON value"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Read(strings.NewReader(tc.file), ReadConfig{})
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an ErrInvalid containing %q", err, tc.want)
			}
		})
	}
}

func TestReadCollectsSeveralErrors(t *testing.T) {
	file := "x\n{\"prompt\":\"a\",\"completion\":\"b\"}\ny\nz\n"
	_, err := Read(strings.NewReader(file), ReadConfig{MaxErrors: 2})
	if err == nil || !strings.Contains(err.Error(), "line 1:") || !strings.Contains(err.Error(), "line 3:") || strings.Contains(err.Error(), "line 4:") {
		t.Fatalf("want errors for lines 1 and 3 only, got %v", err)
	}
}

func TestReadLongLines(t *testing.T) {
	long := strings.Repeat("a", 200<<10) // beyond bufio.Scanner's 64 KiB default
	file := `{"prompt":"p","completion":"` + long + "\"}\n"
	recs, err := Read(strings.NewReader(file), ReadConfig{})
	if err != nil || len(recs) != 1 || len(recs[0].Completion) != len(long) {
		t.Fatalf("200 KiB line: %v", err)
	}
	_, err = Read(strings.NewReader(file), ReadConfig{MaxLineBytes: 64 << 10})
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "line 1: invalid training data: line longer than 65536 bytes") {
		t.Fatalf("want a line-too-long error, got %v", err)
	}
}

func TestReadGolden(t *testing.T) {
	f, err := os.Open(filepath.Join("testdata", "chat.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	recs, err := Read(f, ReadConfig{})
	if err != nil {
		t.Fatal(err)
	}
	want := []Record{
		{Line: 1, Format: FormatChat, Messages: []Message{{"system", "Be short.", 0}, {"user", "Hi", 0}, {"assistant", "Hello!", 1}}},
		{Line: 3, Format: FormatChat, Messages: []Message{{"developer", "Be nice.", 0}, {"user", "a", 0}, {"assistant", "b", 0}, {"user", "c", 0}, {"assistant", "de", 1}}},
	}
	if !reflect.DeepEqual(recs, want) {
		t.Fatalf("got %+v\nwant %+v", recs, want)
	}
}

func TestTokenizeChat(t *testing.T) {
	rec := Record{Line: 7, Format: FormatChat, Messages: []Message{
		{"user", "hi", 0}, {"assistant", "yo", 0}, {"user", "q", 0}, {"assistant", "ok", 1},
	}}
	exs, st, err := Tokenize([]Record{rec}, byteTok{}, chatML{}, Config{})
	if err != nil {
		t.Fatal(err)
	}
	turn := func(role, content string) []int32 {
		return cat([]int32{259}, bytesOf(role+"\n"+content), []int32{260}, bytesOf("\n"))
	}
	wantIDs := cat(turn("user", "hi"), turn("assistant", "yo"), turn("user", "q"), turn("assistant", "ok"))
	// Only the last assistant turn is trained: its content, <|im_end|> and "\n".
	n := len(wantIDs)
	want := Example{Line: 7, Tokens: wantIDs, Train: flags(n, [2]int{n - 4, n})}
	if !reflect.DeepEqual(exs, []Example{want}) {
		t.Fatalf("got %+v\nwant %+v", exs, want)
	}
	if st != (Stats{Examples: 1, Tokens: n, TrainableTokens: 4}) {
		t.Fatalf("stats %+v", st)
	}
	// With the default weight the first assistant turn is trained too.
	rec.Messages[1].Weight = 1
	exs, _, err = Tokenize([]Record{rec}, byteTok{}, chatML{}, Config{})
	if err != nil {
		t.Fatal(err)
	}
	first := len(turn("user", "hi")) + len(turn("assistant", ""))
	want.Train = flags(n, [2]int{first - 2, first + 2}, [2]int{n - 4, n})
	if !reflect.DeepEqual(exs[0].Train, want.Train) {
		t.Fatalf("train mask %v\nwant %v", exs[0].Train, want.Train)
	}
}

func TestTokenizeCompletion(t *testing.T) {
	rec := Record{Line: 1, Format: FormatCompletion, Prompt: "Q: sky? A:", Completion: " blue"}
	exs, st, err := Tokenize([]Record{rec}, byteTok{}, nil, Config{})
	if err != nil {
		t.Fatal(err)
	}
	ids := cat([]int32{1}, bytesOf("Q: sky? A: blue"), []int32{2})
	want := Example{Line: 1, Tokens: ids, Train: flags(len(ids), [2]int{len(ids) - 6, len(ids)})}
	if !reflect.DeepEqual(exs, []Example{want}) || st.TrainableTokens != 6 {
		t.Fatalf("got %+v (%+v)\nwant %+v", exs, st, want)
	}
	exs, _, _ = Tokenize([]Record{rec}, byteTok{}, nil, Config{NoCompletionEOS: true})
	if got := exs[0].Tokens; got[len(got)-1] == 2 {
		t.Fatalf("EOS appended despite NoCompletionEOS")
	}
}

func TestTokenizeTooLong(t *testing.T) {
	recs := []Record{
		{Line: 1, Format: FormatCompletion, Prompt: "0123456789", Completion: "ab"},
		{Line: 2, Format: FormatCompletion, Prompt: "x", Completion: "y"},
	}
	// Truncation to 8 tokens leaves line 1 with no label: it is dropped.
	exs, st, err := Tokenize(recs, byteTok{}, nil, Config{MaxTokens: 8})
	if err != nil || len(exs) != 1 || exs[0].Line != 2 || st.Truncated != 1 || st.Dropped != 1 {
		t.Fatalf("truncate: %v %+v %+v", err, exs, st)
	}
	_, _, err = Tokenize(recs, byteTok{}, nil, Config{MaxTokens: 8, TooLong: "reject"})
	if !errors.Is(err, ErrTooLong) || !strings.Contains(err.Error(), "line 1:") {
		t.Fatalf("reject: %v", err)
	}
	_, _, err = Tokenize(recs[:1], byteTok{}, nil, Config{MaxTokens: 8})
	if !errors.Is(err, ErrNoTrainableTokens) {
		t.Fatalf("want ErrNoTrainableTokens, got %v", err)
	}
}

func TestTokenizeNoTrainable(t *testing.T) {
	rec := Record{Line: 1, Format: FormatChat, Messages: []Message{{"user", "a", 0}, {"assistant", "b", 0}}}
	if _, _, err := Tokenize([]Record{rec}, byteTok{}, chatML{}, Config{}); !errors.Is(err, ErrNoTrainableTokens) {
		t.Fatalf("all weights 0: want ErrNoTrainableTokens, got %v", err)
	}
	if _, _, err := Tokenize([]Record{rec}, byteTok{}, nil, Config{}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("chat without template: want ErrInvalid, got %v", err)
	}
}

func TestConfigValidate(t *testing.T) {
	for _, c := range []Config{{MaxTokens: 1}, {TooLong: "drop"}, {MaxErrors: -1}} {
		if err := c.Validate(); !errors.Is(err, ErrInvalid) {
			t.Errorf("%+v: want ErrInvalid, got %v", c, err)
		}
	}
	var c Config
	if err := c.Validate(); err != nil || c.MaxTokens != 2048 || c.TooLong != "truncate" {
		t.Fatalf("defaults: %+v %v", c, err)
	}
}

func FuzzParseLine(f *testing.F) {
	for _, s := range []string{
		`{"messages":[{"role":"user","content":"hi"},{"role":"assistant","content":"yo","weight":0}]}`,
		`{"messages":[{"role":"user","content":[{"type":"text","text":"a"}]},{"role":"assistant","content":"b"}]}`,
		`{"prompt":"a","completion":"b"}`,
		`{"messages":[]}`, `[]`, `null`, `{"weight":1.5}`, `{"messages":[{"role":"assistant","content":null,"tool_calls":[]}]}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		rec, err := ParseLine(b)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error does not wrap ErrInvalid: %v", err)
			}
			return
		}
		switch rec.Format {
		case FormatChat:
			ok := false
			for _, m := range rec.Messages {
				ok = ok || m.Role == "assistant"
				if m.Weight != 0 && m.Weight != 1 {
					t.Fatalf("weight %d", m.Weight)
				}
			}
			if !ok {
				t.Fatal("chat record without assistant accepted")
			}
		case FormatCompletion:
			if rec.Completion == "" {
				t.Fatal("empty completion accepted")
			}
		default:
			t.Fatal("record without format")
		}
	})
}
