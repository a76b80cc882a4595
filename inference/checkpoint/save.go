package checkpoint

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"strings"

	"github.com/loraplex/loraplex/inference/model"
	"github.com/loraplex/loraplex/inference/safetensors"
	"github.com/loraplex/loraplex/quant"
)

// DefaultMaxShardBytes is transformers' default max_shard_size ("5GB").
const DefaultMaxShardBytes = 5_000_000_000

// Options controls Save.
type Options struct {
	// Overwrite replaces an output directory that already holds files.
	Overwrite bool

	// MaxShardBytes splits the weights into model-0000k-of-0000N.safetensors
	// shards plus an index when they exceed it; 0 means
	// DefaultMaxShardBytes. A module's weight and its quantization tensors
	// always share a shard, which transformers requires.
	MaxShardBytes int64

	// Progress, when set, is called after each tensor is written with how
	// many of the total are done.
	Progress func(done, total int)
}

// Validate reports a negative shard size.
func (o Options) Validate() error {
	if o.MaxShardBytes < 0 {
		return fmt.Errorf("checkpoint: MaxShardBytes %d is negative: use 0 for the default", o.MaxShardBytes)
	}
	return nil
}

// auxFiles are copied unchanged from the source directory when present.
var auxFiles = []string{
	"tokenizer.json", "tokenizer_config.json", "generation_config.json",
	"special_tokens_map.json", "chat_template.jinja", "tokenizer.model",
}

// bnbSuffixes are the keys, after "<module>.weight", of the tensors a
// bitsandbytes 4-bit Linear stores beside its packed weight.
var bnbSuffixes = []string{".absmax", ".quant_map", ".nested_absmax", ".nested_quant_map",
	QuantStateKey, ".quant_state.bitsandbytes__fp4"}

// SaveBnb writes m, loaded from srcDir with NF4 quantization, to outDir as a
// bitsandbytes pre-quantized checkpoint. It refuses an outDir that holds
// files; Save offers overwriting and sharding.
func SaveBnb(m *model.Model, srcDir, outDir string, progress func(done, total int)) error {
	return Save(context.Background(), m, srcDir, outDir, Options{Progress: progress})
}

// Save writes m as a bitsandbytes NF4 checkpoint (double quantization, uint8
// storage) into outDir. Every decoder linear weight becomes the six bnb
// tensors of its *quant.NF4; every other tensor of srcDir's safetensors
// (embeddings, norms, lm_head, biases, anything else) is copied byte for
// byte in its stored dtype, streamed from the memory map. config.json is
// srcDir's with a quantization_config added; tokenizer and generation files
// are copied. The directory is assembled beside outDir, synced and renamed
// into place, so outDir is either the old state or complete. Cancelling ctx
// stops the write between tensors and leaves outDir untouched.
func Save(ctx context.Context, m *model.Model, srcDir, outDir string, opt Options) (err error) {
	if err := opt.Validate(); err != nil {
		return err
	}
	if opt.MaxShardBytes == 0 {
		opt.MaxShardBytes = DefaultMaxShardBytes
	}
	outDir = filepath.Clean(outDir)
	if err := checkOutDir(srcDir, outDir, opt.Overwrite); err != nil {
		return err
	}
	src, err := safetensors.OpenDir(srcDir)
	if err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	defer src.Close()
	groups, err := plan(m, src)
	if err != nil {
		return err
	}
	cfg, err := os.ReadFile(filepath.Join(srcDir, "config.json"))
	if err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	if cfg, err = withQuantConfig(cfg); err != nil {
		return fmt.Errorf("checkpoint: %s: %w", srcDir, err)
	}

	parent := filepath.Dir(outDir)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	tmp, err := os.MkdirTemp(parent, "."+filepath.Base(outDir)+".tmp-*")
	if err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	defer func() {
		if err != nil {
			os.RemoveAll(tmp)
		}
	}()
	if err := os.Chmod(tmp, 0o755); err != nil { // MkdirTemp makes it private
		return fmt.Errorf("checkpoint: %w", err)
	}
	meta := map[string]string{}
	maps.Copy(meta, src.Metadata())
	meta["format"] = "pt" // transformers refuses safetensors without it
	if err := writeShards(ctx, tmp, shard(groups, opt.MaxShardBytes), meta, opt.Progress); err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	if err := writeFile(filepath.Join(tmp, "config.json"), func(w io.Writer) error { _, err := w.Write(cfg); return err }); err != nil {
		return err
	}
	for _, name := range auxFiles {
		if err := copyIfPresent(filepath.Join(srcDir, name), filepath.Join(tmp, name)); err != nil {
			return err
		}
	}
	return replaceDir(tmp, outDir, opt.Overwrite)
}

// group is tensors that must share a shard.
type group struct {
	tensors []safetensors.Tensor
	bytes   int64
}

// plan lists the output tensors in the source's name order: the bnb tensors
// of each NF4 linear in place of its weight, every other source tensor as
// is. Data points into the source's memory map or the model's NF4 storage,
// so nothing large is copied.
func plan(m *model.Model, src *safetensors.File) ([]group, error) {
	linear := map[string]*quant.NF4{}
	for i, l := range m.Layers {
		for mod := range model.NumModules {
			name := model.TensorName(i, mod)
			q, ok := l.W[mod].(*quant.NF4)
			if !ok {
				return nil, fmt.Errorf("%w: %s is %T: load the model with Quant \"nf4\" before saving", ErrNotQuantized, name, l.W[mod])
			}
			if !src.Has(name) {
				return nil, fmt.Errorf("%w: the source has no %s", ErrMismatch, name)
			}
			linear[name] = q
		}
	}
	var groups []group
	for _, name := range src.Names() {
		if base, ok := bnbBase(name); ok && linear[base] != nil {
			continue // replaced by the tensors of the model's NF4
		}
		t, _ := src.Get(name) // listed by Names
		if q := linear[name]; q != nil {
			g, err := bnbGroup(name, q, t)
			if err != nil {
				return nil, err
			}
			groups = append(groups, g)
			continue
		}
		groups = append(groups, group{[]safetensors.Tensor{t}, int64(len(t.Data))})
	}
	return groups, nil
}

// bnbBase returns "<module>.weight" for a name with a bitsandbytes suffix.
func bnbBase(name string) (string, bool) {
	for _, s := range bnbSuffixes {
		if b, found := strings.CutSuffix(name, s); found {
			return b, true
		}
	}
	return "", false
}

// bnbGroup is the bnb layout of q (formats.md 2c), after checking that its
// quant_state matches the source tensor it replaces.
func bnbGroup(name string, q *quant.NF4, srcT safetensors.Tensor) (group, error) {
	b := q.Bnb()
	st, err := ParseQuantState(b.QuantState)
	if err != nil {
		return group{}, fmt.Errorf("checkpoint: %s: %w", name, err)
	}
	if err := st.CheckNF4(q.Rows(), q.Cols()); err != nil {
		return group{}, fmt.Errorf("checkpoint: %s: %w", name, err)
	}
	if srcT.DType != safetensors.U8 { // a dense source, not an earlier bnb checkpoint
		if len(srcT.Shape) != 2 || srcT.Shape[0] != q.Rows() || srcT.Shape[1] != q.Cols() {
			return group{}, fmt.Errorf("%w: %s is %v in the source but [%d %d] in the model", ErrMismatch, name, srcT.Shape, q.Rows(), q.Cols())
		}
		if want := srcT.DType.TorchName(); st.DType != want {
			return group{}, fmt.Errorf("%w: %s was quantized from %s, but the source stores %s: load the model from the source directory", ErrMismatch, name, st.DType, want)
		}
	}
	ts := []safetensors.Tensor{
		safetensors.U8Tensor(name, []int{len(b.Weight), 1}, b.Weight),
		safetensors.U8Tensor(name+".absmax", []int{len(b.Absmax)}, b.Absmax),
		safetensors.F32Tensor(name+".quant_map", []int{len(b.QuantMap)}, b.QuantMap),
		safetensors.F32Tensor(name+".nested_absmax", []int{len(b.NestedAbsmax)}, b.NestedAbsmax),
		safetensors.F32Tensor(name+".nested_quant_map", []int{len(b.NestedQuantMap)}, b.NestedQuantMap),
		safetensors.U8Tensor(name+QuantStateKey, []int{len(b.QuantState)}, b.QuantState),
	}
	g := group{tensors: ts}
	for _, t := range ts {
		g.bytes += int64(len(t.Data))
	}
	return g, nil
}

// shard packs groups in order into shards of at most max bytes (a group
// larger than max gets a shard of its own), as transformers' save does.
func shard(groups []group, max int64) [][]safetensors.Tensor {
	var out [][]safetensors.Tensor
	var cur []safetensors.Tensor
	var size int64
	for _, g := range groups {
		if len(cur) > 0 && size+g.bytes > max {
			out = append(out, cur)
			cur, size = nil, 0
		}
		cur = append(cur, g.tensors...)
		size += g.bytes
	}
	return append(out, cur)
}

// writeShards writes model.safetensors, or the shards and their index.
func writeShards(ctx context.Context, dir string, shards [][]safetensors.Tensor, meta map[string]string, progress func(done, total int)) error {
	total, done := 0, 0
	for _, s := range shards {
		total += len(s)
	}
	emit := func(t safetensors.Tensor, w io.Writer) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		if _, err := w.Write(t.Data); err != nil {
			return err
		}
		done++
		if progress != nil {
			progress(done, total)
		}
		return nil
	}
	if len(shards) == 1 {
		return safetensors.WriteStream(filepath.Join(dir, safetensors.SingleFile), shards[0], meta, emit)
	}
	weightMap := map[string]string{}
	var size int64
	for i, s := range shards {
		file := fmt.Sprintf("model-%05d-of-%05d.safetensors", i+1, len(shards))
		if err := safetensors.WriteStream(filepath.Join(dir, file), s, meta, emit); err != nil {
			return err
		}
		for _, t := range s {
			weightMap[t.Name] = file
			size += int64(len(t.Data))
		}
	}
	index := map[string]any{"metadata": map[string]any{"total_size": size}, "weight_map": weightMap}
	b, err := json.MarshalIndent(index, "", "  ") // sorted keys, as transformers writes it
	if err != nil {
		return err
	}
	return writeFile(filepath.Join(dir, safetensors.IndexFile), func(w io.Writer) error {
		_, err := w.Write(append(b, '\n'))
		return err
	})
}
