package adapters

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// shortHashLen is how many hex digits of the content hash go into an ID:
// 48 bits, ample to tell the versions of one adapter name apart.
const shortHashLen = 12

// Hash returns the hex SHA-256 of an adapter directory's content: every
// regular file at its top level whose name does not start with ".", in name
// order, each framed by its name and length so that different directories
// never hash alike. Symbolic links are followed (Hugging Face caches are made
// of them); sub-directories, such as trainer checkpoints, are not part of the
// adapter.
func Hash(dir string) (string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return "", fmt.Errorf("adapters: hash: %w", err)
	}
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), ".") {
			names = append(names, e.Name())
		}
	}
	slices.Sort(names)
	h := sha256.New()
	var frame [8]byte
	for _, name := range names {
		path := filepath.Join(dir, name)
		st, err := os.Stat(path)
		if err != nil {
			return "", fmt.Errorf("adapters: hash: %w", err)
		}
		if !st.Mode().IsRegular() {
			continue
		}
		binary.LittleEndian.PutUint64(frame[:], uint64(len(name)))
		h.Write(frame[:])
		h.Write([]byte(name))
		binary.LittleEndian.PutUint64(frame[:], uint64(st.Size()))
		h.Write(frame[:])
		if err := hashFile(h, path, st.Size()); err != nil {
			return "", fmt.Errorf("adapters: hash: %w", err)
		}
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func hashFile(w io.Writer, path string, size int64) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	n, err := io.Copy(w, f)
	if err != nil {
		return err
	}
	if n != size {
		return fmt.Errorf("%s changed while being hashed", path)
	}
	return nil
}

// ID is the identity of one version of a named adapter: name@ followed by
// the first 12 hex digits of its content hash. Caches keyed by it can never
// mix two versions that share a name.
func ID(name, hash string) string {
	return name + "@" + hash[:min(shortHashLen, len(hash))]
}
