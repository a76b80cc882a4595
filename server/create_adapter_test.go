package server

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
)

// CreateRandom makes the fake registry a RandomAdapters; it records the
// spec and rejects what the real one rejects.
func (f *fakeAdapters) CreateRandom(_ context.Context, name string, spec RandomLoRA, replace bool) error {
	for _, m := range spec.TargetModules {
		if !slices.Contains([]string{"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}, m) {
			return fmt.Errorf("%w: unknown target module %q", ErrBadRequest, m)
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.store[name]; ok && !replace {
		return fmt.Errorf("%q: %w", name, ErrAdapterExists)
	}
	f.store[name] = &fakeAdapter{name: name, path: fmt.Sprintf("/adapters/%s?r=%d&alpha=%d&seed=%d", name, spec.R, spec.Alpha, spec.Seed)}
	return nil
}

func TestCreateRandomAdapter(t *testing.T) {
	h := start(t, func(c *Config, _ *fakeEngine, _ *Server) { c.APIKey, c.AdminKey = "user-key", "admin-key" })
	admin := []string{"Authorization", "Bearer admin-key"}
	body := `{"name": "rand-1", "random": {"r": 8, "lora_alpha": 16, "target_modules": ["q_proj", "v_proj"], "seed": 3}}`

	resp, b := h.post("/v1/adapters", body, "Authorization", "Bearer user-key")
	if resp.StatusCode != 401 {
		t.Fatalf("user key: %d %s, want 401", resp.StatusCode, b)
	}
	resp, b = h.post("/v1/adapters", body, admin...)
	var e adapterEntry
	if err := json.Unmarshal(b, &e); err != nil || resp.StatusCode != 200 {
		t.Fatalf("create: %d %s", resp.StatusCode, b)
	}
	if e.ID != "rand-1" || e.Object != "adapter" || e.Type != "lora" || e.Created == 0 {
		t.Errorf("entry %s", b)
	}
	if p := h.ads.store["rand-1"].path; p != "/adapters/rand-1?r=8&alpha=16&seed=3" {
		t.Errorf("spec reached the store as %s", p)
	}
	// Defaults: r 16, alpha 2r; replace overwrites.
	resp, b = h.post("/v1/adapters", `{"name": "rand-1", "replace": true, "random": {}}`, admin...)
	if resp.StatusCode != 200 || h.ads.store["rand-1"].path != "/adapters/rand-1?r=16&alpha=32&seed=0" {
		t.Errorf("replace with defaults: %d %s, stored %s", resp.StatusCode, b, h.ads.store["rand-1"].path)
	}

	for _, c := range []struct {
		body, param, code string
	}{
		{body, "name", "adapter_exists"},
		{`{"name": "base", "random": {}}`, "lora_name", "invalid_adapter_name"},
		{`{"random": {}}`, "name", ""},
		{`{"name": "x"}`, "random", ""},
		{`{"name": "x", "random": {"r": 100000}}`, "random.r", ""},
		{`{"name": "x", "random": {"r": 4, "lora_alpha": -1}}`, "random.lora_alpha", ""},
		{`{"name": "x", "random": {"target_modules": ["lm_head"]}}`, "random", ""},
		{`{"name": "x", "random": {"r": "big"}}`, "random.r", ""},
		{`{"name": `, "", ""},
	} {
		resp, b := h.post("/v1/adapters", c.body, admin...)
		if resp.StatusCode != 400 {
			t.Errorf("%s: %d %s, want 400", c.body, resp.StatusCode, b)
			continue
		}
		eb := errorBody(t, b)
		if eb["param"] != nil && eb["param"] != c.param || eb["param"] == nil && c.param != "" {
			t.Errorf("%s: param %v, want %q", c.body, eb["param"], c.param)
		}
		if c.code != "" && eb["code"] != c.code {
			t.Errorf("%s: code %v, want %q", c.body, eb["code"], c.code)
		}
	}
	if _, ok := h.ads.store["x"]; ok {
		t.Error("a rejected request stored an adapter")
	}
}

// plainAdapters hides CreateRandom: a store that cannot make adapters.
type plainAdapters struct{ Adapters }

func TestCreateAdapterUnsupported(t *testing.T) {
	cfg := DefaultConfig()
	cfg.ModelName = "base"
	srv, err := New(cfg, Deps{Engine: newFakeEngine(), Adapters: plainAdapters{newFakeAdapters()}})
	if err != nil {
		t.Fatal(err)
	}
	req := httptest.NewRequest(http.MethodPost, "/v1/adapters", strings.NewReader(`{"name": "x", "random": {}}`))
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	srv.Handler().ServeHTTP(rec, req)
	if rec.Code != 501 || errorBody(t, rec.Body.Bytes())["code"] != "not_implemented" {
		t.Errorf("%d %s, want 501 not_implemented", rec.Code, rec.Body)
	}
}
