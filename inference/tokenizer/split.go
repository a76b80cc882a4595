package tokenizer

import (
	"fmt"
	"unicode"
	"unicode/utf8"

	"github.com/dlclark/regexp2"
)

// The split patterns real tokenizers ship. Go's regexp lacks the lookahead
// in `\s+(?!\S)`, so these run on a hand-written scanner (scanMatch) and
// any other pattern on regexp2, a backtracking engine with lookaround.
const (
	gpt2Pattern   = `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`
	llama3Pattern = `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
	qwen2Pattern  = `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
)

type patKind uint8

const (
	patRegex patKind = iota
	patGPT2
	patLlama3
	patQwen2
)

// splitter finds the matches of one split pattern.
type splitter struct {
	kind patKind
	re   *regexp2.Regexp
}

func newSplitter(pattern string) (*splitter, error) {
	s := &splitter{}
	switch pattern {
	case gpt2Pattern:
		s.kind = patGPT2
	case llama3Pattern:
		s.kind = patLlama3
	case qwen2Pattern:
		s.kind = patQwen2
	}
	// The regex is compiled even for known patterns so tests can compare.
	re, err := regexp2.Compile(pattern, regexp2.Unicode)
	if err != nil {
		return nil, fmt.Errorf("%w: split pattern %q: %v", ErrUnsupported, pattern, err)
	}
	s.re = re
	return s, nil
}

// appendPieces splits s (which starts at offset base of the whole text) into
// the text between matches and, when keep is set, the matches themselves.
func (sp *splitter) appendPieces(dst []span, s string, base int, keep bool) []span {
	pos := 0
	emit := func(lo, hi int) {
		if lo > pos {
			dst = append(dst, span{base + pos, base + lo})
		}
		if keep {
			dst = append(dst, span{base + lo, base + hi})
		}
		pos = hi
	}
	if sp.kind != patRegex {
		for i := 0; i < len(s); {
			n := scanMatch(s, i, sp.kind)
			emit(i, i+n)
			i += n
		}
	} else {
		sp.regexMatches(s, emit)
	}
	if pos < len(s) {
		dst = append(dst, span{base + pos, base + len(s)})
	}
	return dst
}

// regexMatches calls emit with the byte range of every regexp2 match.
// regexp2 works on runes, so rune indexes are mapped back to bytes.
func (sp *splitter) regexMatches(s string, emit func(lo, hi int)) {
	offs := make([]int, 0, len(s)+1)
	for i := range s {
		offs = append(offs, i)
	}
	offs = append(offs, len(s))
	m, err := sp.re.FindStringMatch(s)
	for err == nil && m != nil {
		if m.Length > 0 {
			emit(offs[m.Index], offs[m.Index+m.Length])
		}
		m, err = sp.re.FindNextMatch(m)
	}
}

// class of a rune for the split patterns.
const (
	clOther = iota
	clLetter
	clNumber
	clSpace
)

var asciiClass [utf8.RuneSelf]uint8

func init() {
	for r := rune(0); r < utf8.RuneSelf; r++ {
		asciiClass[r] = classOfSlow(r)
	}
}

func classOfSlow(r rune) uint8 {
	switch {
	case unicode.IsLetter(r):
		return clLetter
	case unicode.IsNumber(r):
		return clNumber
	case unicode.IsSpace(r):
		return clSpace
	}
	return clOther
}

// runeAt decodes the rune at i and its class; invalid bytes are one-byte
// runes of class other, as U+FFFD would be.
func runeAt(s string, i int) (r rune, n int, cl uint8) {
	c := s[i]
	if c < utf8.RuneSelf {
		return rune(c), 1, asciiClass[c]
	}
	r, n = utf8.DecodeRuneInString(s[i:])
	return r, n, classOfSlow(r)
}

// scanMatch returns the length of the match of a known pattern at i (the
// patterns match every character, so a match always starts at i). It follows
// the alternatives in order, as a backtracking engine would.
func scanMatch(s string, i int, p patKind) int {
	r, n, cl := runeAt(s, i)
	// Contractions.
	if r == '\'' && i+1 < len(s) {
		fold := p != patGPT2
		c1 := s[i+1]
		if fold && c1 >= 'A' && c1 <= 'Z' {
			c1 += 'a' - 'A'
		}
		switch c1 {
		case 's', 't', 'm', 'd':
			return 2
		case 'r', 'v', 'l':
			if i+2 < len(s) {
				c2 := s[i+2]
				if fold && c2 >= 'A' && c2 <= 'Z' {
					c2 += 'a' - 'A'
				}
				if c1 == 'r' && c2 == 'e' || c1 == 'v' && c2 == 'e' || c1 == 'l' && c2 == 'l' {
					return 3
				}
			}
		}
	}
	if p == patGPT2 {
		// ' ?\p{L}+', ' ?\p{N}+', ' ?[^\s\p{L}\p{N}]+'
		j := i
		want := cl
		if r == ' ' && i+1 < len(s) {
			_, _, c2 := runeAt(s, i+1)
			if c2 != clSpace {
				j, want = i+1, c2
			}
		}
		if want != clSpace {
			return run(s, j, want) - i
		}
	} else {
		// '[^\r\n\p{L}\p{N}]?\p{L}+'
		if cl == clLetter {
			return run(s, i, clLetter) - i
		}
		if cl != clNumber && r != '\r' && r != '\n' && i+n < len(s) {
			if _, _, c2 := runeAt(s, i+n); c2 == clLetter {
				return run(s, i+n, clLetter) - i
			}
		}
		// '\p{N}{1,3}' or '\p{N}'
		if cl == clNumber {
			limit := 3
			if p == patQwen2 {
				limit = 1
			}
			j := i
			for k := 0; k < limit && j < len(s); k++ {
				_, n2, c2 := runeAt(s, j)
				if c2 != clNumber {
					break
				}
				j += n2
			}
			return j - i
		}
		// ' ?[^\s\p{L}\p{N}]+[\r\n]*'
		j := i
		if r == ' ' && i+1 < len(s) {
			if _, _, c2 := runeAt(s, i+1); c2 == clOther {
				j = i + 1
			}
		}
		if _, _, c2 := runeAt(s, j); c2 == clOther {
			j = run(s, j, clOther)
			for j < len(s) && (s[j] == '\r' || s[j] == '\n') {
				j++
			}
			return j - i
		}
		// '\s*[\r\n]+': ends after the last newline of the whitespace run.
		end := run(s, i, clSpace)
		for k := end - 1; k >= i; k-- {
			if s[k] == '\r' || s[k] == '\n' {
				return k + 1 - i
			}
		}
	}
	// '\s+(?!\S)' then '\s+'
	end := run(s, i, clSpace)
	if end < len(s) {
		_, n2 := utf8.DecodeLastRuneInString(s[:end])
		if end-n2 > i {
			return end - n2 - i
		}
	}
	return end - i
}

// run returns the end of the run of class cl starting at i.
func run(s string, i int, cl uint8) int {
	for i < len(s) {
		_, n, c := runeAt(s, i)
		if c != cl {
			break
		}
		i += n
	}
	return i
}
