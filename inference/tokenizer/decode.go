package tokenizer

import (
	"strings"
	"unicode/utf8"
)

const replacement = "\uFFFD"

// Decode turns ids back into text as the tokenizer.json decoder does:
// SentencePiece pieces get their spaces back, runs of <0xNN> byte pieces
// become the UTF-8 they spell (or one U+FFFD per byte when they do not
// spell valid UTF-8), byte-level tokens map back through the GPT-2 table
// with invalid UTF-8 replaced. Ids out of range are skipped.
func (t *Tokenizer) Decode(ids []int32, skipSpecial bool) string {
	var buf []byte
	group := 0 // start of the pending run of byte pieces in buf
	inGroup := false
	for _, id := range ids {
		if id < 0 || int(id) >= len(t.tokBytes) || skipSpecial && t.special[id] {
			continue
		}
		if t.byteVal[id] >= 0 {
			if !inGroup {
				group, inGroup = len(buf), true
			}
			buf = append(buf, byte(t.byteVal[id]))
			continue
		}
		if inGroup {
			buf = resolveGroup(buf, group)
			inGroup = false
		}
		buf = append(buf, t.tokBytes[id]...)
	}
	if inGroup {
		buf = resolveGroup(buf, group)
	}
	if t.byteLevel {
		buf, _ = appendLossy(nil, buf, true)
	}
	s := string(buf)
	for i := 0; i < t.decStrip && strings.HasPrefix(s, " "); i++ {
		s = s[1:]
	}
	return s
}

// resolveGroup replaces buf[from:], a run of byte-fallback bytes, with one
// U+FFFD per byte unless the run is valid UTF-8.
func resolveGroup(buf []byte, from int) []byte {
	if utf8.Valid(buf[from:]) {
		return buf
	}
	n := len(buf) - from
	buf = buf[:from]
	for range n {
		buf = append(buf, replacement...)
	}
	return buf
}

// Stream turns ids into text one at a time. The concatenation of what Add
// and Flush return equals Decode of all the ids. A Stream is not safe for
// concurrent use; make one per sequence.
type Stream struct {
	t        *Tokenizer
	skip     bool
	pending  []byte // byte-level: an incomplete UTF-8 tail; otherwise a run of byte pieces
	out      []byte
	stripped int // leading spaces still to strip
}

// NewStream starts an incremental decode.
func (t *Tokenizer) NewStream(skipSpecial bool) *Stream {
	return &Stream{t: t, skip: skipSpecial, stripped: t.decStrip}
}

// Reset empties the stream for reuse on a new sequence.
func (s *Stream) Reset() {
	s.pending = s.pending[:0]
	s.stripped = s.t.decStrip
}

// Add decodes one more id and returns the text that is now final: complete
// UTF-8 that no later id can change. A token whose bytes stand alone is
// returned without allocating.
func (s *Stream) Add(id int32) string {
	t := s.t
	if id < 0 || int(id) >= len(t.tokBytes) || s.skip && t.special[id] {
		return ""
	}
	if t.byteVal[id] >= 0 {
		// A byte-piece run resolves only when it ends: one bad byte turns
		// the whole run into replacement characters.
		s.pending = append(s.pending, byte(t.byteVal[id]))
		return ""
	}
	if len(s.pending) == 0 && t.tokValid[id] {
		return s.strip(t.tokStr[id])
	}
	out := s.out[:0]
	if t.byteLevel {
		s.pending = append(s.pending, t.tokBytes[id]...)
		var n int
		out, n = appendLossy(out, s.pending, false)
		s.pending = append(s.pending[:0], s.pending[n:]...)
	} else {
		out = append(out, s.pending...)
		out = resolveGroup(out, 0)
		out = append(out, t.tokBytes[id]...)
		s.pending = s.pending[:0]
	}
	s.out = out
	return s.strip(string(out))
}

// Flush returns what is still held back (an unfinished UTF-8 sequence comes
// out as U+FFFD, as Decode would render it).
func (s *Stream) Flush() string {
	if len(s.pending) == 0 {
		return ""
	}
	var out []byte
	if s.t.byteLevel {
		out, _ = appendLossy(s.out[:0], s.pending, true)
	} else {
		out = resolveGroup(append(s.out[:0], s.pending...), 0)
	}
	s.pending = s.pending[:0]
	s.out = out
	return s.strip(string(out))
}

// strip applies the decoder's leading-space strip to the start of the output.
func (s *Stream) strip(text string) string {
	for s.stripped > 0 && text != "" {
		if text[0] != ' ' {
			s.stripped = 0
			break
		}
		text = text[1:]
		s.stripped--
	}
	return text
}
