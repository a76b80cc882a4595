package tokenizer

import (
	"math/rand/v2"
	"strings"
	"testing"
	"unicode/utf8"
)

// streamAll feeds ids one by one and checks every delta is valid UTF-8.
func streamAll(t testing.TB, tok *Tokenizer, ids []int32, skip bool) string {
	t.Helper()
	st := tok.NewStream(skip)
	var sb strings.Builder
	for _, id := range ids {
		d := st.Add(id)
		if !utf8.ValidString(d) {
			t.Fatalf("Add(%d) returned invalid UTF-8 %q (ids %v)", id, d, ids)
		}
		sb.WriteString(d)
	}
	sb.WriteString(st.Flush())
	return sb.String()
}

func TestStreamRandom(t *testing.T) {
	toks := map[string]*Tokenizer{"stories260k": loadStories(t), "bytelevel": loadByteLevel(t)}
	for name, tok := range toks {
		rng := rand.New(rand.NewPCG(1, 2))
		for iter := range 2000 {
			ids := make([]int32, rng.IntN(20))
			for i := range ids {
				// Favour byte pieces and single bytes so multibyte sequences
				// are often split or broken.
				if rng.IntN(2) == 0 {
					ids[i] = int32(rng.IntN(260))
				} else {
					ids[i] = int32(rng.IntN(tok.VocabSize()))
				}
			}
			skip := iter%2 == 0
			if got, want := streamAll(t, tok, ids, skip), tok.Decode(ids, skip); got != want {
				t.Fatalf("%s: stream %q != Decode %q for %v", name, got, want, ids)
			}
		}
	}
}

func TestStreamHoldsPartialUTF8(t *testing.T) {
	tok := loadByteLevel(t)
	ids := tok.Encode("😀", false) // four single-byte tokens
	if len(ids) != 4 {
		t.Fatalf("want 4 byte tokens for an emoji, got %v", ids)
	}
	st := tok.NewStream(false)
	for _, id := range ids[:3] {
		if d := st.Add(id); d != "" {
			t.Fatalf("partial emoji emitted %q", d)
		}
	}
	if d := st.Add(ids[3]); d != "😀" {
		t.Fatalf("complete emoji = %q", d)
	}
	st.Add(ids[0])
	if d := st.Flush(); d != "\uFFFD" {
		t.Fatalf("Flush of a cut sequence = %q, want one U+FFFD", d)
	}
}

func TestStreamZeroAlloc(t *testing.T) {
	tok := loadStories(t)
	ids := tok.Encode("Once upon a time there was a dog", true)
	st := tok.NewStream(true)
	allocs := testing.AllocsPerRun(100, func() {
		st.Reset()
		for _, id := range ids {
			st.Add(id)
		}
	})
	if allocs != 0 {
		t.Errorf("Stream.Add allocated %.1f times per sequence, want 0", allocs)
	}
}
