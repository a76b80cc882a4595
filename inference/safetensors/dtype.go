package safetensors

import "strings"

// DType is a safetensors element type, spelled as in the file header.
type DType string

// The element types the format defines.
const (
	BOOL       DType = "BOOL"
	U8         DType = "U8"
	I8         DType = "I8"
	I16        DType = "I16"
	U16        DType = "U16"
	F16        DType = "F16"
	BF16       DType = "BF16"
	I32        DType = "I32"
	U32        DType = "U32"
	F32        DType = "F32"
	I64        DType = "I64"
	U64        DType = "U64"
	F64        DType = "F64"
	C64        DType = "C64"
	F8E5M2     DType = "F8_E5M2"
	F8E4M3     DType = "F8_E4M3"
	F8E8M0     DType = "F8_E8M0"
	F8E4M3FNUZ DType = "F8_E4M3FNUZ"
	F8E5M2FNUZ DType = "F8_E5M2FNUZ"
	F4         DType = "F4"
	F6E2M3     DType = "F6_E2M3"
	F6E3M2     DType = "F6_E3M2"
)

var dtypeBits = map[DType]int{
	BOOL: 8, U8: 8, I8: 8, F8E5M2: 8, F8E4M3: 8, F8E8M0: 8, F8E4M3FNUZ: 8, F8E5M2FNUZ: 8,
	I16: 16, U16: 16, F16: 16, BF16: 16,
	I32: 32, U32: 32, F32: 32,
	I64: 64, U64: 64, F64: 64, C64: 64,
	F4: 4, F6E2M3: 6, F6E3M2: 6,
}

// Bits is the size of one element in bits, or 0 for an unknown type.
func (d DType) Bits() int { return dtypeBits[d] }

// TorchName is the PyTorch name of a floating-point dtype ("bfloat16",
// "float16", "float32"), as bitsandbytes writes it into quant_state; other
// dtypes get their safetensors name in lower case.
func (d DType) TorchName() string {
	switch d {
	case BF16:
		return "bfloat16"
	case F16:
		return "float16"
	case F32:
		return "float32"
	}
	return strings.ToLower(string(d))
}

// Valid reports whether d is a type the format defines.
func (d DType) Valid() bool { return dtypeBits[d] != 0 }

// alignment is the natural alignment of an element in bytes; the writer
// orders tensors by it so every tensor starts aligned.
func (d DType) alignment() int {
	return max(d.Bits()/8, 1)
}
