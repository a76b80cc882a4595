package config

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// FuzzParse checks that no input crashes Parse, that every error wraps a
// sentinel, and that every accepted config passes Validate and yields
// HeadDim/2 finite inverse frequencies.
func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "*.json"))
	bad, _ := filepath.Glob(filepath.Join("testdata", "bad", "*.json"))
	files = append(files, bad...)
	for _, name := range files {
		if b, err := os.ReadFile(name); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte(`{"architectures":["LlamaForCausalLM"],"hidden_size":64,"num_attention_heads":4,"rope_scaling":{"type":"linear","factor":2}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := Parse(b)
		if err != nil {
			if !errors.Is(err, ErrInvalid) && !errors.Is(err, ErrUnsupported) {
				t.Fatalf("error without a sentinel: %v", err)
			}
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("Parse accepted a config Validate rejects: %v", err)
		}
		if c.HeadDim > 1<<16 {
			return // do not allocate absurd tables
		}
		inv := c.InvFreq()
		if len(inv) != c.HeadDim/2 {
			t.Fatalf("InvFreq has %d values, want %d", len(inv), c.HeadDim/2)
		}
	})
}
