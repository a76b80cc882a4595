package server

import (
	"errors"
	"testing"
	"time"
)

func TestConfigValidate(t *testing.T) {
	ok := DefaultConfig()
	if err := ok.Validate(); err != nil {
		t.Fatalf("defaults rejected: %v", err)
	}
	for name, mod := range map[string]func(*Config){
		"empty model name":   func(c *Config) { c.ModelName = "" },
		"tiny body":          func(c *Config) { c.MaxBodyBytes = 10 },
		"zero n":             func(c *Config) { c.MaxN = 0 },
		"sequences below n":  func(c *Config) { c.MaxSequences = c.MaxN - 1 },
		"no request timeout": func(c *Config) { c.RequestTimeout = 0 },
		"no write timeout":   func(c *Config) { c.WriteTimeout = 0 },
		"negative grace":     func(c *Config) { c.ShutdownGrace = -time.Second },
		"relative root":      func(c *Config) { c.AdapterImportRoots = []string{"adapters"} },
		"zero retry-after":   func(c *Config) { c.RetryAfter = 0 },
	} {
		c := DefaultConfig()
		mod(&c)
		if err := c.Validate(); !errors.Is(err, ErrConfig) {
			t.Errorf("%s: got %v", name, err)
		}
		if _, err := New(c, Deps{Engine: newFakeEngine()}); err == nil {
			t.Errorf("%s: New accepted the config", name)
		}
	}
	if _, err := New(ok, Deps{}); !errors.Is(err, ErrNoEngine) {
		t.Errorf("New without engine: %v", err)
	}
}
