package tokenizer

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/loraplex/loraplex/inference/fixtures"
)

func pieces(s *splitter, text string) []string {
	var out []string
	for _, sp := range s.appendPieces(nil, text, 0, true) {
		out = append(out, text[sp.lo:sp.hi])
	}
	return out
}

// Hand-checked GPT-2 and Qwen2 splits where they differ from Llama 3.
func TestOtherPatterns(t *testing.T) {
	gpt2, _ := newSplitter(gpt2Pattern)
	qwen2, _ := newSplitter(qwen2Pattern)
	cases := []struct {
		s    *splitter
		text string
		want []string
	}{
		{gpt2, "It's 1234567 ok!!", []string{"It", "'s", " 1234567", " ok", "!!"}},
		{gpt2, "IT'S", []string{"IT", "'", "S"}},
		{gpt2, "x   y\n\nz", []string{"x", "  ", " y", "\n", "\n", "z"}}, // no newline rule: the lookahead leaves the last \n alone
		{qwen2, "abc123", []string{"abc", "1", "2", "3"}},
		{qwen2, "'RE", []string{"'RE"}},
	}
	for _, c := range cases {
		if got := pieces(c.s, c.text); !slices.Equal(got, c.want) {
			t.Errorf("split(%q) = %q, want %q", c.text, got, c.want)
		}
	}
}

func blPath() string { return filepath.Join("testdata", "bytelevel", "tokenizer.json") }

// GPT-2's form: a lone ByteLevel pre-tokenizer with its built-in regex and
// add_prefix_space.
func TestPlainByteLevel(t *testing.T) {
	tok := rewrite(t, blPath(), func(m map[string]any) {
		m["pre_tokenizer"] = map[string]any{"type": "ByteLevel", "add_prefix_space": true, "use_regex": true}
	})
	llama := loadByteLevel(t)
	// With the prefix space both patterns split " Hello world" the same way.
	if got, want := tok.Encode("Hello world", false), llama.Encode(" Hello world", false); !slices.Equal(got, want) {
		t.Errorf("Encode = %v, want %v", got, want)
	}
	if got := tok.Decode(tok.Encode("Hello world", false), false); got != " Hello world" {
		t.Errorf("Decode = %q, want the prefix space kept", got)
	}
}

// SmolLM's form: Digits(individual) then ByteLevel with its regex.
func TestDigitsPreTokenizer(t *testing.T) {
	tok := rewrite(t, blPath(), func(m map[string]any) {
		m["pre_tokenizer"] = map[string]any{"type": "Sequence", "pretokenizers": []any{
			map[string]any{"type": "Digits", "individual_digits": true},
			map[string]any{"type": "ByteLevel", "add_prefix_space": false, "use_regex": true},
		}}
	})
	byteID := func(b byte) int32 { return int32(b) } // the test vocab gives byte b id b
	got := tok.Encode("123", false)
	if want := []int32{byteID('1'), byteID('2'), byteID('3')}; !slices.Equal(got, want) {
		t.Errorf("Encode(123) = %v, want single digits %v", got, want)
	}
}

// Qwen2 normalizes to NFC before splitting.
func TestNFC(t *testing.T) {
	tok := rewrite(t, blPath(), func(m map[string]any) { m["normalizer"] = map[string]any{"type": "NFC"} })
	if a, b := tok.Encode("Cafe\u0301", false), tok.Encode("Café", false); !slices.Equal(a, b) {
		t.Errorf("decomposed %v != composed %v", a, b)
	}
}

func TestAddedTokenStrip(t *testing.T) {
	tok := rewrite(t, blPath(), func(m map[string]any) {
		for _, a := range m["added_tokens"].([]any) {
			a := a.(map[string]any)
			if a["content"] == "<|im_end|>" {
				a["lstrip"], a["rstrip"] = true, true
			}
		}
	})
	got := tok.Encode("hi  <|im_end|>  x", false)
	want := append(append(tok.Encode("hi", false), 509), tok.Encode("x", false)...)
	if !slices.Equal(got, want) {
		t.Errorf("Encode = %v, want the spaces around <|im_end|> absorbed: %v", got, want)
	}
	plain := loadByteLevel(t).Encode("hi <|im_end|> x", false)
	if !slices.Contains(plain, tok.Encode(" ", false)[0]) {
		t.Errorf("without lstrip/rstrip the spaces must stay: %v", plain)
	}
}

// add_eos_token in tokenizer_config.json overrides the post-processor.
func TestAddEOSToken(t *testing.T) {
	src := fixtures.Path(t, "models", "stories260k")
	dir := t.TempDir()
	b, err := os.ReadFile(filepath.Join(src, "tokenizer.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "tokenizer.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := `{"add_bos_token": true, "add_eos_token": true, "bos_token": "<s>", "eos_token": "</s>"}`
	if err := os.WriteFile(filepath.Join(dir, "tokenizer_config.json"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	tok, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := tok.Encode("a", true), []int32{1, 261, 2}; !slices.Equal(got, want) {
		t.Errorf("Encode = %v, want %v", got, want)
	}
	if got, want := tok.Encode("a", false), []int32{261}; !slices.Equal(got, want) {
		t.Errorf("Encode without special = %v, want %v", got, want)
	}
}

// Without byte fallback an unknown character becomes <unk>, and fuse_unk
// folds a run of them into one.
func TestUnkFuse(t *testing.T) {
	path := filepath.Join(fixtures.Path(t, "models", "stories260k"), "tokenizer.json")
	for _, fuse := range []bool{true, false} {
		tok := rewrite(t, path, func(m map[string]any) {
			model := m["model"].(map[string]any)
			model["byte_fallback"], model["fuse_unk"] = false, fuse
		})
		want := []int32{1, 410, 0}
		if !fuse {
			want = []int32{1, 410, 0, 0}
		}
		if got := tok.Encode("中文", true); !slices.Equal(got, want) {
			t.Errorf("fuse_unk=%v: Encode = %v, want %v", fuse, got, want)
		}
	}
}

// The Metaspace decoder (newer SentencePiece exports) restores spaces and
// drops the prepended one, like Replace+Strip.
func TestMetaspaceDecoder(t *testing.T) {
	path := filepath.Join(fixtures.Path(t, "models", "stories260k"), "tokenizer.json")
	tok := rewrite(t, path, func(m map[string]any) {
		m["decoder"] = map[string]any{"type": "Metaspace", "replacement": "▁", "prepend_scheme": "always", "split": true}
	})
	if got := tok.Decode([]int32{1, 403, 407, 261, 378}, true); got != "Once upon a time" {
		t.Errorf("Decode = %q", got)
	}
}

// prepend_scheme "always" adds ▁ to every segment, "never" to none.
func TestMetaspaceSchemes(t *testing.T) {
	path := filepath.Join(fixtures.Path(t, "models", "stories260k"), "tokenizer.json")
	cases := []struct {
		scheme, text string
		want         []int32
	}{
		{"always", "x</s>y", []int32{1, 410, 444, 2, 348}},
		{"never", "Once upon", []int32{1, 441, 416, 331, 407}},
	}
	for _, c := range cases {
		tok := rewrite(t, path, func(m map[string]any) {
			m["normalizer"] = nil
			m["pre_tokenizer"] = map[string]any{"type": "Metaspace", "replacement": "▁", "prepend_scheme": c.scheme, "split": false}
		})
		if got := tok.Encode(c.text, true); !slices.Equal(got, c.want) {
			t.Errorf("%s: Encode(%q) = %v, want %v", c.scheme, c.text, got, c.want)
		}
	}
}
