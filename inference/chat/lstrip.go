package chat

import "strings"

// lstripBlocks applies Jinja's lstrip_blocks to the source: spaces and tabs
// between the start of a line and a block or comment tag are removed unless
// the tag opens with "{%+" (or "{%-", which strips them anyway). gonja's own
// option also strips whitespace between two tags on one line ("{% endif %}
// {% if %}"), which Jinja keeps, so the rewrite is done here instead.
func lstripBlocks(src string) string {
	var b strings.Builder
	b.Grow(len(src))
	i := 0
	for i < len(src) {
		j := strings.IndexByte(src[i:], '{')
		if j < 0 || i+j+1 >= len(src) {
			b.WriteString(src[i:])
			break
		}
		j += i
		open := src[j+1]
		if open != '%' && open != '{' && open != '#' {
			b.WriteString(src[i : j+1])
			i = j + 1
			continue
		}
		data := src[i:j]
		if open != '{' && (j+2 >= len(src) || src[j+2] != '+' && src[j+2] != '-') {
			k := len(data)
			for k > 0 && (data[k-1] == ' ' || data[k-1] == '\t') {
				k--
			}
			atLineStart := (k == 0 && (j-len(data) == 0 || src[j-len(data)-1] == '\n')) || (k > 0 && data[k-1] == '\n')
			if atLineStart {
				data = data[:k]
			}
		}
		b.WriteString(data)
		end := tagEnd(src, j, open)
		b.WriteString(src[j:end])
		i = end
	}
	return b.String()
}

// tagEnd returns the index just past the tag opened at src[j:] ("{%", "{{"
// or "{#"), skipping string literals inside expressions; an unterminated
// tag runs to the end and is left for the parser to report.
func tagEnd(src string, j int, open byte) int {
	closer := map[byte]string{'%': "%}", '{': "}}", '#': "#}"}[open]
	if open == '#' {
		if k := strings.Index(src[j+2:], closer); k >= 0 {
			return j + 2 + k + 2
		}
		return len(src)
	}
	var quote byte
	for k := j + 2; k < len(src); k++ {
		c := src[k]
		switch {
		case quote != 0 && c == '\\':
			k++
		case quote != 0 && c == quote:
			quote = 0
		case quote != 0:
		case c == '\'' || c == '"':
			quote = c
		case strings.HasPrefix(src[k:], closer):
			return k + 2
		}
	}
	return len(src)
}
