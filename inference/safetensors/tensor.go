package safetensors

import (
	"encoding/binary"
	"fmt"
	"math"
	"unsafe"

	"github.com/x448/float16"
)

// Tensor is one named tensor. Data holds its little-endian, row-major bytes;
// for tensors read from a File it is a read-only view of the memory map.
type Tensor struct {
	Name  string
	DType DType
	Shape []int
	Data  []byte
}

// Numel is the number of elements (1 for a scalar).
func (t Tensor) Numel() int {
	n := 1
	for _, d := range t.Shape {
		n *= d
	}
	return n
}

// checkSize verifies that Data is exactly as long as dtype×shape requires.
func (t Tensor) checkSize() error {
	want, err := byteSize(t.DType, t.Shape)
	if err != nil {
		return fmt.Errorf("tensor %q: %w", t.Name, err)
	}
	if int64(len(t.Data)) != want {
		return fmt.Errorf("%w: tensor %q: %d data bytes, but %s %v needs %d", ErrInvalid, t.Name, len(t.Data), t.DType, t.Shape, want)
	}
	return nil
}

// Float32 returns a new float32 copy of an F32, F16 or BF16 tensor.
func (t Tensor) Float32() ([]float32, error) {
	if t.DType != F32 && t.DType != F16 && t.DType != BF16 {
		return nil, fmt.Errorf("safetensors: tensor %q is %s: %w (want F32, F16 or BF16)", t.Name, t.DType, ErrDType)
	}
	if err := t.checkSize(); err != nil {
		return nil, fmt.Errorf("safetensors: %w", err)
	}
	out := make([]float32, t.Numel())
	d := t.Data
	switch t.DType {
	case F32:
		if len(d) > 0 && uintptr(unsafe.Pointer(&d[0]))%4 == 0 {
			copy(out, unsafe.Slice((*float32)(unsafe.Pointer(&d[0])), len(out))) // little-endian host: a plain copy
			break
		}
		for i := range out {
			out[i] = math.Float32frombits(binary.LittleEndian.Uint32(d[4*i:]))
		}
	case F16:
		for i := range out {
			out[i] = float16.Frombits(binary.LittleEndian.Uint16(d[2*i:])).Float32()
		}
	case BF16:
		for i := range out {
			out[i] = math.Float32frombits(uint32(binary.LittleEndian.Uint16(d[2*i:])) << 16)
		}
	}
	return out, nil
}

// Uint16 returns the raw bits of an F16 or BF16 tensor as a view of Data,
// without copying. Data whose start is not 2-byte aligned (possible only in
// files whose writer did not pad the header) is copied instead. The result
// is read-only when the tensor comes from a File. It assumes a little-endian
// host, as every platform the project targets is.
func (t Tensor) Uint16() ([]uint16, error) {
	if t.DType != F16 && t.DType != BF16 {
		return nil, fmt.Errorf("safetensors: tensor %q is %s: %w (want F16 or BF16)", t.Name, t.DType, ErrDType)
	}
	if err := t.checkSize(); err != nil {
		return nil, fmt.Errorf("safetensors: %w", err)
	}
	n := len(t.Data) / 2
	if n == 0 {
		return []uint16{}, nil
	}
	if uintptr(unsafe.Pointer(&t.Data[0]))%2 != 0 {
		out := make([]uint16, n)
		for i := range out {
			out[i] = binary.LittleEndian.Uint16(t.Data[2*i:])
		}
		return out, nil
	}
	return unsafe.Slice((*uint16)(unsafe.Pointer(&t.Data[0])), n), nil
}

// F32Tensor builds an F32 tensor holding a copy of v.
func F32Tensor(name string, shape []int, v []float32) Tensor {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
	}
	return Tensor{Name: name, DType: F32, Shape: shape, Data: b}
}

// BF16Tensor builds a BF16 tensor from v, rounding each value to nearest even
// as torch does.
func BF16Tensor(name string, shape []int, v []float32) Tensor {
	b := make([]byte, 2*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint16(b[2*i:], BF16Bits(x))
	}
	return Tensor{Name: name, DType: BF16, Shape: shape, Data: b}
}

// F16Tensor builds an F16 tensor from v (IEEE half, round to nearest even).
func F16Tensor(name string, shape []int, v []float32) Tensor {
	b := make([]byte, 2*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint16(b[2*i:], float16.Fromfloat32(x).Bits())
	}
	return Tensor{Name: name, DType: F16, Shape: shape, Data: b}
}

// U8Tensor builds a U8 tensor that shares v (bitsandbytes packs NF4 nibbles
// and quantization state this way).
func U8Tensor(name string, shape []int, v []byte) Tensor {
	return Tensor{Name: name, DType: U8, Shape: shape, Data: v}
}

// BF16Bits rounds f to bfloat16 (nearest, ties to even) and returns its bits.
// NaNs stay NaNs.
func BF16Bits(f float32) uint16 {
	u := math.Float32bits(f)
	if u&0x7fffffff > 0x7f800000 {
		return uint16(u>>16) | 0x40
	}
	u += 0x7fff + (u>>16)&1
	return uint16(u >> 16)
}
