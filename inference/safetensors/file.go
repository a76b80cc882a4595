package safetensors

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// File is a set of tensors from one safetensors file or the shards of a
// sharded checkpoint. Tensor data points into read-only memory maps that
// stay valid until Close; copy what must outlive the File.
type File struct {
	name    string
	regions []region
	tensors map[string]Tensor
	names   []string
	meta    map[string]string
}

type region struct {
	data  []byte
	unmap func([]byte) error
}

// Open memory-maps the safetensors file at path and validates its header.
func Open(path string) (*File, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("safetensors: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("safetensors: %w", err)
	}
	if st.Size() < 8 {
		return nil, fmt.Errorf("safetensors: %s: %w", path,
			invalid("file is %d bytes, too short for the 8-byte header length", st.Size()))
	}
	data, unmap, err := mapFile(f, st.Size())
	if err != nil {
		return nil, fmt.Errorf("safetensors: mmap %s: %w", path, err)
	}
	sf, err := parseFile(path, data)
	if err != nil {
		unmap(data)
		return nil, err
	}
	sf.regions = []region{{data, unmap}}
	return sf, nil
}

// FromBytes parses an in-memory safetensors file. The tensors share b.
func FromBytes(name string, b []byte) (*File, error) {
	return parseFile(name, b)
}

func parseFile(name string, b []byte) (*File, error) {
	wrap := func(err error) error { return fmt.Errorf("safetensors: %s: %w", name, err) }
	if len(b) < 8 {
		return nil, wrap(invalid("file is %d bytes, too short for the 8-byte header length", len(b)))
	}
	n := binary.LittleEndian.Uint64(b)
	if n > MaxHeaderSize {
		return nil, wrap(invalid("header length %d exceeds the %d-byte limit (not a safetensors file?)", n, MaxHeaderSize))
	}
	if n > uint64(len(b)-8) {
		return nil, wrap(invalid("header length %d runs past the end of the %d-byte file (truncated?)", n, len(b)))
	}
	start := 8 + int(n)
	h, err := ParseHeader(b[8:start], int64(len(b)-start))
	if err != nil {
		return nil, wrap(err)
	}
	f := &File{name: name, tensors: make(map[string]Tensor, len(h.Tensors)), meta: h.Metadata}
	buf := b[start:]
	for _, ti := range h.Tensors {
		f.tensors[ti.Name] = Tensor{
			Name:  ti.Name,
			DType: ti.DType,
			Shape: ti.Shape,
			Data:  buf[ti.Begin:ti.End:ti.End],
		}
	}
	f.names = slices.Sorted(maps.Keys(f.tensors))
	return f, nil
}

// Index file and single-file names Hugging Face uses for model weights.
const (
	IndexFile  = "model.safetensors.index.json"
	SingleFile = "model.safetensors"
)

// OpenDir opens the weights of a Hugging Face model directory: the shards
// listed in model.safetensors.index.json when it exists, otherwise
// model.safetensors.
func OpenDir(dir string) (*File, error) {
	idx, err := os.ReadFile(filepath.Join(dir, IndexFile))
	if errors.Is(err, os.ErrNotExist) {
		single := filepath.Join(dir, SingleFile)
		if _, err := os.Stat(single); err != nil {
			return nil, fmt.Errorf("safetensors: %s has neither %s nor %s: %w", dir, SingleFile, IndexFile, ErrNotFound)
		}
		return Open(single)
	}
	if err != nil {
		return nil, fmt.Errorf("safetensors: %w", err)
	}
	return openSharded(dir, idx)
}

func openSharded(dir string, idx []byte) (*File, error) {
	indexPath := filepath.Join(dir, IndexFile)
	var index struct {
		WeightMap map[string]string `json:"weight_map"`
	}
	if err := json.Unmarshal(idx, &index); err != nil {
		return nil, fmt.Errorf("safetensors: %s: %w: %v", indexPath, ErrInvalid, err)
	}
	if len(index.WeightMap) == 0 {
		return nil, fmt.Errorf("safetensors: %s: %w: empty weight_map", indexPath, ErrInvalid)
	}
	shards := make(map[string]bool)
	for name, shard := range index.WeightMap {
		if shard == "" || shard == "." || shard == ".." || strings.ContainsAny(shard, `/\`) {
			return nil, fmt.Errorf("safetensors: %s: %w: tensor %q maps to %q, which is not a file name in the same directory",
				indexPath, ErrInvalid, name, shard)
		}
		shards[shard] = true
	}
	out := &File{name: dir, tensors: make(map[string]Tensor), meta: make(map[string]string)}
	owner := make(map[string]string)
	for _, shard := range slices.Sorted(maps.Keys(shards)) {
		sf, err := Open(filepath.Join(dir, shard))
		if err != nil {
			out.Close()
			return nil, err
		}
		out.regions = append(out.regions, sf.regions...)
		maps.Copy(out.meta, sf.meta)
		for name, t := range sf.tensors {
			if prev, dup := owner[name]; dup {
				out.Close()
				return nil, fmt.Errorf("safetensors: %s: %w: tensor %q is in both %s and %s", dir, ErrInvalid, name, prev, shard)
			}
			owner[name] = shard
			out.tensors[name] = t
		}
	}
	for name, shard := range index.WeightMap {
		if owner[name] != shard {
			out.Close()
			return nil, fmt.Errorf("safetensors: %s: %w: weight_map puts %q in %s, but that shard does not hold it",
				indexPath, ErrInvalid, name, shard)
		}
	}
	out.names = slices.Sorted(maps.Keys(out.tensors))
	return out, nil
}

// Get returns the named tensor.
func (f *File) Get(name string) (Tensor, error) {
	if f.tensors == nil {
		return Tensor{}, fmt.Errorf("safetensors: %s: %w", f.name, ErrClosed)
	}
	t, ok := f.tensors[name]
	if !ok {
		return Tensor{}, fmt.Errorf("safetensors: %s: %w: %q (the file has %d tensors)", f.name, ErrNotFound, name, len(f.tensors))
	}
	return t, nil
}

// Has reports whether the named tensor exists.
func (f *File) Has(name string) bool {
	_, ok := f.tensors[name]
	return ok
}

// Names lists the tensor names in sorted order.
func (f *File) Names() []string { return slices.Clone(f.names) }

// Metadata returns the __metadata__ map (merged over shards); it may be empty.
func (f *File) Metadata() map[string]string { return maps.Clone(f.meta) }

// Close unmaps the file. Tensor data obtained from it must not be used
// afterwards. Closing twice is harmless.
func (f *File) Close() error {
	var errs []error
	for _, r := range f.regions {
		if err := r.unmap(r.data); err != nil {
			errs = append(errs, fmt.Errorf("safetensors: unmap %s: %w", f.name, err))
		}
	}
	f.regions, f.tensors, f.names = nil, nil, nil
	return errors.Join(errs...)
}
