package safetensors

import (
	"slices"
	"testing"
)

// FuzzParseHeader checks that no header crashes the parser and that every
// accepted header describes a layout the writer reproduces byte for byte.
func FuzzParseHeader(f *testing.F) {
	f.Add([]byte(`{}`), int64(0))
	f.Add([]byte(`{"__metadata__":{"format":"pt"},"w":{"dtype":"BF16","shape":[2,2],"data_offsets":[0,8]}}`), int64(8))
	f.Fuzz(func(t *testing.T, hdr []byte, bufLen int64) {
		h, err := ParseHeader(hdr, bufLen)
		if err != nil {
			return
		}
		var sum int64
		ts := make([]Tensor, len(h.Tensors))
		for i, ti := range h.Tensors {
			if ti.Begin != sum {
				t.Fatalf("accepted a non-contiguous layout: %+v", h.Tensors)
			}
			sum = ti.End
			ts[i] = Tensor{Name: ti.Name, DType: ti.DType, Shape: ti.Shape}
		}
		if sum != bufLen {
			t.Fatalf("accepted tensors covering %d of %d bytes", sum, bufLen)
		}
		_, out, err := buildHeader(ts, h.Metadata)
		if err != nil {
			t.Fatalf("writer rejects an accepted header: %v", err)
		}
		h2, err := ParseHeader(out[8:], bufLen)
		if err != nil {
			t.Fatalf("re-parse of written header: %v", err)
		}
		if len(h2.Tensors) != len(h.Tensors) || len(h2.Metadata) != len(h.Metadata) {
			t.Fatalf("round trip changed the header: %+v vs %+v", h, h2)
		}
		byName := make(map[string]TensorInfo, len(h.Tensors))
		for _, ti := range h.Tensors {
			byName[ti.Name] = ti
		}
		for _, b := range h2.Tensors {
			a := byName[b.Name]
			if a.Name != b.Name || a.DType != b.DType || !slices.Equal(a.Shape, b.Shape) || a.End-a.Begin != b.End-b.Begin {
				t.Fatalf("tensor changed: %+v vs %+v", a, b)
			}
		}
	})
}
