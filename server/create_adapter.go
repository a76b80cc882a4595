package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/labstack/echo/v4"
)

// RandomLoRA asks for a LoRA adapter with random weights: what load tests
// and benchmarks need by the hundred, without training or files.
type RandomLoRA struct {
	R             int      // rank
	Alpha         int      // lora_alpha
	TargetModules []string // empty: all seven projections
	Seed          int64    // the same seed gives the same weights
}

// RandomAdapters is implemented by Adapters that can make random LoRA
// adapters for the served base; without it POST /v1/adapters answers 501.
type RandomAdapters interface {
	// CreateRandom stores a random adapter under name; an existing name
	// wraps ErrAdapterExists unless replace, a bad spec ErrBadRequest.
	CreateRandom(ctx context.Context, name string, spec RandomLoRA, replace bool) error
}

// maxRandomRank bounds r so one request cannot ask for gigabytes.
const maxRandomRank = 1024

// createAdapterRequest is the body of POST /v1/adapters.
type createAdapterRequest struct {
	Name    string `json:"name"`
	Replace bool   `json:"replace"`
	Random  *struct {
		R             int      `json:"r"`
		Alpha         int      `json:"lora_alpha"`
		TargetModules []string `json:"target_modules"`
		Seed          int64    `json:"seed"`
	} `json:"random"`
}

func (s *Server) createAdapterRoutes(r *router) {
	r.Admin(http.MethodPost, "/v1/adapters", s.createAdapter)
}

// createAdapter is POST /v1/adapters: it makes a random LoRA adapter for
// the served base, stores it under name and answers its GET /v1/adapters
// entry.
func (s *Server) createAdapter(c echo.Context) error {
	var req createAdapterRequest
	if err := s.decode(c, &req); err != nil {
		return err
	}
	if req.Name == "" {
		return badRequest("name", "", "'name' must be provided")
	}
	if err := s.validAdapterName(req.Name); err != nil {
		return err
	}
	if req.Random == nil {
		return badRequest("random", "", "'random' must be provided: {\"r\": 16, \"lora_alpha\": 32, \"target_modules\": [...], \"seed\": 1}")
	}
	spec := RandomLoRA{R: req.Random.R, Alpha: req.Random.Alpha, TargetModules: req.Random.TargetModules, Seed: req.Random.Seed}
	if spec.R == 0 {
		spec.R = 16
	}
	if spec.Alpha == 0 {
		spec.Alpha = 2 * spec.R
	}
	if spec.R < 1 || spec.R > maxRandomRank {
		return badRequest("random.r", "", "'r' must be between 1 and %d, got %d", maxRandomRank, spec.R)
	}
	if spec.Alpha < 1 {
		return badRequest("random.lora_alpha", "", "'lora_alpha' must be positive, got %d", spec.Alpha)
	}
	maker, ok := s.ads.(RandomAdapters)
	if !ok {
		return &APIError{Status: http.StatusNotImplemented, Type: "server_error", Code: "not_implemented",
			Message: "this server's adapter store cannot create random adapters"}
	}
	if err := maker.CreateRandom(c.Request().Context(), req.Name, spec, req.Replace); err != nil {
		switch {
		case errors.Is(err, ErrAdapterExists):
			return badRequest("name", "adapter_exists", "the adapter '%s' has already been loaded; pass replace to replace it", req.Name)
		case errors.Is(err, ErrBadRequest):
			return &APIError{Status: http.StatusBadRequest, Type: "invalid_request_error", Param: "random", Message: err.Error(), Err: err}
		}
		return err
	}
	s.log.Info("random adapter created", "name", req.Name, "r", spec.R, "alpha", spec.Alpha, "seed", spec.Seed)
	for _, a := range s.ads.List() {
		if a.Name == req.Name {
			return c.JSON(http.StatusOK, entryOf(a))
		}
	}
	return fmt.Errorf("adapter %q vanished right after it was created", req.Name)
}
