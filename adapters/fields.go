package adapters

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
)

// fields reads typed values out of a decoded JSON object. Each getter
// records the first type error in *errp, naming the key, and reports
// whether the key was present and not null.
type fields map[string]json.RawMessage

func (f fields) raw(key string) (json.RawMessage, bool) {
	v, ok := f[key]
	if !ok || bytes.Equal(bytes.TrimSpace(v), []byte("null")) {
		return nil, false
	}
	return v, true
}

func typeErr(errp *error, key, want string, v json.RawMessage) {
	if *errp != nil {
		return
	}
	s := string(v)
	if len(s) > 60 {
		s = s[:60] + "…"
	}
	*errp = fmt.Errorf("%w: %s must be %s, got %s", ErrConfig, key, want, s)
}

func (f fields) str(key string, errp *error) (string, bool) {
	v, ok := f.raw(key)
	if !ok {
		return "", false
	}
	var s string
	if err := json.Unmarshal(v, &s); err != nil {
		typeErr(errp, key, "a string or null", v)
		return "", false
	}
	return s, true
}

func (f fields) boolean(key string, errp *error) (bool, bool) {
	v, ok := f.raw(key)
	if !ok {
		return false, false
	}
	var b bool
	if err := json.Unmarshal(v, &b); err != nil {
		typeErr(errp, key, "true or false", v)
		return false, false
	}
	return b, true
}

func (f fields) number(key string, errp *error) (float64, bool) {
	v, ok := f.raw(key)
	if !ok {
		return 0, false
	}
	x, ok := parseNumber(v)
	if !ok {
		typeErr(errp, key, "a number", v)
	}
	return x, ok
}

func (f fields) integer(key string, errp *error) (int, bool) {
	v, ok := f.raw(key)
	if !ok {
		return 0, false
	}
	n, ok := parseInt(v)
	if !ok {
		typeErr(errp, key, "an integer", v)
	}
	return n, ok
}

func parseNumber(v json.RawMessage) (float64, bool) {
	var x float64
	if err := json.Unmarshal(v, &x); err != nil || !finite(x) {
		return 0, false
	}
	return x, true
}

// parseInt accepts integral JSON numbers, including Python's 8.0, within a
// range no adapter dimension exceeds.
func parseInt(v json.RawMessage) (int, bool) {
	x, ok := parseNumber(v)
	if !ok || x != math.Trunc(x) || math.Abs(x) > 1<<31 {
		return 0, false
	}
	return int(x), true
}

func (f fields) strOrList(key string, errp *error) ([]string, bool) {
	v, ok := f.raw(key)
	if !ok {
		return nil, false
	}
	var s string
	if json.Unmarshal(v, &s) == nil {
		return []string{s}, true
	}
	var l []string
	if err := json.Unmarshal(v, &l); err != nil {
		typeErr(errp, key, "a string or a list of strings", v)
		return nil, false
	}
	return l, true
}

func (f fields) intOrList(key string, errp *error) ([]int, bool) {
	v, ok := f.raw(key)
	if !ok {
		return nil, false
	}
	if n, ok := parseInt(v); ok {
		return []int{n}, true
	}
	var raws []json.RawMessage
	if err := json.Unmarshal(v, &raws); err != nil {
		typeErr(errp, key, "an integer or a list of integers", v)
		return nil, false
	}
	l := make([]int, len(raws))
	for i, r := range raws {
		n, ok := parseInt(r)
		if !ok {
			typeErr(errp, key, "an integer or a list of integers", v)
			return nil, false
		}
		l[i] = n
	}
	return l, true
}

func (f fields) modules(key string, errp *error) (Modules, bool) {
	v, ok := f.raw(key)
	if !ok {
		return Modules{}, false
	}
	var s string
	if json.Unmarshal(v, &s) == nil {
		if s == "" {
			typeErr(errp, key, "a non-empty regular expression or a list of module names", v)
			return Modules{}, false
		}
		return Modules{Regex: s}, true
	}
	l := []string{}
	if err := json.Unmarshal(v, &l); err != nil {
		typeErr(errp, key, "a regular expression or a list of module names", v)
		return Modules{}, false
	}
	return Modules{Names: l}, true
}

func (f fields) rankPattern(errp *error) []RankRule {
	var rules []RankRule
	f.object("rank_pattern", "an object of pattern: rank", errp, func(k string, v json.RawMessage) bool {
		n, ok := parseInt(v)
		if ok {
			rules = setRule(rules, RankRule{k, n}, func(r RankRule) string { return r.Pattern })
		}
		return ok
	})
	return rules
}

func (f fields) alphaPattern(errp *error) []AlphaRule {
	var rules []AlphaRule
	f.object("alpha_pattern", "an object of pattern: alpha", errp, func(k string, v json.RawMessage) bool {
		x, ok := parseNumber(v)
		if ok {
			rules = setRule(rules, AlphaRule{k, x}, func(r AlphaRule) string { return r.Pattern })
		}
		return ok
	})
	return rules
}

// setRule adds r, or replaces the rule with the same pattern in place: a
// Python dict keeps a repeated key at its first position with its last
// value.
func setRule[T any](rules []T, r T, key func(T) string) []T {
	for i := range rules {
		if key(rules[i]) == key(r) {
			rules[i] = r
			return rules
		}
	}
	return append(rules, r)
}

// object walks a JSON object in file order, which encoding/json maps lose.
func (f fields) object(key, want string, errp *error, fn func(k string, v json.RawMessage) bool) {
	v, ok := f.raw(key)
	if !ok {
		return
	}
	dec := json.NewDecoder(bytes.NewReader(v))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		typeErr(errp, key, want, v)
		return
	}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			typeErr(errp, key, want, v)
			return
		}
		k, _ := t.(string)
		var val json.RawMessage
		if err := dec.Decode(&val); err != nil || !fn(k, val) {
			typeErr(errp, key, want, v)
			return
		}
	}
}
