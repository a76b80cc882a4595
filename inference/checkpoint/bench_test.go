package checkpoint

import (
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/loraplex/loraplex/inference/synth"
)

// BenchmarkSave writes a 4 M-parameter F32 model as a bnb checkpoint; the
// throughput is of the source bytes.
func BenchmarkSave(b *testing.B) {
	dir := b.TempDir()
	src := filepath.Join(dir, "src")
	shape := synth.Shape{Name: "bench", Hidden: 256, Intermediate: 704, Layers: 4, Heads: 4, KVHeads: 2, Vocab: 2048, MaxPos: 512}
	if err := synth.Write(src, shape, 1, "F32"); err != nil {
		b.Fatal(err)
	}
	st, err := os.Stat(filepath.Join(src, "model.safetensors"))
	if err != nil {
		b.Fatal(err)
	}
	m := load(b, src, "nf4")
	b.SetBytes(st.Size())
	b.ResetTimer()
	for i := range b.N {
		if err := SaveBnb(m, src, filepath.Join(dir, strconv.Itoa(i)), nil); err != nil {
			b.Fatal(err)
		}
	}
}
