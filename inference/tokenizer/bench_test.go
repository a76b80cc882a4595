package tokenizer

import (
	"strings"
	"testing"
)

// benchText is about 4 KB of prose with numbers, punctuation and newlines.
var benchText = strings.Repeat("Once upon a time, there was a little girl named Lily. She loved to play outside in the park with her 3 dogs and 12 cats.\nOne day, she saw a big, red ball! \"Can I play?\" she asked. It's 2024; they're happy.\n\n", 20)

func benchEncode(b *testing.B, tok *Tokenizer) {
	b.SetBytes(int64(len(benchText)))
	b.ReportAllocs()
	for b.Loop() {
		tok.Encode(benchText, true)
	}
}

func BenchmarkEncodeSentencePiece(b *testing.B) { benchEncode(b, loadStories(b)) }
func BenchmarkEncodeByteLevel(b *testing.B)     { benchEncode(b, loadByteLevel(b)) }

func BenchmarkStream(b *testing.B) {
	tok := loadStories(b)
	ids := tok.Encode(benchText, true)
	st := tok.NewStream(true)
	b.ReportAllocs()
	for b.Loop() {
		st.Reset()
		for _, id := range ids {
			st.Add(id)
		}
	}
}

// The Cold variants empty the word cache every time, as for text whose
// words have not been seen before.
func benchEncodeCold(b *testing.B, tok *Tokenizer) {
	b.SetBytes(int64(len(benchText)))
	b.ReportAllocs()
	for b.Loop() {
		tok.cache.m = nil
		tok.Encode(benchText, true)
	}
}

func BenchmarkEncodeSentencePieceCold(b *testing.B) { benchEncodeCold(b, loadStories(b)) }
func BenchmarkEncodeByteLevelCold(b *testing.B)     { benchEncodeCold(b, loadByteLevel(b)) }
