package safetensors

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"slices"
	"strconv"
	"unicode/utf8"
)

// MaxHeaderSize is the largest header the reader accepts, as in the
// reference implementation; it bounds what a corrupt length can make us read.
const MaxHeaderSize = 100_000_000

const metadataKey = "__metadata__"

// Sentinel errors; every error the package returns wraps one of them.
var (
	ErrInvalid  = errors.New("invalid safetensors data")
	ErrNotFound = errors.New("tensor not found")
	ErrDType    = errors.New("unsupported dtype for this conversion")
	ErrClosed   = errors.New("safetensors file is closed")
)

// TensorInfo is one tensor entry of a header: where its bytes lie in the
// data buffer that follows the header.
type TensorInfo struct {
	Name       string
	DType      DType
	Shape      []int
	Begin, End int64 // byte offsets relative to the start of the data buffer
}

// Header is a validated safetensors header.
type Header struct {
	Tensors  []TensorInfo // sorted by offset
	Metadata map[string]string
}

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrInvalid}, args...)...)
}

// ParseHeader parses and validates the JSON header hdr of a file whose data
// buffer (everything after the header) is bufLen bytes long. It enforces the
// reference parser's rules: no duplicate keys, known dtypes, byte sizes that
// match dtype×shape, and tensors that tile the buffer exactly, without gaps
// or overlaps.
func ParseHeader(hdr []byte, bufLen int64) (*Header, error) {
	if len(hdr) > MaxHeaderSize {
		return nil, invalid("header is %d bytes, more than the %d allowed", len(hdr), MaxHeaderSize)
	}
	if len(hdr) == 0 || hdr[0] != '{' {
		return nil, invalid("header does not start with '{'")
	}
	if !utf8.Valid(hdr) {
		return nil, invalid("header is not valid UTF-8")
	}
	dec := json.NewDecoder(bytes.NewReader(hdr))
	dec.UseNumber()
	h := &Header{}
	err := eachKey(dec, func(key string) error {
		if key == metadataKey {
			md, err := parseMetadata(dec)
			h.Metadata = md
			return err
		}
		ti, err := parseTensorInfo(dec, key)
		if err != nil {
			return err
		}
		h.Tensors = append(h.Tensors, ti)
		return nil
	})
	if err != nil {
		return nil, headerSyntax(err)
	}
	// Only the writer's space padding may follow the object.
	if rest := hdr[dec.InputOffset():]; len(bytes.TrimLeft(rest, " \t\r\n")) != 0 {
		return nil, invalid("unexpected data after the header object")
	}
	if err := checkLayout(h.Tensors, bufLen); err != nil {
		return nil, err
	}
	return h, nil
}

// headerSyntax turns decoder errors into one ErrInvalid line.
func headerSyntax(err error) error {
	if errors.Is(err, ErrInvalid) {
		return err
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return invalid("header JSON ends early")
	}
	return invalid("header JSON: %v", err)
}

// eachKey reads a JSON object from dec, rejecting duplicate keys, and calls
// fn for each key; fn must consume exactly the key's value.
func eachKey(dec *json.Decoder, fn func(key string) error) error {
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return invalid("expected a JSON object, found %v", tok)
	}
	return eachKeyBody(dec, fn)
}

// eachKeyBody is eachKey after the opening '{' has been read.
func eachKeyBody(dec *json.Decoder, fn func(key string) error) error {
	seen := make(map[string]bool)
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		key, ok := tok.(string)
		if !ok {
			return invalid("expected an object key, found %v", tok)
		}
		if seen[key] {
			return invalid("duplicate key %q", key)
		}
		seen[key] = true
		if err := fn(key); err != nil {
			return err
		}
	}
	_, err := dec.Token() // the closing '}'
	return err
}

// parseMetadata reads the __metadata__ value: a flat string map, or null.
func parseMetadata(dec *json.Decoder) (map[string]string, error) {
	md := make(map[string]string)
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	if tok == nil {
		return md, nil
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, invalid("__metadata__ is not an object")
	}
	err = eachKeyBody(dec, func(key string) error {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		s, ok := tok.(string)
		if !ok {
			return invalid("__metadata__ value of %q is not a string", key)
		}
		md[key] = s
		return nil
	})
	return md, err
}

func parseTensorInfo(dec *json.Decoder, name string) (TensorInfo, error) {
	ti := TensorInfo{Name: name}
	var haveDType, haveShape, haveOffsets bool
	err := eachKey(dec, func(key string) error {
		switch key {
		case "dtype":
			tok, err := dec.Token()
			if err != nil {
				return err
			}
			s, ok := tok.(string)
			if !ok {
				return invalid("tensor %q: dtype is not a string", name)
			}
			ti.DType, haveDType = DType(s), true
		case "shape":
			dims, err := intArray(dec)
			if err != nil {
				return fmt.Errorf("tensor %q: shape: %w", name, err)
			}
			ti.Shape, haveShape = make([]int, len(dims)), true
			for i, d := range dims {
				ti.Shape[i] = int(d)
			}
		case "data_offsets":
			offs, err := intArray(dec)
			if err != nil {
				return fmt.Errorf("tensor %q: data_offsets: %w", name, err)
			}
			if len(offs) != 2 {
				return invalid("tensor %q: data_offsets has %d values, want 2", name, len(offs))
			}
			ti.Begin, ti.End, haveOffsets = offs[0], offs[1], true
		default:
			// The reference ignores unknown fields; so do we.
			var skip json.RawMessage
			return dec.Decode(&skip)
		}
		return nil
	})
	if err != nil {
		return ti, err
	}
	switch {
	case !haveDType:
		return ti, invalid("tensor %q has no dtype", name)
	case !haveShape:
		return ti, invalid("tensor %q has no shape", name)
	case !haveOffsets:
		return ti, invalid("tensor %q has no data_offsets", name)
	case !ti.DType.Valid():
		return ti, invalid("tensor %q: dtype %q is not a safetensors dtype", name, ti.DType)
	}
	return ti, nil
}

// intArray reads an array of non-negative integers.
func intArray(dec *json.Decoder) ([]int64, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	if d, ok := tok.(json.Delim); !ok || d != '[' {
		return nil, invalid("expected an array, found %v", tok)
	}
	var out []int64
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		num, ok := tok.(json.Number)
		if !ok {
			return nil, invalid("expected an integer, found %v", tok)
		}
		v, err := strconv.ParseInt(string(num), 10, 64)
		if err != nil || v < 0 || v > int64(^uint(0)>>1) {
			return nil, invalid("%s is not a non-negative integer", num)
		}
		out = append(out, v)
	}
	_, err = dec.Token()
	return out, err
}

// byteSize is the number of bytes a tensor of dtype d and the given shape
// takes, or an error when the shape overflows or the size is not whole bytes.
func byteSize(d DType, shape []int) (int64, error) {
	n := uint64(1)
	for _, s := range shape {
		if s < 0 {
			return 0, invalid("negative dimension %d", s)
		}
		hi, lo := bits.Mul64(n, uint64(s))
		if hi != 0 || lo > 1<<62 {
			return 0, invalid("shape %v is too large", shape)
		}
		n = lo
	}
	hi, b := bits.Mul64(n, uint64(d.Bits()))
	if hi != 0 || b > 1<<62 {
		return 0, invalid("shape %v is too large", shape)
	}
	if b%8 != 0 {
		return 0, invalid("%s %v is not a whole number of bytes", d, shape)
	}
	return int64(b / 8), nil
}

// checkLayout verifies sizes and that the tensors, sorted by offset, tile
// [0, bufLen) exactly.
func checkLayout(ts []TensorInfo, bufLen int64) error {
	for _, t := range ts {
		size, err := byteSize(t.DType, t.Shape)
		if err != nil {
			return fmt.Errorf("tensor %q: %w", t.Name, err)
		}
		if t.End < t.Begin {
			return invalid("tensor %q: data_offsets [%d, %d] end before they begin", t.Name, t.Begin, t.End)
		}
		if t.End-t.Begin != size {
			return invalid("tensor %q: data_offsets [%d, %d] hold %d bytes but %s %v needs %d",
				t.Name, t.Begin, t.End, t.End-t.Begin, t.DType, t.Shape, size)
		}
	}
	slices.SortStableFunc(ts, func(a, b TensorInfo) int {
		if c := cmp.Compare(a.Begin, b.Begin); c != 0 {
			return c
		}
		return cmp.Compare(a.End, b.End)
	})
	var at int64
	for _, t := range ts {
		if t.Begin > at {
			return invalid("gap in the data buffer at bytes [%d, %d) before tensor %q", at, t.Begin, t.Name)
		}
		if t.Begin < at {
			return invalid("tensor %q at offset %d overlaps the previous tensor, which ends at %d", t.Name, t.Begin, at)
		}
		at = t.End
	}
	if at != bufLen {
		if at > bufLen {
			return invalid("tensors need %d data bytes but the file holds only %d (truncated?)", at, bufLen)
		}
		return invalid("tensors cover %d data bytes but the file holds %d (trailing data)", at, bufLen)
	}
	return nil
}
