package checkpoint

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"

	"github.com/loraplex/loraplex/quant"
)

// QuantStateKey is the key suffix, after "<module>.weight", of the tensor that
// holds an NF4 weight's quant_state JSON.
const QuantStateKey = ".quant_state.bitsandbytes__nf4"

// QuantState is quant's BnbQuantState with the strict checks a writer
// applies to what it is about to publish.
type QuantState quant.BnbQuantState

// ParseQuantState decodes quant_state JSON strictly: one object with no
// unknown or duplicate keys, the four base fields present, and the nested
// fields either all present or all absent. Whether the state is one this
// project can load is CheckNF4's question.
func ParseQuantState(b []byte) (QuantState, error) {
	var st QuantState
	if err := noDuplicateKeys(b); err != nil {
		return st, fmt.Errorf("%w: %w", ErrQuantState, err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&st); err != nil {
		return st, fmt.Errorf("%w: %w", ErrQuantState, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return st, fmt.Errorf("%w: data after the JSON object", ErrQuantState)
	}
	var missing []string
	for _, k := range []struct {
		name string
		ok   bool
	}{{"quant_type", st.QuantType != ""}, {"blocksize", st.Blocksize != 0}, {"dtype", st.DType != ""}, {"shape", st.Shape != nil}} {
		if !k.ok {
			missing = append(missing, k.name)
		}
	}
	if len(missing) > 0 {
		return st, fmt.Errorf("%w: missing %v", ErrQuantState, missing)
	}
	if st.Blocksize < 0 || slices.ContainsFunc(st.Shape, func(d int) bool { return d < 0 }) {
		return st, fmt.Errorf("%w: negative blocksize %d or shape %v", ErrQuantState, st.Blocksize, st.Shape)
	}
	nested := []bool{st.NestedBlocksize != 0, st.NestedDType != "", st.NestedOffset != nil}
	if slices.Contains(nested, true) && slices.Contains(nested, false) {
		return st, fmt.Errorf("%w: nested_blocksize, nested_dtype and nested_offset must come together", ErrQuantState)
	}
	if st.NestedOffset != nil && (math.IsNaN(*st.NestedOffset) || math.IsInf(*st.NestedOffset, 0)) {
		return st, fmt.Errorf("%w: nested_offset is not finite", ErrQuantState)
	}
	return st, nil
}

// CheckNF4 reports whether st describes what this project reads and writes:
// NF4, blocksize 64, double quantization in blocks of 256 with float32
// scales, a rows×cols weight.
func (st QuantState) CheckNF4(rows, cols int) error {
	switch {
	case st.QuantType != "nf4":
		return fmt.Errorf("%w: quant_type %q: only nf4 is supported; quantize the model with bnb_4bit_quant_type=\"nf4\"", ErrUnsupported, st.QuantType)
	case st.Blocksize != 64:
		return fmt.Errorf("%w: blocksize %d: only 64 is supported", ErrUnsupported, st.Blocksize)
	case st.NestedOffset == nil:
		return fmt.Errorf("%w: no double quantization (nested_* fields missing)", ErrUnsupported)
	case st.NestedBlocksize != 256 || st.NestedDType != "float32":
		return fmt.Errorf("%w: nested_blocksize %d, nested_dtype %q: want 256 and float32", ErrUnsupported, st.NestedBlocksize, st.NestedDType)
	case !slices.Equal(st.Shape, []int{rows, cols}):
		return fmt.Errorf("%w: shape %v, want [%d %d]", ErrQuantState, st.Shape, rows, cols)
	}
	return nil
}

// noDuplicateKeys rejects an object that repeats a key: encoding/json would
// keep the last one silently, Python the last one too, but a checkpoint
// with two different blocksizes is corrupt, not ambiguous.
func noDuplicateKeys(b []byte) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return errors.New("not a JSON object")
	}
	seen := map[string]bool{}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return err
		}
		k, _ := t.(string) // object keys are always strings
		if seen[k] {
			return fmt.Errorf("duplicate key %q", k)
		}
		seen[k] = true
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return err
		}
	}
	return nil
}
