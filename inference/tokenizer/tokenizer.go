package tokenizer

import (
	"bytes"
	"errors"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

var (
	// ErrUnsupported reports a tokenizer.json component this package does not
	// implement (a WordPiece or Unigram model, an unknown normalizer...).
	ErrUnsupported = errors.New("tokenizer: unsupported tokenizer.json component")
	// ErrFormat reports a malformed tokenizer file.
	ErrFormat = errors.New("tokenizer: malformed tokenizer file")
)

// Tokenizer encodes and decodes text. It is safe for concurrent use.
type Tokenizer struct {
	pieces   []string // id -> token as written in the vocab
	vocab    map[string]int32
	nModel   int      // ids below this come from model.vocab
	tokBytes [][]byte // id -> bytes it decodes to
	tokStr   []string // id -> string(tokBytes) when that is complete UTF-8
	tokValid []bool
	byteVal  []int16 // id -> byte of a <0xNN> fallback piece, or -1
	special  []bool

	merges       *mergeTable
	asciiID      [128]int32 // id of each ASCII character's token, -1 where absent
	unk          int32
	byteFallback bool
	fuseUnk      bool
	ignoreMerges bool
	fallbackID   [256]int32 // <0xNN> ids, -1 where absent
	byteID       [256]int32 // byte-level: id of each byte's single-rune token

	added       []addedToken
	addedByByte [256][]int32 // first byte -> indexes into added, longest first

	norm        []normStep
	metaspace   bool
	metaRepl    string
	metaPrepend string // "always", "first", "never"
	byteLevel   bool
	prefixSpace bool
	splits      []splitStep

	decSpace        string // decoder replaces this with " "
	decByteFallback bool
	decStrip        int // leading spaces the decoder strips

	prefix, suffix []int32 // added around the text when addSpecial
	bos            int32
	eos            []int32
	specials       map[string]string
	chatTemplate   string

	pool  sync.Pool // *work
	cache wordCache
}

type merge struct{ rank, id int32 }

func pairKey(a, b int32) uint64 { return uint64(uint32(a))<<32 | uint64(uint32(b)) }

type addedToken struct {
	id                                  int32
	content                             string
	lstrip, rstrip, singleWord, special bool
}

type normKind uint8

const (
	normPrepend normKind = iota
	normReplace
	normNFC
	normNFKC
	normLower
)

type normStep struct {
	kind normKind
	a, b string
}

type splitKind uint8

const (
	splitRegex        splitKind = iota // matches and gaps become pieces
	splitRegexRemoved                  // matches are dropped
	splitMeta                          // a piece starts at each metaspace
	splitDigits                        // digit runs (or single digits) are isolated
	splitMark                          // a piece starts at each space mark after a non-mark
)

type splitStep struct {
	kind       splitKind
	re         *splitter
	individual bool
	mark       string // the space mark for splitMeta and splitMark
}

type span struct{ lo, hi int }

// work is per-call scratch, pooled so Encode allocates only its result.
type work struct {
	a, b          []byte
	spans, spans2 []span
	word          []byte
	syms          []symbol
	heap          []cand
}

// VocabSize is the number of ids, added tokens included.
func (t *Tokenizer) VocabSize() int { return len(t.pieces) }

// Token returns the vocab spelling of id ("▁the", "Ġthe", "<0x0A>"), or ""
// for an id out of range.
func (t *Tokenizer) Token(id int32) string {
	if id < 0 || int(id) >= len(t.pieces) {
		return ""
	}
	return t.pieces[id]
}

// TokenBytes returns the bytes id decodes to on its own (before the leading
// space strip). The slice is shared: do not modify it.
func (t *Tokenizer) TokenBytes(id int32) []byte {
	if id < 0 || int(id) >= len(t.tokBytes) {
		return nil
	}
	return t.tokBytes[id]
}

// BOS returns the beginning-of-sequence id, or -1 when there is none.
func (t *Tokenizer) BOS() int32 { return t.bos }

// EOS returns every id that ends generation: generation_config.json's
// eos_token_id (an int or a list) plus tokenizer_config.json's eos_token.
func (t *Tokenizer) EOS() []int32 { return append([]int32(nil), t.eos...) }

// IsSpecial reports whether id is an added token marked special.
func (t *Tokenizer) IsSpecial(id int32) bool {
	return id >= 0 && int(id) < len(t.special) && t.special[id]
}

// ChatTemplate returns the Jinja chat template, or "" when the model has none.
func (t *Tokenizer) ChatTemplate() string { return t.chatTemplate }

// SpecialTokens returns the named special tokens (bos_token, eos_token,
// unk_token, pad_token) that are set, for chat-template rendering.
func (t *Tokenizer) SpecialTokens() map[string]string {
	m := make(map[string]string, len(t.specials))
	for k, v := range t.specials {
		m[k] = v
	}
	return m
}

// ID returns the id of a token spelled as in the vocab.
func (t *Tokenizer) ID(token string) (int32, bool) {
	id, ok := t.vocab[token]
	return id, ok
}

// Encode turns text into ids. Added tokens written in the text ("<|im_end|>")
// become their ids; addSpecial adds BOS/EOS as the model's config asks.
func (t *Tokenizer) Encode(text string, addSpecial bool) []int32 {
	out := make([]int32, 0, len(text)/3+len(t.prefix)+len(t.suffix)+1)
	if addSpecial {
		out = append(out, t.prefix...)
	}
	w, _ := t.pool.Get().(*work)
	if w == nil {
		w = &work{}
	}
	start := 0 // start of the pending plain-text segment
	for i := 0; i < len(text); {
		cands := t.addedByByte[text[i]]
		matched := false
		for _, ci := range cands {
			a := &t.added[ci]
			if !strings.HasPrefix(text[i:], a.content) {
				continue
			}
			end := i + len(a.content)
			if a.singleWord && !(isWordBoundary(text, i) && isWordBoundary(text, end)) {
				continue
			}
			lo := i
			if a.lstrip {
				for lo > start {
					r, n := utf8.DecodeLastRuneInString(text[start:lo])
					if !unicode.IsSpace(r) {
						break
					}
					lo -= n
				}
			}
			if a.rstrip {
				for end < len(text) {
					r, n := utf8.DecodeRuneInString(text[end:])
					if !unicode.IsSpace(r) {
						break
					}
					end += n
				}
			}
			out = t.encodeSegment(w, out, text[start:lo], start == 0)
			out = append(out, a.id)
			i, start, matched = end, end, true
			break
		}
		if !matched {
			i++
		}
	}
	out = t.encodeSegment(w, out, text[start:], start == 0)
	t.pool.Put(w)
	if addSpecial {
		out = append(out, t.suffix...)
	}
	return out
}

// isWordBoundary reports whether position i in s is not inside a word.
func isWordBoundary(s string, i int) bool {
	if i == 0 || i == len(s) {
		return true
	}
	a, _ := utf8.DecodeLastRuneInString(s[:i])
	b, _ := utf8.DecodeRuneInString(s[i:])
	return !isWordRune(a) || !isWordRune(b)
}

func isWordRune(r rune) bool { return r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r) }

// encodeSegment encodes text that holds no added token. atStart says the
// segment begins the input (Metaspace's prepend_scheme "first").
func (t *Tokenizer) encodeSegment(w *work, out []int32, seg string, atStart bool) []int32 {
	if seg == "" {
		return out
	}
	s := t.normalize(w, seg, atStart)
	if s == "" {
		return out
	}
	w.spans = append(w.spans[:0], span{0, len(s)})
	for _, st := range t.splits {
		w.spans2 = st.apply(w.spans2[:0], w.spans, s)
		w.spans, w.spans2 = w.spans2, w.spans
	}
	for _, sp := range w.spans {
		if sp.hi > sp.lo {
			out = t.bpeWord(w, out, s[sp.lo:sp.hi])
		}
	}
	return out
}

// normalize runs the normalizers, Metaspace's replace/prepend and
// ByteLevel's prefix space. The result may alias w's buffers.
func (t *Tokenizer) normalize(w *work, seg string, atStart bool) string {
	if len(t.norm) == 0 && !t.metaspace && !t.prefixSpace {
		return seg
	}
	cur := append(w.a[:0], seg...)
	next := w.b[:0]
	for _, n := range t.norm {
		next = next[:0]
		switch n.kind {
		case normPrepend:
			if len(cur) > 0 {
				next = append(append(next, n.a...), cur...)
			} else {
				next = append(next, cur...)
			}
		case normReplace:
			next = appendReplace(next, cur, n.a, n.b)
		case normNFC:
			next = norm.NFC.Append(next, cur...)
		case normNFKC:
			next = norm.NFKC.Append(next, cur...)
		case normLower:
			next = append(next, bytes.ToLower(cur)...)
		}
		cur, next = next, cur
	}
	if t.metaspace {
		next = appendReplace(next[:0], cur, " ", t.metaRepl)
		cur, next = next, cur
		if (t.metaPrepend == "always" || t.metaPrepend == "first" && atStart) && !bytes.HasPrefix(cur, []byte(t.metaRepl)) {
			next = append(append(next[:0], t.metaRepl...), cur...)
			cur, next = next, cur
		}
	}
	if t.prefixSpace && (len(cur) == 0 || cur[0] != ' ') {
		next = append(append(next[:0], ' '), cur...)
		cur, next = next, cur
	}
	w.a, w.b = cur, next
	return unsafeString(cur)
}

func appendReplace(dst, src []byte, old, repl string) []byte {
	if old == "" {
		return append(dst, src...)
	}
	for {
		i := bytes.Index(src, []byte(old))
		if i < 0 {
			return append(dst, src...)
		}
		dst = append(append(dst, src[:i]...), repl...)
		src = src[i+len(old):]
	}
}

// apply splits every span of s by this step, appending the pieces to dst.
func (st *splitStep) apply(dst, spans []span, s string) []span {
	repl := st.mark
	for _, sp := range spans {
		switch st.kind {
		case splitRegex, splitRegexRemoved:
			dst = st.re.appendPieces(dst, s[sp.lo:sp.hi], sp.lo, st.kind == splitRegex)
		case splitMeta:
			lo := sp.lo
			for i := sp.lo + 1; i < sp.hi; i++ {
				if strings.HasPrefix(s[i:sp.hi], repl) {
					dst = append(dst, span{lo, i})
					lo = i
				}
			}
			dst = append(dst, span{lo, sp.hi})
		case splitMark:
			lo := sp.lo
			for i := sp.lo + 1; i < sp.hi; i++ {
				if strings.HasPrefix(s[i:sp.hi], repl) && !strings.HasSuffix(s[lo:i], repl) {
					dst = append(dst, span{lo, i})
					lo = i
				}
			}
			dst = append(dst, span{lo, sp.hi})
		case splitDigits:
			lo := sp.lo
			for i := sp.lo; i < sp.hi; {
				r, n := utf8.DecodeRuneInString(s[i:sp.hi])
				if !unicode.IsNumber(r) {
					i += n
					continue
				}
				j := i + n
				if !st.individual {
					for j < sp.hi {
						r2, n2 := utf8.DecodeRuneInString(s[j:sp.hi])
						if !unicode.IsNumber(r2) {
							break
						}
						j += n2
					}
				}
				if i > lo {
					dst = append(dst, span{lo, i})
				}
				dst = append(dst, span{i, j})
				lo, i = j, j
			}
			if lo < sp.hi {
				dst = append(dst, span{lo, sp.hi})
			}
		}
	}
	return dst
}
