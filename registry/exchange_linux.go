package registry

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

// exchange swaps two directories in one atomic step, so readers see the old
// adapter or the new one and never a missing one. File systems without
// RENAME_EXCHANGE get the two-rename fallback.
func exchange(newDir, old string) error {
	err := unix.Renameat2(unix.AT_FDCWD, newDir, unix.AT_FDCWD, old, unix.RENAME_EXCHANGE)
	if errors.Is(err, unix.ENOSYS) || errors.Is(err, unix.EINVAL) || errors.Is(err, unix.EOPNOTSUPP) {
		return renameAside(newDir, old)
	}
	if err != nil {
		return &os.LinkError{Op: "exchange", Old: newDir, New: old, Err: err}
	}
	return nil
}
