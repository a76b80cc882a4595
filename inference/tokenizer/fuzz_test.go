package tokenizer

import (
	"encoding/binary"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzEncode: byte-level BPE must round-trip any valid UTF-8 exactly;
// SentencePiece must not panic, must produce ids in range and must
// round-trip text that holds no added token.
func FuzzEncode(f *testing.F) {
	bl := loadByteLevel(f)
	sp, whole := withoutMarkSplit(f)
	for _, s := range []string{"Hello world", " it's  12345\n\n", "中文 😀", "<|im_start|>x<|im_end|>", "a\r\n\tb", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ids := sp.Encode(s, true)
		for _, id := range ids {
			if id < 0 || int(id) >= sp.VocabSize() {
				t.Fatalf("SentencePiece id %d out of range", id)
			}
		}
		if w := whole.Encode(s, true); !slices.Equal(ids, w) {
			t.Fatalf("space-mark split changed the encoding of %q: %v, want %v", s, ids, w)
		}
		if !utf8.ValidString(s) {
			bl.Encode(s, true)
			return
		}
		if got := bl.Decode(bl.Encode(s, false), false); got != s {
			t.Fatalf("byte-level round trip: %q -> %q", s, got)
		}
		if !strings.Contains(s, "<") {
			if got := sp.Decode(sp.Encode(s, true), true); got != s {
				t.Fatalf("SentencePiece round trip: %q -> %q", s, got)
			}
		}
	})
}

// FuzzStream: the concatenated deltas equal Decode for any id sequence.
func FuzzStream(f *testing.F) {
	toks := []*Tokenizer{loadStories(f), loadByteLevel(f)}
	f.Add([]byte{0, 231, 0, 187, 1, 5, 0, 35}, true)
	f.Add([]byte{0, 243, 0, 162, 0, 155}, false)
	f.Fuzz(func(t *testing.T, b []byte, skip bool) {
		for _, tok := range toks {
			ids := make([]int32, 0, len(b)/2)
			for i := 0; i+1 < len(b); i += 2 {
				ids = append(ids, int32(binary.BigEndian.Uint16(b[i:]))%int32(tok.VocabSize()+2)-1)
			}
			if got, want := streamAll(t, tok, ids, skip), tok.Decode(ids, skip); got != want {
				t.Fatalf("stream %q != Decode %q for %v", got, want, ids)
			}
		}
	})
}

// FuzzSplit: the hand-written scanners agree with regexp2 on the patterns.
func FuzzSplit(f *testing.F) {
	for _, s := range []string{"It's 1234 x  \n\n y", "'S 'll 'LL", "\u00a0 \u3000x", "a\r\n\r\nb", "  ", "!!\n"} {
		f.Add(s)
	}
	var ss []*splitter
	for _, p := range []string{gpt2Pattern, llama3Pattern, qwen2Pattern} {
		s, err := newSplitter(p)
		if err != nil {
			f.Fatal(err)
		}
		ss = append(ss, s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, sp := range ss {
			fast := sp.appendPieces(nil, s, 0, true)
			slow := (&splitter{kind: patRegex, re: sp.re}).appendPieces(nil, s, 0, true)
			if len(fast) != len(slow) {
				t.Fatalf("pattern %d on %q: scanner %v, regexp2 %v", sp.kind, s, fast, slow)
			}
			for i := range fast {
				if fast[i] != slow[i] {
					t.Fatalf("pattern %d on %q: scanner %v, regexp2 %v", sp.kind, s, fast, slow)
				}
			}
		}
	})
}
