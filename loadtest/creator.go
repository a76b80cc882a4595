package loadtest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// HTTPCreator creates random LoRA adapters on a loraplex server through its
// admin endpoint POST /v1/adapters. An adapter that already exists is left
// as it is, so a repeated run reuses the adapters of the last one.
type HTTPCreator struct {
	BaseURL string // server root, e.g. http://localhost:8080
	APIKey  string // the server's admin key, sent as a bearer token when set
	R       int    // rank; 0 lets the server choose (16)
	Alpha   int    // lora_alpha; 0 lets the server choose (2·R)
	Targets []string
	Client  *http.Client // default http.DefaultClient
}

// CreateAdapter implements AdapterCreator.
func (h HTTPCreator) CreateAdapter(ctx context.Context, name string, seed int64) error {
	random := map[string]any{"seed": seed}
	if h.R > 0 {
		random["r"] = h.R
	}
	if h.Alpha > 0 {
		random["lora_alpha"] = h.Alpha
	}
	if len(h.Targets) > 0 {
		random["target_modules"] = h.Targets
	}
	body, err := json.Marshal(map[string]any{"name": name, "random": random})
	if err != nil {
		return err
	}
	url := strings.TrimRight(h.BaseURL, "/") + "/v1/adapters"
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("loadtest: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	if h.APIKey != "" {
		req.Header.Set("Authorization", "Bearer "+h.APIKey)
	}
	client := h.Client
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("loadtest: creating adapters needs a reachable loraplex server: %w", err)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode == http.StatusOK {
		return nil
	}
	var e struct {
		Error struct {
			Message string `json:"message"`
			Code    string `json:"code"`
		} `json:"error"`
	}
	_ = json.Unmarshal(msg, &e)
	if e.Error.Code == "adapter_exists" {
		return nil
	}
	if e.Error.Message == "" {
		e.Error.Message = truncate(strings.TrimSpace(string(msg)))
	}
	return fmt.Errorf("loadtest: POST %s: %s: %s (creating adapters needs a loraplex server and its admin key)", url, resp.Status, e.Error.Message)
}
