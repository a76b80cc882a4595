package openai

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"unicode/utf8"
)

// Decode parses a request body into v with the same rules as the endpoint
// decoders; handlers of smaller bodies (tokenize, adapters) use it too.
func Decode(body []byte, v any) error { return decode(body, v) }

// decode parses a request body into v. Unknown fields are ignored (clients
// send many optional fields we do not use); wrong types, trailing data, bad
// UTF-8 and unpaired surrogate escapes are client errors. encoding/json would
// silently turn the last two into U+FFFD, so they are checked on the raw bytes.
func decode(body []byte, v any) error {
	if len(bytes.TrimSpace(body)) == 0 {
		return invalid("", "the request body is empty; send a JSON object")
	}
	if !utf8.Valid(body) {
		return invalid("", "the request body is not valid UTF-8")
	}
	if err := checkEscapes(body); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(v); err != nil {
		return jsonError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return invalid("", "the request body has data after the JSON object")
	}
	return nil
}

// jsonError turns encoding/json's errors into RequestErrors with a param.
func jsonError(err error) error {
	var re *RequestError
	var te *json.UnmarshalTypeError
	var se *json.SyntaxError
	switch {
	case errors.As(err, &re):
		return re
	case errors.As(err, &te):
		if te.Field == "" {
			return invalid("", "the request body must be a JSON object, not %s", te.Value)
		}
		// Fields of the embedded Sampling struct carry its name as a prefix.
		field := strings.TrimPrefix(te.Field, "Sampling.")
		return invalid(field, "invalid type for '%s': expected %s, got %s", field, jsonKind(te.Type.Kind().String()), te.Value)
	case errors.As(err, &se):
		return invalid("", "the request body is not valid JSON: %s (at byte %d)", se.Error(), se.Offset)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return invalid("", "the request body is truncated JSON")
	}
	return invalid("", "the request body could not be decoded: %v", err)
}

// jsonKind names a Go kind the way a JSON client thinks of it.
func jsonKind(kind string) string {
	switch kind {
	case "int", "int32", "int64", "uint", "uint32", "uint64":
		return "an integer"
	case "float32", "float64":
		return "a number"
	case "string":
		return "a string"
	case "bool":
		return "a boolean"
	case "slice", "array":
		return "an array"
	case "map", "struct":
		return "an object"
	}
	return kind
}

// checkEscapes rejects \uD800-\uDFFF escapes that do not form a surrogate
// pair. In valid JSON a backslash only occurs inside strings, so no string
// tracking is needed: each backslash starts an escape of known length.
func checkEscapes(b []byte) error {
	for i := 0; i < len(b); i++ {
		if b[i] != '\\' || i+1 >= len(b) {
			continue
		}
		if b[i+1] != 'u' {
			i++
			continue
		}
		r, ok := hex4(b, i+2)
		i += 5
		if !ok || r < 0xD800 || r > 0xDFFF {
			continue
		}
		if r >= 0xDC00 {
			return invalid("", "the request body contains an unpaired UTF-16 surrogate escape")
		}
		lo, ok := -1, false
		if i+2 < len(b) && b[i+1] == '\\' && b[i+2] == 'u' {
			lo, ok = hex4(b, i+3)
		}
		if !ok || lo < 0xDC00 || lo > 0xDFFF {
			return invalid("", "the request body contains an unpaired UTF-16 surrogate escape")
		}
		i += 6
	}
	return nil
}

func hex4(b []byte, at int) (int, bool) {
	if at+4 > len(b) {
		return 0, false
	}
	v := 0
	for _, c := range b[at : at+4] {
		switch {
		case c >= '0' && c <= '9':
			v = v<<4 | int(c-'0')
		case c >= 'a' && c <= 'f':
			v = v<<4 | int(c-'a'+10)
		case c >= 'A' && c <= 'F':
			v = v<<4 | int(c-'A'+10)
		default:
			return 0, false
		}
	}
	return v, true
}
