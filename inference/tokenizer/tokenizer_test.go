package tokenizer

import (
	"bufio"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/loraplex/loraplex/inference/fixtures"
)

func loadStories(t testing.TB) *Tokenizer {
	t.Helper()
	tok, err := Load(fixtures.Path(t, "models", "stories260k"))
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

type refCase struct {
	Prompt     string  `json:"prompt"`
	PromptIDs  []int32 `json:"prompt_ids"`
	GreedyIDs  []int32 `json:"greedy_ids"`
	GreedyText string  `json:"greedy_text"`
}

func readRef(t *testing.T) []refCase {
	f, err := os.Open(filepath.Join(fixtures.Path(t, "models", "stories260k"), "reference-5.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []refCase
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var c refCase
		if err := json.Unmarshal(sc.Bytes(), &c); err != nil {
			t.Fatal(err)
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		t.Fatal("no reference cases")
	}
	return out
}

func TestStoriesReference(t *testing.T) {
	tok := loadStories(t)
	for _, c := range readRef(t) {
		got := tok.Encode(c.Prompt, true)
		if !slices.Equal(got, c.PromptIDs) {
			t.Errorf("Encode(%q) = %v, want %v", c.Prompt, got, c.PromptIDs)
		}
		all := append(slices.Clone(c.PromptIDs), c.GreedyIDs...)
		full := tok.Decode(all, true)
		prompt := tok.Decode(c.PromptIDs, true)
		if prompt != c.Prompt {
			t.Errorf("Decode(prompt ids) = %q, want %q", prompt, c.Prompt)
		}
		if cont, ok := strings.CutPrefix(full, prompt); !ok || cont != c.GreedyText {
			t.Errorf("continuation of %q = %q, want %q", c.Prompt, cont, c.GreedyText)
		}
		st := tok.NewStream(true)
		var sb strings.Builder
		for _, id := range all {
			sb.WriteString(st.Add(id))
		}
		sb.WriteString(st.Flush())
		if sb.String() != full {
			t.Errorf("stream = %q, want %q", sb.String(), full)
		}
	}
}

type golden struct {
	Text   string   `json:"text"`
	IDs    []int32  `json:"ids"`
	Pieces []string `json:"pieces"`
}

func readGolden(t *testing.T, name string) []golden {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	var g []golden
	if err := json.Unmarshal(b, &g); err != nil {
		t.Fatal(err)
	}
	return g
}

func loadByteLevel(t testing.TB) *Tokenizer {
	t.Helper()
	tok, err := Load(filepath.Join("testdata", "bytelevel"))
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// The stories260k golden ids come from a naive reference encoder (split on
// added tokens, legacy normalizer, repeated lowest-rank merge); the byte
// pieces below were also checked by hand: Ѐ is D0 80 -> <0xD0>=211 <0x80>=131,
// 中 is E4 B8 AD -> 231 187 176, "\n" is <0x0A>=13, "</s>" is 2.
func TestStoriesGolden(t *testing.T) {
	tok := loadStories(t)
	for _, g := range readGolden(t, "stories260k_golden.json") {
		got := tok.Encode(g.Text, true)
		if !slices.Equal(got, g.IDs) {
			t.Errorf("Encode(%q) = %v, want %v", g.Text, got, g.IDs)
		}
		// Legacy SentencePiece decoding strips the one space the normalizer
		// prepended, so text without added tokens round-trips.
		if !strings.Contains(g.Text, "<") {
			if dec := tok.Decode(got, true); dec != g.Text {
				t.Errorf("Decode(Encode(%q)) = %q", g.Text, dec)
			}
		}
	}
}

func TestStoriesDecodeSpecial(t *testing.T) {
	tok := loadStories(t)
	ids := []int32{1, 403, 2, 410, 444}
	if got, want := tok.Decode(ids, false), "<s> Once</s> x"; got != want {
		t.Errorf("Decode(keep special) = %q, want %q", got, want)
	}
	if got, want := tok.Decode(ids, true), "Once x"; got != want {
		t.Errorf("Decode(skip special) = %q, want %q", got, want)
	}
	// An invalid run of byte pieces becomes one U+FFFD per piece, a valid run
	// its character; the leading-space strip applies to the fused text.
	cases := []struct {
		ids  []int32
		want string
	}{
		{[]int32{231, 187, 176}, "中"},
		{[]int32{231, 187, 261}, "\uFFFD\uFFFD a"},
		{[]int32{35, 261}, " a"}, // <0x20> is stripped like the ▁ space
		{[]int32{410, 410, 261}, "  a"},
		{[]int32{66, 231, 187, 176}, "?中"},
		{[]int32{66, 231, 187}, "\uFFFD\uFFFD\uFFFD"},
	}
	for _, c := range cases {
		if got := tok.Decode(c.ids, true); got != c.want {
			t.Errorf("Decode(%v) = %q, want %q", c.ids, got, c.want)
		}
	}
	if tok.BOS() != 1 || !slices.Equal(tok.EOS(), []int32{2}) || !tok.IsSpecial(2) || tok.IsSpecial(261) {
		t.Errorf("BOS %d EOS %v special(2) %v", tok.BOS(), tok.EOS(), tok.IsSpecial(2))
	}
	if tok.VocabSize() != 512 || tok.Token(261) != "▁a" || string(tok.TokenBytes(261)) != " a" || string(tok.TokenBytes(13)) != "\n" {
		t.Errorf("vocab %d token %q bytes %q", tok.VocabSize(), tok.Token(261), tok.TokenBytes(261))
	}
	if sp := tok.SpecialTokens(); sp["bos_token"] != "<s>" || sp["eos_token"] != "</s>" || sp["unk_token"] != "<unk>" {
		t.Errorf("SpecialTokens = %v", sp)
	}
}

// rewrite loads a tokenizer.json, lets edit change it and parses the result.
func rewrite(t *testing.T, path string, edit func(m map[string]any)) *Tokenizer {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	edit(m)
	if b, err = json.Marshal(m); err != nil {
		t.Fatal(err)
	}
	tok, err := Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// The newer SentencePiece form: no normalizer, a Metaspace pre-tokenizer.
// prepend_scheme "first" adds ▁ only at the start of the input and not
// before text that already starts with a space.
func TestMetaspace(t *testing.T) {
	path := filepath.Join(fixtures.Path(t, "models", "stories260k"), "tokenizer.json")
	for _, split := range []bool{false, true} {
		tok := rewrite(t, path, func(m map[string]any) {
			m["normalizer"] = nil
			m["pre_tokenizer"] = map[string]any{"type": "Metaspace", "replacement": "▁", "prepend_scheme": "first", "split": split}
		})
		cases := []struct {
			text string
			want []int32
		}{
			{"Once upon a time", []int32{1, 403, 407, 261, 378}},
			{" leading", []int32{1, 278, 411, 380, 299}},
			{"x</s>y", []int32{1, 410, 444, 2, 422}},
			{"Hello world", []int32{1, 346, 306, 414, 263, 304, 341}},
		}
		for _, c := range cases {
			if got := tok.Encode(c.text, true); !slices.Equal(got, c.want) {
				t.Errorf("split=%v Encode(%q) = %v, want %v", split, c.text, got, c.want)
			}
		}
	}
}

func TestByteLevelGolden(t *testing.T) {
	tok := loadByteLevel(t)
	for _, g := range readGolden(t, "bytelevel_golden.json") {
		got := tok.Encode(g.Text, false)
		if !slices.Equal(got, g.IDs) {
			t.Errorf("Encode(%q) = %v, want %v", g.Text, got, g.IDs)
		}
		if dec := tok.Decode(got, false); dec != g.Text {
			t.Errorf("Decode(Encode(%q)) = %q", g.Text, dec)
		}
		if strings.Contains(g.Text, "<|") {
			continue
		}
		var pieces []string
		for _, sp := range tok.splits[0].re.appendPieces(nil, g.Text, 0, true) {
			pieces = append(pieces, g.Text[sp.lo:sp.hi])
		}
		if !slices.Equal(pieces, g.Pieces) && len(pieces)+len(g.Pieces) > 0 {
			t.Errorf("split(%q) = %q, want %q", g.Text, pieces, g.Pieces)
		}
	}
}

// Hand-checked Llama-3 split behaviour, independent of any generator.
func TestLlama3Split(t *testing.T) {
	cases := []struct {
		text string
		want []string
	}{
		{"It's", []string{"It", "'s"}},
		{"DON'T", []string{"DON", "'T"}},
		{"1234567", []string{"123", "456", "7"}},
		{"a  \n\nb", []string{"a", "  \n\n", "b"}},
		{"x   y", []string{"x", "  ", " y"}},
		{"end  ", []string{"end", "  "}},
		{"hi!!\n\nyo", []string{"hi", "!!\n\n", "yo"}},
		{" ...", []string{" ..."}},
		{"\"quoted\"", []string{"\"quoted", "\""}},
	}
	s, err := newSplitter(llama3Pattern)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cases {
		var got []string
		for _, sp := range s.appendPieces(nil, c.text, 0, true) {
			got = append(got, c.text[sp.lo:sp.hi])
		}
		if !slices.Equal(got, c.want) {
			t.Errorf("split(%q) = %q, want %q", c.text, got, c.want)
		}
	}
}

func TestByteLevelConfig(t *testing.T) {
	tok := loadByteLevel(t)
	if got := tok.Encode("Hello", true); len(got) == 0 || got[0] != 506 {
		t.Errorf("Encode with special = %v, want <|begin_of_text|> (506) first", got)
	}
	if tok.BOS() != 506 || !slices.Equal(tok.EOS(), []int32{507, 510}) {
		t.Errorf("BOS %d EOS %v", tok.BOS(), tok.EOS())
	}
	if !strings.HasPrefix(tok.ChatTemplate(), "{% for m in messages %}") {
		t.Errorf("ChatTemplate picked %q, want the one named default", tok.ChatTemplate())
	}
	got := tok.Encode("<|im_start|>user\nhi<|im_end|>", false)
	if got[0] != 508 || got[len(got)-1] != 509 {
		t.Errorf("added tokens not matched: %v", got)
	}
	if tok.Decode(got, true) != "user\nhi" {
		t.Errorf("Decode(skip special) = %q", tok.Decode(got, true))
	}
}

// Both merges encodings (legacy "a b" and [a, b]) give the same tokenizer.
func TestMergesEncodings(t *testing.T) {
	path := filepath.Join("testdata", "bytelevel", "tokenizer.json")
	legacy := rewrite(t, path, func(m map[string]any) {
		model := m["model"].(map[string]any)
		merges := model["merges"].([]any)
		for i, p := range merges {
			pair := p.([]any)
			merges[i] = pair[0].(string) + " " + pair[1].(string)
		}
	})
	tok := loadByteLevel(t)
	for _, g := range readGolden(t, "bytelevel_golden.json") {
		if got := legacy.Encode(g.Text, false); !slices.Equal(got, g.IDs) {
			t.Errorf("legacy merges: Encode(%q) = %v, want %v", g.Text, got, g.IDs)
		}
	}
	if legacy.merges.n != tok.merges.n {
		t.Errorf("legacy merges %d, pair merges %d", legacy.merges.n, tok.merges.n)
	}
}

func TestUnsupported(t *testing.T) {
	for _, c := range []struct{ json, name string }{
		{`{"model":{"type":"WordPiece","vocab":{"a":0}}}`, "WordPiece"},
		{`{"model":{"type":"Unigram","vocab":[["a",0.0]]}}`, "Unigram"},
		{`{"normalizer":{"type":"BertNormalizer"},"model":{"type":"BPE","vocab":{"a":0},"merges":[]}}`, "BertNormalizer"},
	} {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "tokenizer.json"), []byte(c.json), 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := Load(dir)
		if !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), c.name) || !strings.Contains(err.Error(), "tokenizer.json") {
			t.Errorf("Load(%s) error = %v, want ErrUnsupported naming the file and %s", c.name, err, c.name)
		}
	}
	if _, err := Parse([]byte(`{"model":{"type":"BPE","vocab":{"a":0},"merges":["a b"]}}`)); !errors.Is(err, ErrFormat) {
		t.Errorf("merge of unknown tokens: error = %v, want ErrFormat", err)
	}
}

// withoutMarkSplit returns a copy of tok's behaviour with the space-mark
// shortcut removed: the whole segment merges as one word, as the reference does.
func withoutMarkSplit(t testing.TB) (fast, slow *Tokenizer) {
	fast, slow = loadStories(t), loadStories(t)
	var kept []splitStep
	for _, st := range slow.splits {
		if st.kind != splitMark {
			kept = append(kept, st)
		}
	}
	if len(kept) == len(slow.splits) {
		t.Fatal("stories260k should qualify for the space-mark split shortcut")
	}
	slow.splits = kept
	return fast, slow
}

func TestMarkSplitExact(t *testing.T) {
	fast, slow := withoutMarkSplit(t)
	rng := rand.New(rand.NewPCG(3, 4))
	alphabet := []string{" ", "  ", "a", "the", "▁", "e", "Lily", "\n", "é", "中", ".", "s", "t", "he", "in"}
	for range 3000 {
		var sb strings.Builder
		for range rng.IntN(12) {
			sb.WriteString(alphabet[rng.IntN(len(alphabet))])
		}
		s := sb.String()
		if a, b := fast.Encode(s, true), slow.Encode(s, true); !slices.Equal(a, b) {
			t.Fatalf("Encode(%q): split %v, whole %v", s, a, b)
		}
	}
}

func TestConcurrentEncode(t *testing.T) {
	tok := loadByteLevel(t)
	gold := readGolden(t, "bytelevel_golden.json")
	errs := make(chan string, 4)
	for range 4 {
		go func() {
			for range 50 {
				for _, g := range gold {
					if got := tok.Encode(g.Text, false); !slices.Equal(got, g.IDs) {
						errs <- g.Text
						return
					}
				}
			}
			errs <- ""
		}()
	}
	for range 4 {
		if s := <-errs; s != "" {
			t.Errorf("concurrent Encode(%q) differed", s)
		}
	}
}
