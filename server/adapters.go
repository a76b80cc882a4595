package server

import (
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/loraplex/loraplex/server/openai"
)

func (s *Server) adapterRoutes(r *router) {
	r.Admin(http.MethodPost, "/v1/load_lora_adapter", s.loadAdapter)
	r.Admin(http.MethodPost, "/v1/unload_lora_adapter", s.unloadAdapter)
	r.User(http.MethodGet, "/v1/adapters", s.listAdapters)
	s.createAdapterRoutes(r)
}

// validAdapterName rejects names that requests could not reach because
// they resolve to the base; the store validates the characters (wrapping
// ErrInvalidName) before any file-system call sees the name.
func (s *Server) validAdapterName(name string) error {
	if s.adapterName(name, "") != name {
		return badRequest("lora_name", "invalid_adapter_name", "adapter name %q collides with the base model's name", name)
	}
	return nil
}

// importPath resolves lora_path, which is untrusted, and accepts it only if
// it lies under one of the configured import roots, both as written (so
// paths elsewhere are refused before any file-system call can reveal what
// exists there) and once symlinks are followed (so a link cannot escape).
func (s *Server) importPath(p string) (string, error) {
	if len(s.cfg.AdapterImportRoots) == 0 {
		return "", &APIError{Status: http.StatusForbidden, Type: "permission_error", Param: "lora_path", Code: "import_disabled",
			Message: "loading adapters by path is disabled on this server; its operator must configure adapter import roots"}
	}
	if !filepath.IsAbs(p) {
		return "", badRequest("lora_path", "invalid_path", "lora_path must be an absolute path")
	}
	outside := &APIError{Status: http.StatusForbidden, Type: "permission_error", Param: "lora_path", Code: "path_not_allowed",
		Message: fmt.Sprintf("lora_path %q is outside the directories this server may load adapters from", p)}
	clean := filepath.Clean(p)
	if !s.underRoot(clean, false) {
		return "", outside
	}
	real, err := filepath.EvalSymlinks(clean)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return "", badRequest("lora_path", "invalid_path", "lora_path %q does not exist", p)
		}
		return "", badRequest("lora_path", "invalid_path", "lora_path %q cannot be read", p)
	}
	if !s.underRoot(real, true) {
		return "", outside
	}
	if st, err := os.Stat(real); err != nil || !st.IsDir() {
		return "", badRequest("lora_path", "invalid_path", "lora_path %q is not a directory", p)
	}
	return real, nil
}

// underRoot reports whether p is an import root or lies below one; with
// resolve, the roots' own symlinks are followed first.
func (s *Server) underRoot(p string, resolve bool) bool {
	for _, root := range s.cfg.AdapterImportRoots {
		r := filepath.Clean(root)
		if resolve {
			var err error
			if r, err = filepath.EvalSymlinks(r); err != nil {
				continue
			}
		}
		rel, err := filepath.Rel(r, p)
		if err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) && !filepath.IsAbs(rel) {
			return true
		}
	}
	return false
}

// loadAdapter is vLLM's POST /v1/load_lora_adapter, answering its exact text.
func (s *Server) loadAdapter(c echo.Context) error {
	var req openai.LoadAdapterRequest
	if err := s.decode(c, &req); err != nil {
		return err
	}
	if req.Name == "" || req.Path == "" {
		return badRequest("lora_name", "", "both 'lora_name' and 'lora_path' must be provided")
	}
	if err := s.validAdapterName(req.Name); err != nil {
		return err
	}
	// The name is checked before the path so a bad name never costs a
	// file-system lookup.
	dir, err := s.importPath(req.Path)
	if err != nil {
		return err
	}
	if err := s.ads.Import(c.Request().Context(), req.Name, dir, req.Replace); err != nil {
		if errors.Is(err, ErrAdapterExists) {
			return badRequest("lora_name", "adapter_exists", "the adapter '%s' has already been loaded; pass load_inplace to replace it", req.Name)
		}
		return err
	}
	s.log.Info("adapter loaded", "name", req.Name, "path", dir)
	return c.String(http.StatusOK, fmt.Sprintf("Success: LoRA adapter '%s' added successfully.", req.Name))
}

// unloadAdapter is vLLM's POST /v1/unload_lora_adapter.
func (s *Server) unloadAdapter(c echo.Context) error {
	var req openai.UnloadAdapterRequest
	if err := s.decode(c, &req); err != nil {
		return err
	}
	if req.Name == "" {
		return badRequest("lora_name", "", "'lora_name' must be provided")
	}
	if err := s.ads.Remove(req.Name); err != nil {
		if errors.Is(err, ErrModelNotFound) {
			return &APIError{Status: http.StatusNotFound, Type: "invalid_request_error", Param: "lora_name", Code: "model_not_found",
				Message: fmt.Sprintf("the adapter '%s' cannot be found", req.Name), Err: err}
		}
		return err
	}
	s.log.Info("adapter unloaded", "name", req.Name)
	return c.String(http.StatusOK, fmt.Sprintf("Success: LoRA adapter '%s' removed successfully.", req.Name))
}

// adapterEntry is one adapter in GET /v1/adapters.
type adapterEntry struct {
	ID       string `json:"id"`
	Object   string `json:"object"`
	Type     string `json:"type"`
	State    string `json:"state"`
	Bytes    int64  `json:"bytes"`
	Rank     int    `json:"rank,omitempty"`
	Created  int64  `json:"created"`
	Requests int64  `json:"requests"`
	Loads    int64  `json:"loads"`
}

func entryOf(a AdapterInfo) adapterEntry {
	return adapterEntry{ID: a.Name, Object: "adapter", Type: a.Type, State: a.State, Bytes: a.Bytes, Rank: a.Rank,
		Created: a.Created.Unix(), Requests: a.Requests, Loads: a.Loads}
}

type adapterStatsJSON struct {
	Hits          int64 `json:"hits"`
	Misses        int64 `json:"misses"`
	Loads         int64 `json:"loads"`
	Evictions     int64 `json:"evictions"`
	LoadErrors    int64 `json:"load_errors"`
	Resident      int   `json:"resident"`
	Total         int   `json:"total"`
	ResidentBytes int64 `json:"resident_bytes"`
	BudgetBytes   int64 `json:"budget_bytes"`
}

// listAdapters is GET /v1/adapters: every stored adapter with its state
// (cold, loaded, in use), size and counters, plus the registry's totals.
func (s *Server) listAdapters(c echo.Context) error {
	infos := s.ads.List()
	data := make([]adapterEntry, len(infos))
	for i, a := range infos {
		data[i] = entryOf(a)
	}
	st := s.ads.Stats()
	return c.JSON(http.StatusOK, struct {
		Object string           `json:"object"`
		Data   []adapterEntry   `json:"data"`
		Stats  adapterStatsJSON `json:"stats"`
	}{"list", data, adapterStatsJSON(st)})
}

// decode reads and decodes a small JSON body with the endpoints' rules.
func (s *Server) decode(c echo.Context, v any) error {
	body, err := s.readBody(c)
	if err != nil {
		return err
	}
	return openai.Decode(body, v)
}
