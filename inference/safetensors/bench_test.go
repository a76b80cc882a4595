package safetensors

import (
	"path/filepath"
	"testing"
)

func benchTensor(b *testing.B, build func(string, []int, []float32) Tensor) Tensor {
	v := make([]float32, 1<<20)
	for i := range v {
		v[i] = float32(i%1000) * 0.001
	}
	return build("w", []int{1 << 10, 1 << 10}, v)
}

func BenchmarkFloat32FromBF16(b *testing.B) {
	t := benchTensor(b, BF16Tensor)
	b.SetBytes(int64(len(t.Data)))
	for b.Loop() {
		if _, err := t.Float32(); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkFloat32FromF32(b *testing.B) {
	t := benchTensor(b, F32Tensor)
	b.SetBytes(int64(len(t.Data)))
	for b.Loop() {
		if _, err := t.Float32(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkOpen measures header parsing and mapping of a 300-tensor file.
func BenchmarkOpen(b *testing.B) {
	var ts []Tensor
	for i := range 300 {
		ts = append(ts, F32Tensor("model.layers."+string(rune('a'+i%26))+".w"+string(rune('0'+i/26)), []int{4}, make([]float32, 4)))
	}
	path := filepath.Join(b.TempDir(), "m.safetensors")
	if err := Write(path, ts, map[string]string{"format": "pt"}); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		f, err := Open(path)
		if err != nil {
			b.Fatal(err)
		}
		f.Close()
	}
}
