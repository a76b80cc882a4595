//go:build !linux

package registry

// exchange replaces old with newDir; without an atomic swap the name is
// briefly absent, never half-written.
func exchange(newDir, old string) error { return renameAside(newDir, old) }
