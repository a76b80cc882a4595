package sched

import (
	"strings"
	"testing"
)

// FuzzStopper splits a text into pieces at arbitrary points and checks the
// stopper against a byte-at-a-time search of the whole text: however the
// text is split, the output is the text before the first stop string to
// complete, or all of it when there is none.
func FuzzStopper(f *testing.F) {
	f.Add("Hello world", "lo w", "o", uint64(0x1234))
	f.Add("abcabcabd", "abd", "", uint64(7))
	f.Add("ééé", "é", "x", uint64(1))
	f.Add("no stop here", "zzz", "q", uint64(99))
	f.Add("aaab", "aab", "ab", uint64(3))
	f.Fuzz(func(t *testing.T, text, stop1, stop2 string, cuts uint64) {
		st := newStopper([]string{stop1, stop2})
		var out strings.Builder
		stopped := false
		rest := text
		for rest != "" && !stopped {
			n := 1 + int(cuts%5)
			cuts = cuts/5 + 1
			n = min(n, len(rest))
			var piece string
			piece, stopped = st.push(rest[:n])
			out.WriteString(piece)
			rest = rest[n:]
		}
		if !stopped {
			out.WriteString(st.flush())
		}
		// Reference: grow the text a byte at a time and stop as soon as it
		// ends with a stop string, cutting at the longest one that does.
		want, wantStop := text, false
		for n := 1; n <= len(text) && !wantStop; n++ {
			for _, s := range []string{stop1, stop2} {
				if s != "" && strings.HasSuffix(text[:n], s) && (!wantStop || n-len(s) < len(want)) {
					want, wantStop = text[:n-len(s)], true
				}
			}
		}
		if out.String() != want || stopped != wantStop {
			t.Errorf("text %q stops %q %q: got %q (stopped %v), want %q (%v)", text, stop1, stop2, out.String(), stopped, want, wantStop)
		}
	})
}
