package registry

import (
	"errors"
	"fmt"
	"hash/maphash"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/loraplex/loraplex/adapters"
)

// contentDir is the name of the adapter directory inside a staging area.
const contentDir = "adapter"

// Store is a directory holding one sub-directory per adapter, named by the
// escaped adapter name. Every change is atomic: an adapter directory is
// complete or absent, and a replacement swaps the whole directory at once.
// The store owns its directory; edit adapters through it, not in place.
type Store struct {
	dir  string
	seed maphash.Seed
	// locks serialise changes to a name with reads of it (striped by name),
	// so a loader never sees half of one version and half of another.
	locks [64]sync.RWMutex

	mu      sync.Mutex
	hashes  map[string]string // content hashes already computed, by name
	watches []func(name, hash string)
}

// OpenStore opens (creating if needed) the store in dir and removes staging
// areas a crash may have left behind.
func OpenStore(dir string) (*Store, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("registry: open store: %w", err)
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("registry: open store: %w", err)
	}
	for _, e := range ents {
		// Valid names never start with '.', so hidden entries are ours.
		if strings.HasPrefix(e.Name(), ".") {
			if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
				return nil, fmt.Errorf("registry: open store: removing leftover %s: %w", e.Name(), err)
			}
		}
	}
	return &Store{dir: dir, seed: maphash.MakeSeed(), hashes: map[string]string{}}, nil
}

// Dir is the store's directory.
func (s *Store) Dir() string { return s.dir }

// onChange registers fn to run after every change to a name, with the name's
// lock held, so changes reach fn in the order they happen. hash is "" when
// the adapter was removed.
func (s *Store) onChange(fn func(name, hash string)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.watches = append(s.watches, fn)
}

func (s *Store) lock(name string) *sync.RWMutex {
	return &s.locks[maphash.String(s.seed, name)%uint64(len(s.locks))]
}

func (s *Store) path(name string) string { return filepath.Join(s.dir, encodeName(name)) }

// Path returns the directory of the named adapter.
func (s *Store) Path(name string) (string, error) {
	if err := ValidateName(name); err != nil {
		return "", err
	}
	p := s.path(name)
	if !isDir(p) {
		return "", fmt.Errorf("%w: %q", ErrNotFound, name)
	}
	return p, nil
}

// Has reports whether the named adapter exists.
func (s *Store) Has(name string) bool {
	_, err := s.Path(name)
	return err == nil
}

// List returns the names of the stored adapters, sorted.
func (s *Store) List() ([]string, error) {
	ents, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, fmt.Errorf("registry: list: %w", err)
	}
	var names []string
	for _, e := range ents {
		if !e.IsDir() {
			continue
		}
		if name, ok := decodeName(e.Name()); ok {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	return names, nil
}

// Hash returns the content hash of the named adapter (see adapters.Hash).
func (s *Store) Hash(name string) (string, error) {
	var h string
	err := s.Read(name, func(_, hash string) error { h = hash; return nil })
	return h, err
}

// Read calls fn with the adapter's directory and content hash, holding off
// changes to the adapter until fn returns.
func (s *Store) Read(name string, fn func(dir, hash string) error) error {
	if err := ValidateName(name); err != nil {
		return err
	}
	l := s.lock(name)
	l.RLock()
	defer l.RUnlock()
	p := s.path(name)
	if !isDir(p) {
		return fmt.Errorf("%w: %q", ErrNotFound, name)
	}
	s.mu.Lock()
	h, ok := s.hashes[name]
	s.mu.Unlock()
	if !ok {
		var err error
		if h, err = adapters.Hash(p); err != nil {
			return err
		}
		s.mu.Lock()
		s.hashes[name] = h
		s.mu.Unlock()
	}
	return fn(p, h)
}

// Add copies the adapter directory src into the store as name and returns
// its content hash. Only the top-level files are copied (symbolic links
// followed); hidden files and sub-directories such as checkpoints are not
// part of an adapter.
func (s *Store) Add(name, src string) (string, error) {
	return s.put(name, false, copyFrom(src))
}

// Replace is Add that replaces an existing adapter of that name at once.
func (s *Store) Replace(name, src string) (string, error) {
	return s.put(name, true, copyFrom(src))
}

// Put stores the adapter that write creates in the directory it is given
// (which does not exist yet), e.g. with adapters.SaveLoRA. With replace
// false an existing adapter of that name is an error.
func (s *Store) Put(name string, replace bool, write func(dir string) error) (string, error) {
	return s.put(name, replace, write)
}

func (s *Store) put(name string, replace bool, write func(dir string) error) (string, error) {
	st, err := s.stage(name, write)
	if err != nil {
		return "", err
	}
	defer st.discard()
	if err := s.commit(st, replace, nil); err != nil {
		return "", err
	}
	return st.hash, nil
}

// staged is an adapter written to a hidden directory of the store, ready to
// be renamed into place.
type staged struct {
	name string
	area string // hidden staging directory
	dir  string // the adapter inside it
	hash string
}

// stage creates a staging area, has write fill it, syncs it and hashes it.
func (s *Store) stage(name string, write func(dir string) error) (_ *staged, err error) {
	if err := ValidateName(name); err != nil {
		return nil, err
	}
	wrap := func(err error) error { return fmt.Errorf("registry: store %q: %w", name, err) }
	area, err := os.MkdirTemp(s.dir, ".tmp-")
	if err != nil {
		return nil, wrap(err)
	}
	st := &staged{name: name, area: area, dir: filepath.Join(area, contentDir)}
	defer func() {
		if err != nil {
			st.discard()
		}
	}()
	if err := write(st.dir); err != nil {
		return nil, wrap(err)
	}
	if _, err := os.Stat(filepath.Join(st.dir, adapters.ConfigFile)); err != nil {
		return nil, wrap(fmt.Errorf("%w: no %s was written", adapters.ErrNotAdapter, adapters.ConfigFile))
	}
	if err := syncFiles(st.dir); err != nil {
		return nil, wrap(err)
	}
	if st.hash, err = adapters.Hash(st.dir); err != nil {
		return nil, wrap(err)
	}
	return st, nil
}

func (st *staged) discard() { os.RemoveAll(st.area) }

// commit moves a staged adapter into place, atomically replacing an old
// version when replace is set. then runs, like the change watchers, with
// the name's lock still held.
func (s *Store) commit(st *staged, replace bool, then func()) error {
	l := s.lock(st.name)
	l.Lock()
	defer l.Unlock()
	final := s.path(st.name)
	exists := isDir(final)
	var err error
	switch {
	case exists && !replace:
		return fmt.Errorf("registry: %w: %q (remove or replace it)", ErrExists, st.name)
	case exists:
		// The old version lands in the staging area and goes with it.
		err = exchange(st.dir, final)
	default:
		err = os.Rename(st.dir, final)
	}
	if err != nil {
		return fmt.Errorf("registry: store %q: %w", st.name, err)
	}
	if err := adapters.SyncDir(s.dir); err != nil {
		return fmt.Errorf("registry: store %q: %w", st.name, err)
	}
	s.changed(st.name, st.hash)
	if then != nil {
		then()
	}
	return nil
}

// Remove deletes the named adapter.
func (s *Store) Remove(name string) error {
	if err := ValidateName(name); err != nil {
		return err
	}
	area, err := s.detach(name)
	if err != nil {
		return err
	}
	os.RemoveAll(area)
	return nil
}

// detach renames the adapter out of sight, so removal is atomic however
// long deleting its files takes.
func (s *Store) detach(name string) (string, error) {
	l := s.lock(name)
	l.Lock()
	defer l.Unlock()
	final := s.path(name)
	if !isDir(final) {
		return "", fmt.Errorf("registry: %w: %q", ErrNotFound, name)
	}
	area, err := os.MkdirTemp(s.dir, ".old-")
	if err != nil {
		return "", fmt.Errorf("registry: remove %q: %w", name, err)
	}
	if err := os.Rename(final, filepath.Join(area, contentDir)); err != nil {
		os.RemoveAll(area)
		return "", fmt.Errorf("registry: remove %q: %w", name, err)
	}
	if err := adapters.SyncDir(s.dir); err != nil {
		return "", fmt.Errorf("registry: remove %q: %w", name, err)
	}
	s.changed(name, "")
	return area, nil
}

func (s *Store) changed(name, hash string) {
	s.mu.Lock()
	if hash == "" {
		delete(s.hashes, name)
	} else {
		s.hashes[name] = hash
	}
	watches := slices.Clone(s.watches)
	s.mu.Unlock()
	for _, w := range watches {
		w(name, hash)
	}
}

// copyFrom returns a writer that copies src's top-level regular files.
func copyFrom(src string) func(dir string) error {
	return func(dir string) error {
		if _, err := os.Stat(filepath.Join(src, adapters.ConfigFile)); err != nil {
			return fmt.Errorf("%w: %s has no %s", adapters.ErrNotAdapter, src, adapters.ConfigFile)
		}
		ents, err := os.ReadDir(src)
		if err != nil {
			return err
		}
		if err := os.Mkdir(dir, 0o755); err != nil {
			return err
		}
		for _, e := range ents {
			if strings.HasPrefix(e.Name(), ".") {
				continue
			}
			if err := copyFile(filepath.Join(src, e.Name()), filepath.Join(dir, e.Name())); err != nil {
				return err
			}
		}
		return nil
	}
}

// copyFile copies a regular file (following links) and syncs the copy;
// anything else is skipped.
func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	st, err := in.Stat()
	if err != nil || !st.Mode().IsRegular() {
		return err
	}
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	if err := out.Sync(); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// syncFiles makes every top-level file of dir, and dir itself, durable
// before the directory is renamed into place: a writer callback may not
// have synced what it wrote.
func syncFiles(dir string) error {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range ents {
		if !e.Type().IsRegular() {
			continue
		}
		f, err := os.Open(filepath.Join(dir, e.Name()))
		if err != nil {
			return err
		}
		err = f.Sync()
		f.Close()
		if err != nil {
			return err
		}
	}
	return adapters.SyncDir(dir)
}

func isDir(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.IsDir()
}

// renameAside is the portable fallback for exchange: move old out of the
// way into the place of the new directory, then the new one in. A crash in
// between leaves the name absent, never half-written.
func renameAside(newDir, old string) error {
	aside := newDir + ".old"
	if err := os.Rename(old, aside); err != nil {
		return err
	}
	if err := os.Rename(newDir, old); err != nil {
		if rerr := os.Rename(aside, old); rerr != nil {
			return errors.Join(err, rerr)
		}
		return err
	}
	return os.Rename(aside, newDir)
}
