package safetensors

import (
	"bufio"
	"bytes"
	"cmp"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"unicode/utf8"
)

// Write writes tensors and metadata to path atomically: the file appears
// complete under its name or not at all.
func Write(path string, tensors []Tensor, metadata map[string]string) error {
	for _, t := range tensors {
		if err := t.checkSize(); err != nil {
			return fmt.Errorf("safetensors: write %s: %w", path, err)
		}
	}
	return WriteStream(path, tensors, metadata, func(t Tensor, w io.Writer) error {
		_, err := w.Write(t.Data)
		return err
	})
}

// WriteStream writes a file whose tensor bytes are produced one tensor at a
// time, so a writer never needs the whole model in memory. tensors supply
// names, dtypes and shapes (Data is not read); the header is written first
// with computed offsets, then emit is called once per tensor in file order
// and must write exactly that tensor's byte size to w. The file is written
// to a temporary name, synced and renamed into place.
func WriteStream(path string, tensors []Tensor, metadata map[string]string, emit func(t Tensor, w io.Writer) error) (err error) {
	wrap := func(err error) error { return fmt.Errorf("safetensors: write %s: %w", path, err) }
	order, hdr, err := buildHeader(tensors, metadata)
	if err != nil {
		return wrap(err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return wrap(err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if err := tmp.Chmod(0o644); err != nil { // CreateTemp makes it private
		return wrap(err)
	}
	bw := bufio.NewWriterSize(tmp, 1<<20)
	if _, err := bw.Write(hdr); err != nil {
		return wrap(err)
	}
	cw := &countWriter{w: bw}
	for _, t := range order {
		size, _ := byteSize(t.DType, t.Shape)
		cw.n = 0
		if err := emit(t, cw); err != nil {
			return wrap(fmt.Errorf("tensor %q: %w", t.Name, err))
		}
		if cw.n != size {
			return wrap(fmt.Errorf("tensor %q: wrote %d bytes, want %d", t.Name, cw.n, size))
		}
	}
	if err := bw.Flush(); err != nil {
		return wrap(err)
	}
	if err := tmp.Sync(); err != nil {
		return wrap(err)
	}
	if err := tmp.Close(); err != nil {
		return wrap(err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return wrap(err)
	}
	// Persist the rename; not every platform can sync a directory.
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// buildHeader validates the tensor list, orders it as the reference writer
// does (descending dtype alignment, then name, so every tensor is naturally
// aligned) and returns the 8-byte length prefix plus the space-padded JSON.
func buildHeader(tensors []Tensor, metadata map[string]string) ([]Tensor, []byte, error) {
	order := slices.Clone(tensors)
	seen := make(map[string]bool, len(order))
	for _, t := range order {
		switch {
		case t.Name == metadataKey:
			return nil, nil, fmt.Errorf("%w: tensor name %q is reserved", ErrInvalid, metadataKey)
		case seen[t.Name]:
			return nil, nil, fmt.Errorf("%w: duplicate tensor %q", ErrInvalid, t.Name)
		case !utf8.ValidString(t.Name):
			return nil, nil, fmt.Errorf("%w: tensor name %q is not valid UTF-8", ErrInvalid, t.Name)
		case !t.DType.Valid():
			return nil, nil, fmt.Errorf("%w: tensor %q: unknown dtype %q", ErrInvalid, t.Name, t.DType)
		}
		seen[t.Name] = true
	}
	slices.SortFunc(order, func(a, b Tensor) int {
		if c := cmp.Compare(b.DType.alignment(), a.DType.alignment()); c != 0 {
			return c
		}
		return cmp.Compare(a.Name, b.Name)
	})
	var h bytes.Buffer
	h.WriteString("{")
	if len(metadata) > 0 {
		h.WriteString(`"__metadata__":{`)
		for i, k := range slices.Sorted(maps.Keys(metadata)) {
			if i > 0 {
				h.WriteByte(',')
			}
			writeJSONString(&h, k)
			h.WriteByte(':')
			writeJSONString(&h, metadata[k])
		}
		h.WriteString("}")
	}
	var off int64
	for i, t := range order {
		size, err := byteSize(t.DType, t.Shape)
		if err != nil {
			return nil, nil, fmt.Errorf("tensor %q: %w", t.Name, err)
		}
		if i > 0 || len(metadata) > 0 {
			h.WriteByte(',')
		}
		writeJSONString(&h, t.Name)
		fmt.Fprintf(&h, `:{"dtype":"%s","shape":[`, t.DType)
		for j, d := range t.Shape {
			if j > 0 {
				h.WriteByte(',')
			}
			h.WriteString(strconv.Itoa(d))
		}
		fmt.Fprintf(&h, `],"data_offsets":[%d,%d]}`, off, off+size)
		off += size
	}
	h.WriteString("}")
	for h.Len()%8 != 0 {
		h.WriteByte(' ')
	}
	out := make([]byte, 8, 8+h.Len())
	binary.LittleEndian.PutUint64(out, uint64(h.Len()))
	return order, append(out, h.Bytes()...), nil
}

func writeJSONString(b *bytes.Buffer, s string) {
	enc, _ := json.Marshal(s) // a string always marshals
	b.Write(enc)
}
