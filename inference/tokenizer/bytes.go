package tokenizer

import "unicode/utf8"

// byteToRune is the GPT-2 byte-level table: printable bytes map to themselves,
// the other 68 bytes map to runes 256.. in byte order, so every byte becomes a
// visible, unique character before BPE runs.
var byteToRune [256]rune

// runeToByte inverts byteToRune; runes outside it map to -1.
var runeToByte = map[rune]byte{}

func init() {
	n := rune(0)
	for b := 0; b < 256; b++ {
		printable := (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF)
		if printable {
			byteToRune[b] = rune(b)
		} else {
			byteToRune[b] = 256 + n
			n++
		}
		runeToByte[byteToRune[b]] = byte(b)
	}
}

// seqLen reports how a UTF-8 sequence starting at p[0] stands: n>0 is a
// complete valid rune of n bytes; n<0 means p holds a valid but incomplete
// prefix of -n bytes that more input could complete; n==0 with bad>0 means
// the first bad bytes form a maximal invalid subpart, to be replaced by one
// U+FFFD (the policy of Rust's String::from_utf8_lossy, which the Hugging Face
// decoders use).
func seqLen(p []byte) (n, bad int) {
	c := p[0]
	if c < 0x80 {
		return 1, 0
	}
	var need int
	lo, hi := byte(0x80), byte(0xBF)
	switch {
	case c >= 0xC2 && c <= 0xDF:
		need = 1
	case c == 0xE0:
		need, lo = 2, 0xA0
	case c == 0xED:
		need, hi = 2, 0x9F
	case c >= 0xE1 && c <= 0xEF:
		need = 2
	case c == 0xF0:
		need, lo = 3, 0x90
	case c == 0xF4:
		need, hi = 3, 0x8F
	case c >= 0xF1 && c <= 0xF3:
		need = 3
	default:
		return 0, 1
	}
	for i := 1; i <= need; i++ {
		if i >= len(p) {
			return -i, 0
		}
		if p[i] < lo || p[i] > hi {
			return 0, i
		}
		lo, hi = 0x80, 0xBF
	}
	return need + 1, 0
}

// appendLossy appends the valid UTF-8 rendering of src to dst, replacing each
// maximal invalid subpart with U+FFFD. When final is false an incomplete
// sequence at the end of src is left unconsumed; consumed says how many bytes
// of src were used.
func appendLossy(dst, src []byte, final bool) (out []byte, consumed int) {
	i := 0
	for i < len(src) {
		if src[i] < utf8.RuneSelf {
			dst = append(dst, src[i])
			i++
			continue
		}
		n, bad := seqLen(src[i:])
		switch {
		case n > 0:
			dst = append(dst, src[i:i+n]...)
			i += n
		case n < 0 && !final:
			return dst, i
		case n < 0:
			dst = utf8.AppendRune(dst, utf8.RuneError)
			i += -n
		default:
			dst = utf8.AppendRune(dst, utf8.RuneError)
			i += bad
		}
	}
	return dst, i
}
