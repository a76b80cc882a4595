package adapters

import (
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/loraplex/loraplex/inference/config"
	"github.com/loraplex/loraplex/inference/model"
	"github.com/loraplex/loraplex/inference/safetensors"
)

// tinyBase has the fixture model's shapes: hidden 64, 2 layers, 4 heads of
// 16, 2 KV heads, FFN 160.
func tinyBase() *config.Config {
	return &config.Config{Arch: "llama", Hidden: 64, Intermediate: 160, Layers: 2, Heads: 4, KVHeads: 2, HeadDim: 16, Vocab: 300, MaxPos: 128}
}

// dims are the (in, out) features of each module on tinyBase, written out
// by hand rather than derived by the code under test.
var tinyDims = map[string][2]int{
	"q_proj": {64, 64}, "k_proj": {64, 32}, "v_proj": {64, 32}, "o_proj": {64, 64},
	"gate_proj": {64, 160}, "up_proj": {64, 160}, "down_proj": {160, 64},
}

var parents = map[string]string{
	"q_proj": "self_attn", "k_proj": "self_attn", "v_proj": "self_attn", "o_proj": "self_attn",
	"gate_proj": "mlp", "up_proj": "mlp", "down_proj": "mlp",
}

func key(layer int, mod, ab string) string {
	return "base_model.model.model.layers." + itoa(layer) + "." + parents[mod] + "." + mod + ".lora_" + ab + ".weight"
}

func itoa(i int) string { return string(rune('0' + i)) }

func randVals(rng *rand.Rand, n int) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(rng.NormFloat64() * 0.1)
	}
	return v
}

// loraTensors builds A and B tensors of rank r for the given layer/module
// pairs on tinyBase.
func loraTensors(rng *rand.Rand, r map[string]int, mods map[int][]string) []safetensors.Tensor {
	var ts []safetensors.Tensor
	for layer, ms := range mods {
		for _, m := range ms {
			d := tinyDims[m]
			rank := r[m]
			ts = append(ts,
				safetensors.F32Tensor(key(layer, m, "A"), []int{rank, d[0]}, randVals(rng, rank*d[0])),
				safetensors.F32Tensor(key(layer, m, "B"), []int{d[1], rank}, randVals(rng, d[1]*rank)))
		}
	}
	return ts
}

// writeDir writes an adapter directory from a config text and tensors.
func writeDir(t *testing.T, cfg string, ts []safetensors.Tensor) string {
	t.Helper()
	dir := t.TempDir()
	if cfg != "" {
		if err := os.WriteFile(filepath.Join(dir, ConfigFile), []byte(cfg), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if ts != nil {
		if err := safetensors.Write(filepath.Join(dir, WeightsFile), ts, nil); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func allLayers(mods ...string) map[int][]string { return map[int][]string{0: mods, 1: mods} }

func uniform(r int) map[string]int {
	m := map[string]int{}
	for k := range tinyDims {
		m[k] = r
	}
	return m
}

func mustLoad(t *testing.T, dir string) (*model.Adapter, *PEFTConfig) {
	t.Helper()
	a, c, err := Load(dir, tinyBase(), "test@0")
	if err != nil {
		t.Fatal(err)
	}
	return a, c
}

// tensorValues reads a tensor straight from a file, as the reference for
// what the loader must hand over.
func tensorValues(t *testing.T, path, name string) ([]int, []float32) {
	t.Helper()
	f, err := safetensors.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tt, err := f.Get(name)
	if err != nil {
		t.Fatal(err)
	}
	v, err := tt.Float32()
	if err != nil {
		t.Fatal(err)
	}
	return tt.Shape, v
}

func equalF32(a, b []float32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
