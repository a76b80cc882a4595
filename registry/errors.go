package registry

import "errors"

var (
	// ErrName means an adapter name is not acceptable.
	ErrName = errors.New("invalid adapter name")
	// ErrNotFound means no adapter has the name.
	ErrNotFound = errors.New("adapter not found")
	// ErrExists means an adapter with the name already exists.
	ErrExists = errors.New("adapter already exists")
	// ErrClosed means the registry was closed.
	ErrClosed = errors.New("registry closed")
)
