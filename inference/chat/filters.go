package chat

import (
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strings"

	"github.com/nikolalohinski/gonja/v2/exec"
)

// dictPairs lists a dict's entries: in insertion order for ordered dicts,
// by key for Go maps (which have no order).
func dictPairs(v *exec.Value) ([][2]*exec.Value, error) {
	switch d := v.Interface().(type) {
	case *exec.Dict:
		out := make([][2]*exec.Value, len(d.Pairs))
		for i, p := range d.Pairs {
			out[i] = [2]*exec.Value{p.Key, p.Value}
		}
		return out, nil
	}
	rv := reflect.ValueOf(v.Interface())
	if rv.Kind() != reflect.Map {
		return nil, fmt.Errorf("expected a dict, got %s", v.String())
	}
	out := make([][2]*exec.Value, 0, rv.Len())
	for it := rv.MapRange(); it.Next(); {
		out = append(out, [2]*exec.Value{exec.AsValue(it.Key().Interface()), exec.AsValue(it.Value().Interface())})
	}
	sort.Slice(out, func(i, j int) bool { return out[i][0].String() < out[j][0].String() })
	return out, nil
}

func pairList(pairs [][2]*exec.Value) []any {
	out := make([]any, len(pairs))
	for i, p := range pairs {
		out[i] = []any{p[0], p[1]}
	}
	return out
}

// filterItems is Jinja's items filter: a dict's (key, value) pairs.
func filterItems(_ *exec.Evaluator, in *exec.Value, _ *exec.VarArgs) *exec.Value {
	if in.IsError() {
		return in
	}
	if in.IsNil() {
		return exec.AsValue([]any{})
	}
	pairs, err := dictPairs(in)
	if err != nil {
		return exec.AsValue(fmt.Errorf("items: %w", err))
	}
	return exec.AsValue(pairList(pairs))
}

// filterDictSort is Jinja's dictsort(case_sensitive=False, by='key', reverse=False).
func filterDictSort(_ *exec.Evaluator, in *exec.Value, params *exec.VarArgs) *exec.Value {
	if in.IsError() {
		return in
	}
	pairs, err := dictPairs(in)
	if err != nil {
		return exec.AsValue(fmt.Errorf("dictsort: %w", err))
	}
	caseSensitive, reverse, idx := false, false, 0
	if v, ok := params.KwArgs["case_sensitive"]; ok {
		caseSensitive = v.IsTrue()
	} else if len(params.Args) > 0 {
		caseSensitive = params.Args[0].IsTrue()
	}
	if v, ok := params.KwArgs["by"]; ok {
		switch v.String() {
		case "key":
		case "value":
			idx = 1
		default:
			return exec.AsValue(errors.New("dictsort: by must be 'key' or 'value'"))
		}
	}
	if v, ok := params.KwArgs["reverse"]; ok {
		reverse = v.IsTrue()
	}
	less := func(a, b *exec.Value) bool {
		if a.IsNumber() && b.IsNumber() {
			return a.Float() < b.Float()
		}
		x, y := a.String(), b.String()
		if !caseSensitive {
			x, y = strings.ToLower(x), strings.ToLower(y)
		}
		return x < y
	}
	sort.SliceStable(pairs, func(i, j int) bool {
		if reverse {
			return less(pairs[j][idx], pairs[i][idx])
		}
		return less(pairs[i][idx], pairs[j][idx])
	})
	return exec.AsValue(pairList(pairs))
}
