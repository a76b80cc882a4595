package tokenizer

import (
	"strings"
	"sync"
	"unicode/utf8"
	"unsafe"
)

// symbol is one token of a word being merged, in a doubly linked list over
// work.syms so merging never moves memory.
type symbol struct {
	id         int32
	prev, next int32 // -1 at the ends
	dead       bool
}

// cand is a possible merge of syms[pos] with its right neighbour, valid
// while both still hold left and right.
type cand struct {
	rank, pos   int32
	left, right int32
	id          int32 // the merged token
}

func candLess(a, b cand) bool { return a.rank < b.rank || a.rank == b.rank && a.pos < b.pos }

func unsafeString(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }

// Words up to maxCachedWord bytes are cached, at most maxCacheEntries of
// them: text repeats its words, and a hit skips the merge loop.
const (
	maxCachedWord   = 48
	maxCacheEntries = 1 << 16
)

type wordCache struct {
	mu sync.RWMutex
	m  map[string][]int32
}

// bpeWord encodes one pre-token and appends its ids.
func (t *Tokenizer) bpeWord(w *work, out []int32, word string) []int32 {
	if len(word) > maxCachedWord {
		return t.bpeMerge(w, out, word)
	}
	c := &t.cache
	c.mu.RLock()
	ids, ok := c.m[word]
	c.mu.RUnlock()
	if ok {
		return append(out, ids...)
	}
	start := len(out)
	out = t.bpeMerge(w, out, word)
	ids = append([]int32(nil), out[start:]...)
	c.mu.Lock()
	if c.m == nil || len(c.m) >= maxCacheEntries {
		c.m = make(map[string][]int32)
	}
	// word may alias scratch memory, so the key is a copy.
	c.m[strings.Clone(word)] = ids
	c.mu.Unlock()
	return out
}

// bpeMerge encodes one pre-token by merging its symbols in rank order.
func (t *Tokenizer) bpeMerge(w *work, out []int32, word string) []int32 {
	syms := w.syms[:0]
	if t.byteLevel {
		buf := w.word[:0]
		for i := 0; i < len(word); i++ {
			buf = utf8.AppendRune(buf, byteToRune[word[i]])
		}
		w.word = buf
		if t.ignoreMerges {
			if id, ok := t.vocab[unsafeString(buf)]; ok {
				return append(out, id)
			}
		}
		for i := 0; i < len(word); i++ {
			if id := t.byteID[word[i]]; id >= 0 {
				syms = append(syms, symbol{id: id})
			}
		}
	} else {
		if t.ignoreMerges {
			if id, ok := t.vocab[word]; ok {
				return append(out, id)
			}
		}
		pendingUnk := false
		for i := 0; i < len(word); {
			if c := word[i]; c < utf8.RuneSelf && t.asciiID[c] >= 0 {
				pendingUnk = false
				syms = append(syms, symbol{id: t.asciiID[c]})
				i++
				continue
			}
			_, n := utf8.DecodeRuneInString(word[i:])
			ch := word[i : i+n]
			i += n
			if id, ok := t.vocab[ch]; ok {
				pendingUnk = false
				syms = append(syms, symbol{id: id})
				continue
			}
			if t.byteFallback && t.hasFallback(ch) {
				pendingUnk = false
				for j := 0; j < len(ch); j++ {
					syms = append(syms, symbol{id: t.fallbackID[ch[j]]})
				}
				continue
			}
			if t.unk >= 0 {
				if !(pendingUnk && t.fuseUnk) {
					syms = append(syms, symbol{id: t.unk})
				}
				pendingUnk = true
			}
		}
	}
	if len(syms) == 0 {
		w.syms = syms
		return out
	}
	for i := range syms {
		syms[i].prev, syms[i].next = int32(i-1), int32(i+1)
	}
	syms[len(syms)-1].next = -1
	h := w.heap[:0]
	for i := 0; i+1 < len(syms); i++ {
		if m, ok := t.merges.get(pairKey(syms[i].id, syms[i+1].id)); ok {
			h = heapPush(h, cand{rank: m.rank, pos: int32(i), left: syms[i].id, right: syms[i+1].id, id: m.id})
		}
	}
	for len(h) > 0 {
		var c cand
		c, h = heapPop(h)
		s := &syms[c.pos]
		if s.dead || s.id != c.left || s.next < 0 || syms[s.next].id != c.right {
			continue
		}
		r := &syms[s.next]
		r.dead = true
		s.id = c.id
		s.next = r.next
		if s.next >= 0 {
			syms[s.next].prev = c.pos
		}
		if s.prev >= 0 {
			p := &syms[s.prev]
			if m2, ok := t.merges.get(pairKey(p.id, s.id)); ok {
				h = heapPush(h, cand{rank: m2.rank, pos: s.prev, left: p.id, right: s.id, id: m2.id})
			}
		}
		if s.next >= 0 {
			if m2, ok := t.merges.get(pairKey(s.id, syms[s.next].id)); ok {
				h = heapPush(h, cand{rank: m2.rank, pos: c.pos, left: s.id, right: syms[s.next].id, id: m2.id})
			}
		}
	}
	for i := int32(0); i >= 0; i = syms[i].next {
		out = append(out, syms[i].id)
	}
	w.syms, w.heap = syms, h
	return out
}

// hasFallback reports whether every byte of ch has a <0xNN> piece.
func (t *Tokenizer) hasFallback(ch string) bool {
	for j := 0; j < len(ch); j++ {
		if t.fallbackID[ch[j]] < 0 {
			return false
		}
	}
	return true
}

// The candidate queue is a 4-ary min-heap: shallower than a binary heap,
// and its four children share a cache line or two.
func heapPush(h []cand, c cand) []cand {
	h = append(h, c)
	i := len(h) - 1
	for i > 0 {
		p := (i - 1) / 4
		if !candLess(c, h[p]) {
			break
		}
		h[i] = h[p]
		i = p
	}
	h[i] = c
	return h
}

func heapPop(h []cand) (cand, []cand) {
	top := h[0]
	n := len(h) - 1
	last := h[n]
	h = h[:n]
	if n == 0 {
		return top, h
	}
	i := 0
	for {
		first := 4*i + 1
		if first >= n {
			break
		}
		m := first
		end := min(first+4, n)
		for j := first + 1; j < end; j++ {
			if candLess(h[j], h[m]) {
				m = j
			}
		}
		if !candLess(h[m], last) {
			break
		}
		h[i] = h[m]
		i = m
	}
	h[i] = last
	return top, h
}
