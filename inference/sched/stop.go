package sched

import "strings"

// stopper cuts output text at the first stop string. Text that could still
// turn out to be the start of a stop string is held back until the next
// token settles it, so a stop string split across tokens is never emitted.
type stopper struct {
	stops   []string
	longest int
	held    string
}

func newStopper(stops []string) stopper {
	var st stopper
	for _, s := range stops {
		if s != "" {
			st.stops = append(st.stops, s)
			st.longest = max(st.longest, len(s))
		}
	}
	return st
}

// push adds newly decoded text. It returns the text that is now final and
// whether a stop string was found, in which case nothing from its start on
// is ever returned.
func (st *stopper) push(text string) (string, bool) {
	if len(st.stops) == 0 {
		return text, false
	}
	buf := st.held + text
	// The stop string that completes first wins (the longest if several
	// end together), as if the text had arrived one byte at a time; how
	// text is split into tokens then never changes the output.
	cut, end := -1, 0
	for _, s := range st.stops {
		i := strings.Index(buf, s)
		if i >= 0 && (cut < 0 || i+len(s) < end || i+len(s) == end && i < cut) {
			cut, end = i, i+len(s)
		}
	}
	if cut >= 0 {
		st.held = ""
		return buf[:cut], true
	}
	k := st.partial(buf)
	st.held = buf[len(buf)-k:]
	return buf[:len(buf)-k], false
}

// partial is the length of the longest suffix of buf that is a proper prefix
// of some stop string. Stop strings are valid UTF-8, so the cut falls on a
// character boundary.
func (st *stopper) partial(buf string) int {
	for k := min(len(buf), st.longest-1); k > 0; k-- {
		suffix := buf[len(buf)-k:]
		for _, s := range st.stops {
			if strings.HasPrefix(s, suffix) {
				return k
			}
		}
	}
	return 0
}

// flush returns the held text once no more text will follow.
func (st *stopper) flush() string {
	h := st.held
	st.held = ""
	return h
}
