package registry

import (
	"fmt"
	"strings"
)

// MaxNameLen caps adapter names; with the escaping of ':' and '/' a name
// still fits in one file-name component (255 bytes).
const MaxNameLen = 128

// ValidateName accepts names made of letters, digits and . _ : -, with at
// most one "/" (the "org/name" form). OpenAI-style fine-tune names such as
// "ft:base:suffix:id" qualify. No segment may be empty or start with ".",
// which rules out "..", hidden files and absolute paths before any file
// system call sees the name.
func ValidateName(name string) error {
	if name == "" {
		return fmt.Errorf("%w: the name is empty", ErrName)
	}
	if len(name) > MaxNameLen {
		return fmt.Errorf("%w: %d bytes is longer than %d", ErrName, len(name), MaxNameLen)
	}
	segs := strings.Split(name, "/")
	if len(segs) > 2 {
		return fmt.Errorf("%w: %q has more than one '/' (use the form org/name)", ErrName, name)
	}
	for _, s := range segs {
		if s == "" {
			return fmt.Errorf("%w: %q has an empty segment", ErrName, name)
		}
		if s[0] == '.' {
			return fmt.Errorf("%w: %q has a segment starting with '.'", ErrName, name)
		}
		for i := 0; i < len(s); i++ {
			if !nameByte(s[i]) {
				return fmt.Errorf("%w: %q contains %q (allowed: letters, digits, '.', '_', ':', '-' and one '/')", ErrName, name, s[i])
			}
		}
	}
	return nil
}

func nameByte(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		c == '.' || c == '_' || c == ':' || c == '-'
}

// encodeName maps a valid name to a single directory name: '/' and ':' (not
// portable in file names) become %2F and %3A. '%' never occurs in a valid
// name, so the mapping is reversible.
func encodeName(name string) string { return encoder.Replace(name) }

var (
	encoder = strings.NewReplacer("/", "%2F", ":", "%3A")
	decoder = strings.NewReplacer("%2F", "/", "%3A", ":")
)

// decodeName reverses encodeName; ok is false for directory names that no
// valid name encodes to, which the store then ignores.
func decodeName(dir string) (string, bool) {
	name := decoder.Replace(dir)
	if ValidateName(name) != nil || encodeName(name) != dir {
		return "", false
	}
	return name, true
}
