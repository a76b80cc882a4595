package safetensors

import (
	"encoding/binary"
	"errors"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"unsafe"

	"github.com/loraplex/loraplex/inference/fixtures"
)

func TestRoundTrip(t *testing.T) {
	scalar := Tensor{Name: "step", DType: I64, Shape: []int{}, Data: binary.LittleEndian.AppendUint64(nil, 42)}
	in := []Tensor{
		U8Tensor("a.u8", []int{3}, []byte{1, 2, 3}),
		BF16Tensor("b.bf16", []int{2, 3}, []float32{1, -2, 0.5, 3, 0, -0.25}),
		F32Tensor("c.f32", []int{2, 2}, []float32{1.5, -2.25, 3e-8, 1e30}),
		F16Tensor("d.f16", []int{3}, []float32{1, 65504, -0.5}),
		F32Tensor("empty", []int{0, 4}, nil),
		scalar,
	}
	md := map[string]string{"format": "pt", "note": `quotes " and <tags>`}
	path := filepath.Join(t.TempDir(), "rt.safetensors")
	if err := Write(path, in, md); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	n := binary.LittleEndian.Uint64(raw)
	if (8+n)%8 != 0 {
		t.Errorf("header length %d: data buffer not 8-aligned", n)
	}
	f, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if got := f.Metadata(); got["format"] != "pt" || got["note"] != md["note"] || len(got) != 2 {
		t.Errorf("metadata = %v", got)
	}
	wantNames := []string{"a.u8", "b.bf16", "c.f32", "d.f16", "empty", "step"}
	if got := f.Names(); !slices.Equal(got, wantNames) {
		t.Errorf("names = %v, want %v", got, wantNames)
	}
	for _, want := range in {
		got, err := f.Get(want.Name)
		if err != nil {
			t.Fatal(err)
		}
		if got.DType != want.DType || !slices.Equal(got.Shape, want.Shape) || string(got.Data) != string(want.Data) {
			t.Errorf("%s: got %s %v %x, want %s %v %x", want.Name, got.DType, got.Shape, got.Data, want.DType, want.Shape, want.Data)
		}
		if len(got.Data) > 0 && uintptr(unsafe.Pointer(&got.Data[0]))%uintptr(want.DType.alignment()) != 0 {
			t.Errorf("%s: data not aligned to %d bytes", want.Name, want.DType.alignment())
		}
	}
	if s, _ := f.Get("step"); s.Numel() != 1 {
		t.Errorf("scalar numel = %d, want 1", s.Numel())
	}
	b, _ := f.Get("b.bf16")
	v, err := b.Float32()
	if err != nil || !slices.Equal(v, []float32{1, -2, 0.5, 3, 0, -0.25}) {
		t.Errorf("bf16 Float32 = %v, %v", v, err)
	}
	d, _ := f.Get("d.f16")
	if v, err := d.Float32(); err != nil || !slices.Equal(v, []float32{1, 65504, -0.5}) {
		t.Errorf("f16 Float32 = %v, %v", v, err)
	}
	u, err := b.Uint16()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(u, []uint16{0x3f80, 0xc000, 0x3f00, 0x4040, 0, 0xbe80}) {
		t.Errorf("bf16 bits = %x", u)
	}
	if unsafe.Pointer(&u[0]) != unsafe.Pointer(&b.Data[0]) {
		t.Error("Uint16 copied an aligned tensor; want a view")
	}
	if _, err := f.Get("missing"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get(missing) = %v, want ErrNotFound", err)
	}
	if _, err := f.Get("c.f32"); err != nil {
		t.Fatal(err)
	}
	c, _ := f.Get("c.f32")
	if _, err := c.Uint16(); !errors.Is(err, ErrDType) {
		t.Errorf("Uint16 on F32 = %v, want ErrDType", err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Get("c.f32"); !errors.Is(err, ErrClosed) {
		t.Errorf("Get after Close = %v, want ErrClosed", err)
	}
	if err := f.Close(); err != nil {
		t.Errorf("second Close = %v", err)
	}
}

func TestWriteOrdersByAlignmentThenName(t *testing.T) {
	in := []Tensor{
		U8Tensor("z", []int{1}, []byte{7}),
		BF16Tensor("y", []int{1}, []float32{1}),
		F32Tensor("b", []int{1}, []float32{1}),
		{Name: "a", DType: I64, Shape: []int{1}, Data: make([]byte, 8)},
		F32Tensor("a32", []int{1}, []float32{2}),
	}
	_, hdr, err := buildHeader(in, nil)
	if err != nil {
		t.Fatal(err)
	}
	h, err := ParseHeader(hdr[8:], 8+4+4+2+1)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, ti := range h.Tensors {
		names = append(names, ti.Name)
	}
	if want := []string{"a", "a32", "b", "y", "z"}; !slices.Equal(names, want) {
		t.Errorf("file order %v, want %v", names, want)
	}
}

func TestWriteRejects(t *testing.T) {
	dir := t.TempDir()
	cases := map[string][]Tensor{
		"short data": {{Name: "x", DType: F32, Shape: []int{2}, Data: make([]byte, 4)}},
		"duplicate":  {F32Tensor("x", []int{1}, []float32{1}), F32Tensor("x", []int{1}, []float32{1})},
		"reserved":   {F32Tensor(metadataKey, []int{1}, []float32{1})},
		"dtype":      {{Name: "x", DType: "F7", Shape: []int{1}, Data: make([]byte, 1)}},
		"bad utf8":   {F32Tensor("\xff", []int{1}, []float32{1})},
	}
	for name, ts := range cases {
		path := filepath.Join(dir, "out.safetensors")
		if err := Write(path, ts, nil); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: Write = %v, want ErrInvalid", name, err)
		}
		if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s: a failed Write left %s behind", name, path)
		}
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("temporary files left behind: %v", entries)
	}
}

func TestBF16Rounding(t *testing.T) {
	cases := []struct {
		in   uint32
		want uint16
	}{
		{0x3f800000, 0x3f80}, // 1.0
		{0x3f808000, 0x3f80}, // halfway, even stays
		{0x3f818000, 0x3f82}, // halfway, odd rounds up
		{0x3f808001, 0x3f81}, // just above halfway
		{0x7f7fffff, 0x7f80}, // max float rounds to +Inf, as torch does
		{0xff800000, 0xff80}, // -Inf
		{0x7fc00001, 0x7fc0}, // NaN stays NaN
		{0x7f800001, 0x7fc0}, // signalling NaN is quieted, not turned into Inf
	}
	for _, c := range cases {
		if got := BF16Bits(math.Float32frombits(c.in)); got != c.want {
			t.Errorf("BF16Bits(%#08x) = %#04x, want %#04x", c.in, got, c.want)
		}
	}
}

// rawFile assembles a safetensors file from a header string and a data
// buffer of n zero bytes.
func rawFile(header string, n int) []byte {
	b := binary.LittleEndian.AppendUint64(nil, uint64(len(header)))
	b = append(b, header...)
	return append(b, make([]byte, n)...)
}

func TestHeaderLies(t *testing.T) {
	const ok4 = `"x":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}`
	cases := []struct {
		name   string
		file   []byte
		substr string
	}{
		{"empty file", nil, "too short"},
		{"short length", []byte{1, 2, 3}, "too short"},
		{"length over cap", binary.LittleEndian.AppendUint64(nil, MaxHeaderSize+1), "exceeds"},
		{"length past eof", append(binary.LittleEndian.AppendUint64(nil, 100), "{}"...), "past the end"},
		{"not an object", rawFile(`[1,2]`, 0), "start with '{'"},
		{"leading space", rawFile(` {}`, 0), "start with '{'"},
		{"broken json", rawFile(`{"x":`, 0), "header JSON"},
		{"trailing garbage", rawFile(`{}x`, 0), "after the header"},
		{"two objects", rawFile(`{}{}`, 0), "after the header"},
		{"invalid utf8", rawFile("{\"\xff\":{}}", 0), "UTF-8"},
		{"duplicate tensor", rawFile(`{`+ok4+`,`+ok4+`}`, 4), "duplicate key"},
		{"duplicate metadata", rawFile(`{"__metadata__":{},"__metadata__":{}}`, 0), "duplicate key"},
		{"duplicate metadata key", rawFile(`{"__metadata__":{"a":"1","a":"2"}}`, 0), "duplicate key"},
		{"duplicate field", rawFile(`{"x":{"dtype":"F32","dtype":"F32","shape":[1],"data_offsets":[0,4]}}`, 4), "duplicate key"},
		{"metadata not string", rawFile(`{"__metadata__":{"a":1}}`, 0), "not a string"},
		{"metadata not object", rawFile(`{"__metadata__":"pt"}`, 0), "__metadata__ is not an object"},
		{"tensor not object", rawFile(`{"x":[1]}`, 0), "expected a JSON object"},
		{"unknown dtype", rawFile(`{"x":{"dtype":"F31","shape":[1],"data_offsets":[0,4]}}`, 4), "not a safetensors dtype"},
		{"lower-case dtype", rawFile(`{"x":{"dtype":"f32","shape":[1],"data_offsets":[0,4]}}`, 4), "not a safetensors dtype"},
		{"dtype not string", rawFile(`{"x":{"dtype":5,"shape":[1],"data_offsets":[0,4]}}`, 4), "dtype is not a string"},
		{"missing dtype", rawFile(`{"x":{"shape":[1],"data_offsets":[0,4]}}`, 4), "no dtype"},
		{"missing shape", rawFile(`{"x":{"dtype":"F32","data_offsets":[0,4]}}`, 4), "no shape"},
		{"missing offsets", rawFile(`{"x":{"dtype":"F32","shape":[1]}}`, 4), "no data_offsets"},
		{"negative dim", rawFile(`{"x":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}`, 4), "non-negative integer"},
		{"float dim", rawFile(`{"x":{"dtype":"F32","shape":[1.0],"data_offsets":[0,4]}}`, 4), "non-negative integer"},
		{"exp dim", rawFile(`{"x":{"dtype":"F32","shape":[1e0],"data_offsets":[0,4]}}`, 4), "non-negative integer"},
		{"string dim", rawFile(`{"x":{"dtype":"F32","shape":["1"],"data_offsets":[0,4]}}`, 4), "expected an integer"},
		{"shape overflow", rawFile(`{"x":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,4]}}`, 4), "too large"},
		{"three offsets", rawFile(`{"x":{"dtype":"F32","shape":[1],"data_offsets":[0,4,8]}}`, 4), "want 2"},
		{"end before begin", rawFile(`{"x":{"dtype":"F32","shape":[0],"data_offsets":[4,0]}}`, 4), "end before"},
		{"size lie", rawFile(`{"x":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}}`, 4), "needs 8"},
		{"bf16 size lie", rawFile(`{"x":{"dtype":"BF16","shape":[3],"data_offsets":[0,4]}}`, 4), "needs 6"},
		{"sub-byte fraction", rawFile(`{"x":{"dtype":"F4","shape":[3],"data_offsets":[0,2]}}`, 2), "whole number of bytes"},
		{"gap at start", rawFile(`{"x":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}`, 8), "gap"},
		{"gap between", rawFile(`{"x":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"y":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}}`, 12), "gap"},
		{"overlap", rawFile(`{"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"y":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}`, 8), "overlaps"},
		{"trailing data", rawFile(`{`+ok4+`}`, 8), "trailing data"},
		{"offsets past end", rawFile(`{`+ok4+`}`, 2), "truncated"},
		{"empty header with data", rawFile(`{}`, 1), "trailing data"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := FromBytes("bad.safetensors", c.file)
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("err = %v, want ErrInvalid", err)
			}
			msg := err.Error()
			if !strings.Contains(msg, c.substr) || !strings.Contains(msg, "bad.safetensors") || strings.Contains(msg, "\n") {
				t.Errorf("error %q: want one line naming the file and containing %q", msg, c.substr)
			}
		})
	}
}

func TestHeaderAccepts(t *testing.T) {
	cases := map[string][]byte{
		"empty":          rawFile(`{}`, 0),
		"null metadata":  rawFile(`{"__metadata__":null}`, 0),
		"padded":         rawFile(`{}      `, 0),
		"unknown field":  rawFile(`{"x":{"dtype":"U8","shape":[2],"data_offsets":[0,2],"extra":{"a":[1]}}}`, 2),
		"zero-size":      rawFile(`{"e":{"dtype":"F32","shape":[0],"data_offsets":[0,0]},"x":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}`, 1),
		"scalar":         rawFile(`{"s":{"dtype":"F64","shape":[],"data_offsets":[0,8]}}`, 8),
		"sub-byte whole": rawFile(`{"x":{"dtype":"F4","shape":[4],"data_offsets":[0,2]}}`, 2),
		"unsorted":       rawFile(`{"y":{"dtype":"U8","shape":[1],"data_offsets":[1,2]},"x":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}`, 2),
	}
	for name, b := range cases {
		if _, err := FromBytes(name, b); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestTruncatedFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "m.safetensors")
	if err := Write(path, []Tensor{F32Tensor("w", []int{4, 4}, make([]float32, 16))}, nil); err != nil {
		t.Fatal(err)
	}
	st, _ := os.Stat(path)
	for _, cut := range []int64{1, 63, st.Size() - 9, st.Size() - 4} {
		if err := os.Truncate(path, st.Size()-cut); err != nil {
			t.Fatal(err)
		}
		_, err := Open(path)
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), path) {
			t.Errorf("cut %d bytes: err = %v, want ErrInvalid naming the file", cut, err)
		}
	}
	if _, err := Open(filepath.Join(t.TempDir(), "absent.safetensors")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
}

func writeShards(t *testing.T, index string) string {
	t.Helper()
	dir := t.TempDir()
	s1 := []Tensor{F32Tensor("a", []int{2}, []float32{1, 2}), F32Tensor("b", []int{1}, []float32{3})}
	s2 := []Tensor{BF16Tensor("c", []int{2}, []float32{4, 5})}
	if err := Write(filepath.Join(dir, "model-00001-of-00002.safetensors"), s1, map[string]string{"format": "pt"}); err != nil {
		t.Fatal(err)
	}
	if err := Write(filepath.Join(dir, "model-00002-of-00002.safetensors"), s2, map[string]string{"format": "pt"}); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, IndexFile), []byte(index), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestShardedDir(t *testing.T) {
	dir := writeShards(t, `{"metadata":{"total_size":16},"weight_map":{
		"a":"model-00001-of-00002.safetensors","b":"model-00001-of-00002.safetensors","c":"model-00002-of-00002.safetensors"}}`)
	f, err := OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if got := f.Names(); !slices.Equal(got, []string{"a", "b", "c"}) {
		t.Errorf("names = %v", got)
	}
	c, err := f.Get("c")
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := c.Float32(); !slices.Equal(v, []float32{4, 5}) {
		t.Errorf("c = %v", v)
	}
	if f.Metadata()["format"] != "pt" {
		t.Errorf("metadata = %v", f.Metadata())
	}

	bad := map[string]string{
		"escape":      `{"weight_map":{"a":"../model-00001-of-00002.safetensors"}}`,
		"wrong shard": `{"weight_map":{"a":"model-00002-of-00002.safetensors"}}`,
		"empty":       `{"weight_map":{}}`,
		"not json":    `{"weight_map":`,
	}
	for name, idx := range bad {
		if _, err := OpenDir(writeShards(t, idx)); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: err = %v, want ErrInvalid", name, err)
		}
	}
	if _, err := OpenDir(writeShards(t, `{"weight_map":{"a":"absent.safetensors"}}`)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("absent shard: err = %v, want ErrNotExist", err)
	}
	if _, err := OpenDir(t.TempDir()); !errors.Is(err, ErrNotFound) {
		t.Errorf("empty dir: err = %v, want ErrNotFound", err)
	}
}

// Expected values below were read from the files with an independent
// Python parser (struct-unpacked float32, float64 left-to-right sums).
func TestSharedFixtures(t *testing.T) {
	cases := []struct {
		dir, tensor      string
		tensors          int
		shape            []int
		first, last, sum float64
	}{
		{fixtures.Path(t, "models", "stories260k"), "model.embed_tokens.weight", 47, []int{512, 64},
			-0.29474878311157227, -0.424032598733902, -752.3677446640068},
		{fixtures.Path(t, "models", "stories260k"), "model.layers.4.mlp.down_proj.weight", 47, []int{64, 172},
			-0.04791264981031418, -0.0035068716388195753, 19.543787761240765},
		{fixtures.Path(t, "fixtures", "tiny-llama"), "lm_head.weight", 21, []int{300, 64},
			0.22566016018390656, 0.05871047452092171, 9.655710854612607},
	}
	for _, c := range cases {
		f, err := OpenDir(c.dir)
		if err != nil {
			t.Fatal(err)
		}
		if len(f.Names()) != c.tensors || f.Metadata()["format"] != "pt" {
			t.Errorf("%s: %d tensors, metadata %v", c.dir, len(f.Names()), f.Metadata())
		}
		tt, err := f.Get(c.tensor)
		if err != nil {
			t.Fatal(err)
		}
		v, err := tt.Float32()
		if err != nil {
			t.Fatal(err)
		}
		var sum float64
		for _, x := range v {
			sum += float64(x)
		}
		if !slices.Equal(tt.Shape, c.shape) || float64(v[0]) != c.first || float64(v[len(v)-1]) != c.last || sum != c.sum {
			t.Errorf("%s: shape %v first %v last %v sum %v", c.tensor, tt.Shape, v[0], v[len(v)-1], sum)
		}
		f.Close()
	}
}
