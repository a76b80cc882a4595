package quant

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
)

// BnbTensors are the per-Linear tensors of a Hugging Face bitsandbytes 4-bit
// checkpoint, as raw values (the caller reads them from safetensors). Names
// are the key suffixes after "<module>.weight".
type BnbTensors struct {
	Weight         []byte    // "weight": U8 [ceil(n/2), 1] packed codes (or bytes of another quant_storage dtype)
	Absmax         []byte    // ".absmax": U8 [n_blocks], nested checkpoints
	AbsmaxF32      []float32 // ".absmax": F32 [n_blocks], checkpoints without double quantization
	QuantMap       []float32 // ".quant_map": F32 [16]
	NestedAbsmax   []float32 // ".nested_absmax": F32 [ceil(n_blocks/256)]
	NestedQuantMap []float32 // ".nested_quant_map": F32 [256]
	QuantState     []byte    // ".quant_state.bitsandbytes__nf4": UTF-8 JSON
}

// BnbQuantState is the JSON bitsandbytes stores in
// "<module>.weight.quant_state.bitsandbytes__nf4": the non-tensor fields of
// its QuantState. The nested fields are present only with double
// quantization.
type BnbQuantState struct {
	QuantType       string   `json:"quant_type"`
	Blocksize       int      `json:"blocksize"`
	DType           string   `json:"dtype"`
	Shape           []int    `json:"shape"`
	NestedBlocksize int      `json:"nested_blocksize,omitempty"`
	NestedDType     string   `json:"nested_dtype,omitempty"`
	NestedOffset    *float64 `json:"nested_offset,omitempty"`
}

func bnbErr(tensor, format string, args ...any) error {
	return fmt.Errorf("%w: tensor %q: %s", ErrFormat, tensor, fmt.Sprintf(format, args...))
}

// NF4FromBnb builds an *NF4 from bitsandbytes checkpoint tensors without
// copying Weight or Absmax (they must stay unmodified). Checkpoints without
// double quantization (float32 absmax) are double-quantized here, which
// moves each block scale by at most half a step of the 8-bit map. FP4,
// block sizes other than 64 and inconsistent sizes are rejected with an
// error naming the tensor.
func NF4FromBnb(rows, cols int, t BnbTensors) (*NF4, error) {
	var st BnbQuantState
	if err := json.Unmarshal(t.QuantState, &st); err != nil {
		return nil, bnbErr("weight.quant_state.bitsandbytes__nf4", "not valid JSON (%v)", err)
	}
	if st.QuantType != "nf4" {
		return nil, bnbErr("weight.quant_state", "quant_type %q: only nf4 is supported; re-quantize the model with bnb_4bit_quant_type=\"nf4\"", st.QuantType)
	}
	if st.Blocksize != nf4Block {
		return nil, bnbErr("weight.quant_state", "blocksize %d: only 64 is supported", st.Blocksize)
	}
	if len(st.Shape) != 2 || st.Shape[0] != rows || st.Shape[1] != cols {
		return nil, bnbErr("weight.quant_state", "shape %v, want [%d %d]", st.Shape, rows, cols)
	}
	if rows <= 0 || cols <= 0 || rows > math.MaxInt32 || cols > math.MaxInt32 {
		return nil, bnbErr("weight", "shape %d×%d is not a weight matrix", rows, cols)
	}
	n := rows * cols
	nb := (n + nf4Block - 1) / nf4Block
	if len(t.Weight) != (n+1)/2 {
		return nil, bnbErr("weight", "%d bytes, want %d for a %d×%d weight", len(t.Weight), (n+1)/2, rows, cols)
	}
	if len(t.QuantMap) != 16 {
		return nil, bnbErr("weight.quant_map", "%d values, want 16", len(t.QuantMap))
	}
	q := &NF4{rows: rows, cols: cols, packed: t.Weight, code: &nf4Code, dyn: &dynamicMap, dtype: st.DType}
	adviseHuge(t.Weight)
	if [16]float32(t.QuantMap) != nf4Code {
		c := [16]float32(t.QuantMap)
		q.code = &c
	}
	switch {
	case t.Absmax != nil:
		if st.NestedOffset == nil || st.NestedBlocksize != nestedBlock {
			return nil, bnbErr("weight.quant_state", "nested_offset missing or nested_blocksize %d (want 256) for a uint8 absmax", st.NestedBlocksize)
		}
		if len(t.Absmax) != nb {
			return nil, bnbErr("weight.absmax", "%d values, want %d blocks of 64", len(t.Absmax), nb)
		}
		if ng := (nb + nestedBlock - 1) / nestedBlock; len(t.NestedAbsmax) != ng {
			return nil, bnbErr("weight.nested_absmax", "%d values, want %d", len(t.NestedAbsmax), ng)
		}
		if len(t.NestedQuantMap) != 256 {
			return nil, bnbErr("weight.nested_quant_map", "%d values, want 256", len(t.NestedQuantMap))
		}
		if [256]float32(t.NestedQuantMap) != dynamicMap {
			d := [256]float32(t.NestedQuantMap)
			q.dyn = &d
		}
		q.qabs, q.absmax2, q.offset = t.Absmax, t.NestedAbsmax, float32(*st.NestedOffset)
	case t.AbsmaxF32 != nil:
		if len(t.AbsmaxF32) != nb {
			return nil, bnbErr("weight.absmax", "%d values, want %d blocks of 64", len(t.AbsmaxF32), nb)
		}
		q.qabs = make([]uint8, nb)
		q.offset, q.absmax2 = quantizeScales(t.AbsmaxF32, q.qabs)
	default:
		return nil, bnbErr("weight.absmax", "missing")
	}
	return q, nil
}

// SetSourceDType records the dtype the weight had before quantization
// ("float32", "bfloat16" or "float16"); Bnb writes it into quant_state.
func (q *NF4) SetSourceDType(dtype string) { q.dtype = dtype }

// Bnb returns the checkpoint tensors of q (sharing its storage) in the
// bitsandbytes layout with double quantization.
func (q *NF4) Bnb() BnbTensors {
	var js bytes.Buffer
	// json.dumps field order and spacing, so files match byte for byte.
	fmt.Fprintf(&js, `{"quant_type": "nf4", "blocksize": %d, "dtype": %q, "shape": [%d, %d], "nested_blocksize": %d, "nested_dtype": "float32", "nested_offset": %s}`,
		nf4Block, q.dtype, q.rows, q.cols, nestedBlock, pyFloat(float64(q.offset)))
	code, dyn := *q.code, *q.dyn
	return BnbTensors{
		Weight:         q.packed,
		Absmax:         q.qabs,
		QuantMap:       code[:],
		NestedAbsmax:   q.absmax2,
		NestedQuantMap: dyn[:],
		QuantState:     js.Bytes(),
	}
}

// pyFloat formats v as Python's repr(float) does.
func pyFloat(v float64) string {
	switch {
	case math.IsNaN(v):
		return "NaN"
	case math.IsInf(v, 1):
		return "Infinity"
	case math.IsInf(v, -1):
		return "-Infinity"
	}
	exp := 0
	if v != 0 {
		exp = int(math.Floor(math.Log10(math.Abs(v))))
	}
	if exp < -4 || exp >= 16 {
		return strconv.FormatFloat(v, 'e', -1, 64)
	}
	s := strconv.FormatFloat(v, 'f', -1, 64)
	if !bytes.ContainsAny([]byte(s), ".") {
		s += ".0"
	}
	return s
}
