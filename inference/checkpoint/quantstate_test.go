package checkpoint

import (
	"encoding/json"
	"errors"
	"os"
	"reflect"
	"strings"
	"testing"
)

// A quant_state exactly as bitsandbytes writes it (json.dumps, default
// separators).
const bnbState = `{"quant_type": "nf4", "blocksize": 64, "dtype": "bfloat16", "shape": [2048, 5632], "nested_blocksize": 256, "nested_dtype": "float32", "nested_offset": 0.031066894531}`

func TestParseQuantState(t *testing.T) {
	off := 0.031066894531
	st, err := ParseQuantState([]byte(bnbState))
	if err != nil {
		t.Fatal(err)
	}
	want := QuantState{"nf4", 64, "bfloat16", []int{2048, 5632}, 256, "float32", &off}
	if !reflect.DeepEqual(st, want) {
		t.Fatalf("parsed %+v, want %+v", st, want)
	}
	if err := st.CheckNF4(2048, 5632); err != nil {
		t.Fatal(err)
	}
	if err := st.CheckNF4(5632, 2048); !errors.Is(err, ErrQuantState) || !strings.Contains(err.Error(), "[2048 5632]") {
		t.Fatalf("transposed shape: %v", err)
	}

	edit := func(from, to string) string { return strings.Replace(bnbState, from, to, 1) }
	for _, tc := range []struct {
		name, in string
		is       error // from ParseQuantState, or from CheckNF4 when parsing succeeds
		mention  string
	}{
		{"fp4", edit(`"nf4"`, `"fp4"`), ErrUnsupported, "fp4"},
		{"blocksize 128", edit(`64`, `128`), ErrUnsupported, "128"},
		{"nested blocksize 128", edit(`256`, `128`), ErrUnsupported, "128"},
		{"nested float16", edit(`"nested_dtype": "float32"`, `"nested_dtype": "float16"`), ErrUnsupported, "float16"},
		{"not nested", `{"quant_type": "nf4", "blocksize": 64, "dtype": "float16", "shape": [2048, 5632]}`, ErrUnsupported, "double quantization"},
		{"partly nested", edit(`, "nested_offset": 0.031066894531`, ``), ErrQuantState, "together"},
		{"missing shape", edit(`"shape": [2048, 5632], `, ``), ErrQuantState, "shape"},
		{"missing quant_type", edit(`"quant_type": "nf4", `, ``), ErrQuantState, "quant_type"},
		{"unknown key", edit(`{`, `{"quant_typo": 1, `), ErrQuantState, "quant_typo"},
		{"duplicate key", edit(`{`, `{"blocksize": 128, `), ErrQuantState, "duplicate"},
		{"negative dim", edit(`2048`, `-2048`), ErrQuantState, "negative"},
		{"shape of strings", edit(`[2048, 5632]`, `["2048"]`), ErrQuantState, "shape"},
		{"python NaN offset", edit(`0.031066894531`, `NaN`), ErrQuantState, "invalid"},
		{"trailing data", bnbState + `{}`, ErrQuantState, "after"},
		{"array", `[1]`, ErrQuantState, "object"},
		{"empty", ``, ErrQuantState, "object"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, err := ParseQuantState([]byte(tc.in))
			if err == nil {
				err = st.CheckNF4(2048, 5632)
			}
			if !errors.Is(err, tc.is) || !strings.Contains(err.Error(), tc.mention) {
				t.Fatalf("error %v, want %v mentioning %q", err, tc.is, tc.mention)
			}
		})
	}
}

func FuzzParseQuantState(f *testing.F) {
	f.Add([]byte(bnbState))
	for _, g := range []string{"testdata/tiny-llama.quant_state.golden", "testdata/stories260k.quant_state.golden"} {
		b, err := os.ReadFile(g)
		if err != nil {
			f.Fatal(err)
		}
		for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n")[:3] {
			_, js, _ := strings.Cut(line, "\t")
			f.Add([]byte(js))
		}
	}
	for _, s := range []string{`{}`, `{"quant_type":"fp4","blocksize":64,"dtype":"float16","shape":[]}`,
		`{"quant_type":"nf4","blocksize":64,"dtype":"x","shape":[1,2],"nested_offset":1e308}`, `{"a":{"b":[`, `null`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		st, err := ParseQuantState(b)
		if err != nil {
			return
		}
		// What parses survives a round trip unchanged, and checking it is safe.
		enc, err := json.Marshal(st)
		if err != nil {
			t.Fatalf("re-encoding %+v: %v", st, err)
		}
		again, err := ParseQuantState(enc)
		if err != nil || !reflect.DeepEqual(again, st) {
			t.Fatalf("round trip of %s: %+v, %v; want %+v", enc, again, err, st)
		}
		if len(st.Shape) == 2 {
			_ = st.CheckNF4(st.Shape[0], st.Shape[1])
		}
		_ = st.CheckNF4(1, 1)
	})
}
