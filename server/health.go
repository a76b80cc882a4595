package server

import (
	"context"
	"net/http"

	"github.com/labstack/echo/v4"
)

func (s *Server) healthRoutes(r *router) {
	r.Public(http.MethodGet, "/health", s.health)
}

// health answers 200 "ok" while the server takes requests and 503 while it
// drains, so load balancers stop sending before connections close.
func (s *Server) health(c echo.Context) error {
	if s.draining.Load() {
		return &APIError{Status: http.StatusServiceUnavailable, Type: "server_error", Code: "server_unavailable", Message: "shutting down"}
	}
	return c.String(http.StatusOK, "ok")
}

// noAdapters stands in when the server runs without an adapter registry.
type noAdapters struct{}

func (noAdapters) Acquire(_ context.Context, name string) (Lease, error) {
	return nil, modelNotFound(name)
}
func (noAdapters) List() []AdapterInfo { return nil }
func (noAdapters) Import(context.Context, string, string, bool) error {
	return &APIError{Status: http.StatusServiceUnavailable, Type: "server_error", Code: "adapters_disabled",
		Message: "this server runs without an adapter store"}
}
func (noAdapters) Remove(name string) error { return modelNotFound(name) }
func (noAdapters) Stats() AdapterStats      { return AdapterStats{} }
