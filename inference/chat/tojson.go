package chat

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"sort"
	"strconv"
	"strings"

	"github.com/nikolalohinski/gonja/v2/exec"
)

// filterToJSON is transformers' tojson: json.dumps(x, ensure_ascii=False,
// indent=indent, separators=separators, sort_keys=sort_keys).
func filterToJSON(_ *exec.Evaluator, in *exec.Value, params *exec.VarArgs) *exec.Value {
	if in.IsError() {
		return in
	}
	var o jsonOpts
	o.item, o.key = ", ", ": "
	if v, ok := params.KwArgs["indent"]; ok && !v.IsNil() {
		switch {
		case v.IsInteger():
			o.indent = strings.Repeat(" ", v.Integer())
		case v.IsString():
			o.indent = v.String()
		default:
			return exec.AsValue(fmt.Errorf("tojson: indent must be an integer or a string, got %s", v.String()))
		}
		o.pretty = true
		o.item = ","
	}
	if v, ok := params.KwArgs["separators"]; ok && !v.IsNil() {
		var seps []string
		v.Iterate(func(_, _ int, key, _ *exec.Value) bool {
			seps = append(seps, key.String())
			return true
		}, func() {})
		if len(seps) != 2 {
			return exec.AsValue(errors.New("tojson: separators must be a pair of strings"))
		}
		o.item, o.key = seps[0], seps[1]
	}
	if v, ok := params.KwArgs["sort_keys"]; ok {
		o.sortKeys = v.IsTrue()
	}
	if v, ok := params.KwArgs["ensure_ascii"]; ok {
		o.ascii = v.IsTrue()
	}
	var b bytes.Buffer
	if err := o.write(&b, in.Interface(), 0); err != nil {
		return exec.AsValue(fmt.Errorf("tojson: %w", err))
	}
	return exec.AsSafeValue(b.String())
}

type jsonOpts struct {
	indent    string
	pretty    bool
	item, key string
	sortKeys  bool
	ascii     bool
}

func (o *jsonOpts) newline(b *bytes.Buffer, depth int) {
	if o.pretty {
		b.WriteByte('\n')
		for range depth {
			b.WriteString(o.indent)
		}
	}
}

type kv struct {
	k string
	v any
}

func (o *jsonOpts) write(b *bytes.Buffer, v any, depth int) error {
	if depth > 200 {
		return errors.New("value nested too deeply")
	}
	switch x := v.(type) {
	case nil:
		b.WriteString("null")
		return nil
	case *exec.Value:
		if x == nil {
			b.WriteString("null")
			return nil
		}
		return o.write(b, x.Interface(), depth)
	case *exec.Dict:
		pairs := make([]kv, 0, len(x.Pairs))
		for _, p := range x.Pairs {
			pairs = append(pairs, kv{p.Key.String(), p.Value})
		}
		return o.object(b, pairs, depth)
	case map[string]any:
		// Go maps have no order; sorted keys are the stable choice.
		pairs := make([]kv, 0, len(x))
		for k, e := range x {
			pairs = append(pairs, kv{k, e})
		}
		sort.Slice(pairs, func(i, j int) bool { return pairs[i].k < pairs[j].k })
		return o.object(b, pairs, depth)
	case string:
		o.str(b, x)
		return nil
	case bool:
		if x {
			b.WriteString("true")
		} else {
			b.WriteString("false")
		}
		return nil
	case float64:
		b.WriteString(pyFloat(x))
		return nil
	case float32:
		b.WriteString(pyFloat(float64(x)))
		return nil
	case json.Number:
		b.WriteString(x.String())
		return nil
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		b.WriteString(strconv.FormatInt(rv.Int(), 10))
		return nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		b.WriteString(strconv.FormatUint(rv.Uint(), 10))
		return nil
	case reflect.Slice, reflect.Array:
		if rv.Len() == 0 {
			b.WriteString("[]")
			return nil
		}
		b.WriteByte('[')
		for i := 0; i < rv.Len(); i++ {
			if i > 0 {
				b.WriteString(o.item)
			}
			o.newline(b, depth+1)
			if err := o.write(b, rv.Index(i).Interface(), depth+1); err != nil {
				return err
			}
		}
		o.newline(b, depth)
		b.WriteByte(']')
		return nil
	case reflect.Map:
		pairs := make([]kv, 0, rv.Len())
		for it := rv.MapRange(); it.Next(); {
			pairs = append(pairs, kv{fmt.Sprint(it.Key().Interface()), it.Value().Interface()})
		}
		sort.Slice(pairs, func(i, j int) bool { return pairs[i].k < pairs[j].k })
		return o.object(b, pairs, depth)
	case reflect.Pointer:
		if rv.IsNil() {
			b.WriteString("null")
			return nil
		}
		return o.write(b, rv.Elem().Interface(), depth)
	}
	return fmt.Errorf("object of type %T is not JSON serializable", v)
}

func (o *jsonOpts) object(b *bytes.Buffer, pairs []kv, depth int) error {
	if len(pairs) == 0 {
		b.WriteString("{}")
		return nil
	}
	if o.sortKeys {
		sort.SliceStable(pairs, func(i, j int) bool { return pairs[i].k < pairs[j].k })
	}
	b.WriteByte('{')
	for i, p := range pairs {
		if i > 0 {
			b.WriteString(o.item)
		}
		o.newline(b, depth+1)
		o.str(b, p.k)
		b.WriteString(o.key)
		if err := o.write(b, p.v, depth+1); err != nil {
			return err
		}
	}
	o.newline(b, depth)
	b.WriteByte('}')
	return nil
}

// str writes a JSON string as Python's json module does: short escapes for
// \n \r \t \b \f, \u00XX for other control characters, everything else raw
// unless ensure_ascii asks for \uXXXX (with surrogate pairs).
func (o *jsonOpts) str(b *bytes.Buffer, s string) {
	b.WriteByte('"')
	for _, r := range s {
		switch r {
		case '"':
			b.WriteString(`\"`)
		case '\\':
			b.WriteString(`\\`)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		case '\b':
			b.WriteString(`\b`)
		case '\f':
			b.WriteString(`\f`)
		default:
			switch {
			case r < 0x20 || o.ascii && r == 0x7f:
				fmt.Fprintf(b, `\u%04x`, r)
			case o.ascii && r > 0x7f && r < 0x10000:
				fmt.Fprintf(b, `\u%04x`, r)
			case o.ascii && r >= 0x10000:
				r -= 0x10000
				fmt.Fprintf(b, `\u%04x\u%04x`, 0xD800+(r>>10), 0xDC00+(r&0x3FF))
			default:
				b.WriteRune(r)
			}
		}
	}
	b.WriteByte('"')
}

// pyFloat spells a float as Python's repr: shortest round-trip digits,
// fixed notation for exponents -4..15 (always with a fraction), else d.ddde±XX.
func pyFloat(f float64) string {
	switch {
	case math.IsNaN(f):
		return "NaN"
	case math.IsInf(f, 1):
		return "Infinity"
	case math.IsInf(f, -1):
		return "-Infinity"
	}
	e := strconv.FormatFloat(f, 'e', -1, 64)
	mant, expStr, _ := strings.Cut(e, "e")
	exp, _ := strconv.Atoi(expStr)
	if exp >= -4 && exp < 16 {
		s := strconv.FormatFloat(f, 'f', -1, 64)
		if !strings.ContainsAny(s, ".") {
			s += ".0"
		}
		return s
	}
	sign := "+"
	if exp < 0 {
		sign, exp = "-", -exp
	}
	return fmt.Sprintf("%se%s%02d", mant, sign, exp)
}

// decodeOrdered decodes JSON keeping object key order (as *exec.Dict).
func decodeOrdered(raw []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	v, err := decodeValue(dec)
	if err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err == nil {
		return nil, errors.New("trailing data after JSON value")
	}
	return v, nil
}

func decodeValue(dec *json.Decoder) (any, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	switch t := tok.(type) {
	case json.Delim:
		switch t {
		case '{':
			d := exec.NewDict()
			for dec.More() {
				k, err := dec.Token()
				if err != nil {
					return nil, err
				}
				v, err := decodeValue(dec)
				if err != nil {
					return nil, err
				}
				d.Pairs = append(d.Pairs, &exec.Pair{Key: exec.AsValue(k), Value: exec.AsValue(v)})
			}
			_, err := dec.Token()
			return d, err
		case '[':
			list := []any{}
			for dec.More() {
				v, err := decodeValue(dec)
				if err != nil {
					return nil, err
				}
				list = append(list, v)
			}
			_, err := dec.Token()
			return list, err
		}
		return nil, fmt.Errorf("unexpected %v", t)
	case json.Number:
		if i, err := t.Int64(); err == nil {
			return int(i), nil
		}
		f, err := t.Float64()
		return f, err
	}
	return tok, nil
}
