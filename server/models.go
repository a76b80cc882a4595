package server

import (
	"net/http"
	"net/url"

	"github.com/labstack/echo/v4"

	"github.com/loraplex/loraplex/server/openai"
)

const ownedBy = "loraplex"

func (s *Server) modelRoutes(r *router) {
	r.User(http.MethodGet, "/v1/models", s.listModels)
	// Adapter names may hold '/' (org/name), hence the wildcard.
	r.User(http.MethodGet, "/v1/models/*", s.getModel)
}

// models is the base plus every adapter in the store, read fresh on each
// call so adapters loaded at runtime show up at once.
func (s *Server) models() []openai.Model {
	base := openai.Model{ID: s.cfg.ModelName, Object: "model", Created: s.started.Unix(), OwnedBy: ownedBy,
		Root: s.cfg.ModelRoot, MaxModelLen: s.eng.MaxModelLen()}
	out := []openai.Model{base}
	for _, a := range s.ads.List() {
		out = append(out, openai.Model{ID: a.Name, Object: "model", Created: a.Created.Unix(), OwnedBy: ownedBy,
			Root: a.Path, Parent: ptr(s.cfg.ModelName), MaxModelLen: base.MaxModelLen})
	}
	return out
}

func (s *Server) listModels(c echo.Context) error {
	return c.JSON(http.StatusOK, openai.ModelList{Object: "list", Data: s.models()})
}

func (s *Server) getModel(c echo.Context) error {
	id, err := url.PathUnescape(c.Param("*"))
	if err != nil {
		return badRequest("model", "", "the model id in the path is not valid URL encoding")
	}
	name := s.adapterName(id, "")
	for _, m := range s.models() {
		if m.ID == name || (name == "" && m.Parent == nil) {
			return c.JSON(http.StatusOK, m)
		}
	}
	return modelNotFound(id)
}

// knownModel reports whether model names the base or a stored adapter,
// without loading anything.
func (s *Server) knownModel(model string) error {
	name := s.adapterName(model, "")
	if name == "" {
		return nil
	}
	for _, a := range s.ads.List() {
		if a.Name == name {
			return nil
		}
	}
	return modelNotFound(model)
}
