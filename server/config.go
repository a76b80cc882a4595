package server

import (
	"errors"
	"fmt"
	"path/filepath"
	"time"
)

// DefaultAddr is where cmd should listen unless told otherwise: loopback
// only, so exposing the API is an explicit choice (vLLM's port).
const DefaultAddr = "127.0.0.1:8000"

// ErrConfig marks an invalid Config.
var ErrConfig = errors.New("invalid server config")

// Config holds the server's options; cmd fills it from flags and environment.
type Config struct {
	// ModelName is the base model's id in /v1/models; requests naming it
	// (or sending an empty model) use no adapter.
	ModelName string
	// ModelRoot is reported as the base's `root` in /v1/models.
	ModelRoot string
	// APIKey, when set, is required as `Authorization: Bearer <key>` on the
	// API routes (everything except /health and /metrics).
	APIKey string
	// AdminKey guards adapter administration; when empty, APIKey does.
	AdminKey string
	// AdapterImportRoots are the only directories /v1/load_lora_adapter may
	// read from; empty disables loading by path.
	AdapterImportRoots []string
	// MaxBodyBytes caps a JSON request body.
	MaxBodyBytes int64
	// MaxN caps `n` (choices per request) and prompts × n of a legacy
	// completion, so one request cannot occupy the whole batch.
	MaxN int
	// MaxSequences caps prompts × n of one legacy completion request
	// (evaluation harnesses batch many prompts into one request).
	MaxSequences int
	// RequestTimeout bounds one request from arrival to its last byte.
	RequestTimeout time.Duration
	// ShutdownGrace is how long Shutdown lets running requests finish
	// before cancelling them.
	ShutdownGrace time.Duration
	// ReadHeaderTimeout protects against slow-header clients.
	ReadHeaderTimeout time.Duration
	// BodyReadTimeout bounds reading one request body, so a client that
	// trickles its body cannot hold a handler.
	BodyReadTimeout time.Duration
	// WriteTimeout bounds each write of a response: a client that stops
	// reading for this long is dropped, which frees its sequences.
	WriteTimeout time.Duration
	// IdleTimeout closes keep-alive connections idle this long.
	IdleTimeout time.Duration
	// SystemFingerprint is echoed in completions; change it when the model
	// or the engine's numerics change.
	SystemFingerprint string
	// RetryAfter is the Retry-After value (seconds) sent with 429.
	RetryAfter int
}

// DefaultConfig returns the defaults: no keys, no import roots, 8 MiB bodies.
func DefaultConfig() Config {
	return Config{
		ModelName:         "loraplex",
		MaxBodyBytes:      8 << 20,
		MaxN:              16,
		MaxSequences:      256,
		RequestTimeout:    10 * time.Minute,
		ShutdownGrace:     30 * time.Second,
		ReadHeaderTimeout: 10 * time.Second,
		WriteTimeout:      30 * time.Second,
		BodyReadTimeout:   time.Minute,
		IdleTimeout:       2 * time.Minute,
		SystemFingerprint: "fp_loraplex",
		RetryAfter:        1,
	}
}

// Validate reports the first invalid option.
func (c *Config) Validate() error {
	switch {
	case c.ModelName == "":
		return fmt.Errorf("%w: the model name is empty; give the base model an id", ErrConfig)
	case c.MaxBodyBytes < 1024:
		return fmt.Errorf("%w: max body bytes %d is below 1024", ErrConfig, c.MaxBodyBytes)
	case c.MaxN < 1 || c.MaxSequences < c.MaxN:
		return fmt.Errorf("%w: max n %d must be at least 1 and max sequences %d at least max n", ErrConfig, c.MaxN, c.MaxSequences)
	case c.RequestTimeout <= 0 || c.ReadHeaderTimeout <= 0 || c.WriteTimeout <= 0 || c.BodyReadTimeout <= 0 || c.IdleTimeout <= 0 || c.ShutdownGrace < 0:
		return fmt.Errorf("%w: request, read-header, body-read, write and idle timeouts must be positive, shutdown grace non-negative", ErrConfig)
	case c.RetryAfter < 1:
		return fmt.Errorf("%w: retry-after %d must be at least 1 second", ErrConfig, c.RetryAfter)
	}
	for _, r := range c.AdapterImportRoots {
		if !filepath.IsAbs(r) {
			return fmt.Errorf("%w: adapter import root %q must be an absolute path", ErrConfig, r)
		}
	}
	return nil
}
