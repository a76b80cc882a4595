package checkpoint

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// checkOutDir fails early, before any work, when outDir cannot be written:
// it is the source itself, not a directory, or holds files without
// overwrite.
func checkOutDir(srcDir, outDir string, overwrite bool) error {
	st, err := os.Stat(outDir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	if !st.IsDir() {
		return fmt.Errorf("checkpoint: %s exists and is not a directory: choose another output path", outDir)
	}
	if ss, err := os.Stat(srcDir); err == nil && os.SameFile(st, ss) {
		return fmt.Errorf("checkpoint: the output directory %s is the source directory: write the quantized model to a new directory", outDir)
	}
	if overwrite {
		return nil
	}
	entries, err := os.ReadDir(outDir)
	if err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	if len(entries) > 0 {
		return fmt.Errorf("%w: %s (remove it, choose another directory, or ask to overwrite)", ErrExists, outDir)
	}
	return nil
}

// writeFile creates path, lets fill write it, and syncs it to disk.
func writeFile(path string, fill func(w io.Writer) error) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	if err := fill(f); err != nil {
		f.Close()
		return fmt.Errorf("checkpoint: writing %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("checkpoint: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	return nil
}

// copyIfPresent copies the regular file src to dst; a missing src is fine.
func copyIfPresent(src, dst string) error {
	in, err := os.Open(src)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	defer in.Close()
	if st, err := in.Stat(); err != nil || !st.Mode().IsRegular() {
		return fmt.Errorf("checkpoint: %s is not a regular file", src)
	}
	return writeFile(dst, func(w io.Writer) error {
		_, err := io.Copy(w, in)
		return err
	})
}

// replaceDir moves the finished tmp directory to out. An existing out (empty,
// or any when overwrite) is first moved aside, then removed once tmp is in
// place, so out never holds a mix of old and new files.
func replaceDir(tmp, out string, overwrite bool) error {
	if err := syncDir(tmp); err != nil {
		return err
	}
	aside := ""
	if _, err := os.Lstat(out); err == nil {
		if err := checkOutDir("", out, overwrite); err != nil { // it may have changed meanwhile
			return err
		}
		aside = tmp + ".old"
		if err := os.Rename(out, aside); err != nil {
			return fmt.Errorf("checkpoint: moving the old %s aside: %w", out, err)
		}
	}
	if err := os.Rename(tmp, out); err != nil {
		if aside != "" {
			os.Rename(aside, out) // best effort: put the old directory back
		}
		return fmt.Errorf("checkpoint: %w", err)
	}
	if err := syncDir(filepath.Dir(out)); err != nil {
		return err
	}
	if aside != "" {
		if err := os.RemoveAll(aside); err != nil {
			return fmt.Errorf("checkpoint: the new checkpoint is in place, but removing the old one at %s failed: %w", aside, err)
		}
	}
	return nil
}

// syncDir persists a directory's entries (new files, renames).
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, os.ErrInvalid) {
		return fmt.Errorf("checkpoint: syncing %s: %w", dir, err)
	}
	return nil
}
