package chat

import (
	"errors"
	"strings"
	"unicode"

	"github.com/nikolalohinski/gonja/v2/builtins"
	"github.com/nikolalohinski/gonja/v2/exec"
)

// strMethodNames are the Python str methods gonja implements; they are
// carried over into our method set, which then replaces the few whose
// defaults differ from Python (strip/lstrip/rstrip trim only spaces,
// replace demands a count, split splits on one space).
var strMethodNames = strings.Fields(`capitalize capwords casefold center count encode endswith
	expandtabs find format format_map isalnum isalpha isascii isdecimal isdigit islower isnumeric
	isprintable isspace istitle isupper join ljust lower lstrip partition removeprefix removesuffix
	replace rfind rjust rpartition rsplit rstrip split splitlines startswith strip swapcase title upper zfill`)

func strMethods() *exec.MethodSet[string] {
	m := map[string]exec.Method[string]{}
	for _, name := range strMethodNames {
		if f, ok := builtins.Methods.Str.Get(name); ok {
			m[name] = f
		}
	}
	m["strip"] = stripMethod(true, true)
	m["lstrip"] = stripMethod(true, false)
	m["rstrip"] = stripMethod(false, true)
	m["replace"] = replaceMethod
	m["split"] = splitMethod
	return exec.NewMethodSet(m)
}

// optString reads positional argument i (or keyword name) as a string;
// ok is false when it is absent or None.
func optString(a *exec.VarArgs, i int, name string) (s string, ok bool, err error) {
	var v *exec.Value
	if i < len(a.Args) {
		v = a.Args[i]
	} else if kw, found := a.KwArgs[name]; found {
		v = kw
	}
	if v == nil || v.IsNil() {
		return "", false, nil
	}
	if !v.IsString() {
		return "", false, errors.New(name + " must be a string")
	}
	return v.String(), true, nil
}

func optInt(a *exec.VarArgs, i int, name string, dflt int) (int, error) {
	var v *exec.Value
	if i < len(a.Args) {
		v = a.Args[i]
	} else if kw, found := a.KwArgs[name]; found {
		v = kw
	}
	if v == nil || v.IsNil() {
		return dflt, nil
	}
	if !v.IsInteger() {
		return 0, errors.New(name + " must be an integer")
	}
	return v.Integer(), nil
}

func stripMethod(left, right bool) exec.Method[string] {
	return func(self string, _ *exec.Value, a *exec.VarArgs) (any, error) {
		chars, ok, err := optString(a, 0, "chars")
		if err != nil {
			return nil, exec.ErrInvalidCall(err)
		}
		in := unicode.IsSpace
		if ok {
			in = func(r rune) bool { return strings.ContainsRune(chars, r) }
		}
		if left {
			self = strings.TrimLeftFunc(self, in)
		}
		if right {
			self = strings.TrimRightFunc(self, in)
		}
		return self, nil
	}
}

func replaceMethod(self string, _ *exec.Value, a *exec.VarArgs) (any, error) {
	old, ok1, err := optString(a, 0, "old")
	if err != nil || !ok1 {
		return nil, exec.ErrInvalidCall(errors.New("replace() needs old and new strings"))
	}
	repl, ok2, err := optString(a, 1, "new")
	if err != nil || !ok2 {
		return nil, exec.ErrInvalidCall(errors.New("replace() needs old and new strings"))
	}
	count, err := optInt(a, 2, "count", -1)
	if err != nil {
		return nil, exec.ErrInvalidCall(err)
	}
	return strings.Replace(self, old, repl, count), nil
}

// splitMethod is Python's str.split: no separator splits on runs of
// whitespace and drops empty strings; maxsplit limits the splits.
func splitMethod(self string, _ *exec.Value, a *exec.VarArgs) (any, error) {
	sep, ok, err := optString(a, 0, "sep")
	if err != nil {
		return nil, exec.ErrInvalidCall(err)
	}
	maxsplit, err := optInt(a, 1, "maxsplit", -1)
	if err != nil {
		return nil, exec.ErrInvalidCall(err)
	}
	var parts []string
	switch {
	case ok && sep == "":
		return nil, exec.ErrInvalidCall(errors.New("split(): empty separator"))
	case ok:
		n := -1
		if maxsplit >= 0 {
			n = maxsplit + 1
		}
		parts = strings.SplitN(self, sep, n)
	default:
		rest := strings.TrimLeftFunc(self, unicode.IsSpace)
		for rest != "" {
			if maxsplit >= 0 && len(parts) == maxsplit {
				parts = append(parts, rest)
				break
			}
			i := strings.IndexFunc(rest, unicode.IsSpace)
			if i < 0 {
				parts = append(parts, rest)
				break
			}
			parts = append(parts, rest[:i])
			rest = strings.TrimLeftFunc(rest[i:], unicode.IsSpace)
		}
	}
	out := make([]any, len(parts))
	for i, p := range parts {
		out[i] = p
	}
	return out, nil
}

var dictMethodNames = strings.Fields(`keys values items get pop setdefault update copy clear`)

// dictMethods keeps gonja's dict methods but makes keys/values/items follow
// insertion order when the dict has one (dict literals and JSON decoded by
// decodeOrdered), as Python does; tool schemas render in their given order.
func dictMethods() *exec.MethodSet[map[string]any] {
	m := map[string]exec.Method[map[string]any]{}
	for _, name := range dictMethodNames {
		if f, ok := builtins.Methods.Dict.Get(name); ok {
			m[name] = f
		}
	}
	ordered := func(name string, pick func(k, v *exec.Value) any) {
		fallback := m[name]
		m[name] = func(self map[string]any, sv *exec.Value, a *exec.VarArgs) (any, error) {
			d, ok := sv.Interface().(*exec.Dict)
			if !ok || len(a.Args)+len(a.KwArgs) > 0 {
				return fallback(self, sv, a)
			}
			out := make([]any, len(d.Pairs))
			for i, p := range d.Pairs {
				out[i] = pick(p.Key, p.Value)
			}
			return out, nil
		}
	}
	ordered("keys", func(k, _ *exec.Value) any { return k })
	ordered("values", func(_, v *exec.Value) any { return v })
	ordered("items", func(k, v *exec.Value) any { return []any{k, v} })
	return exec.NewMethodSet(m)
}
