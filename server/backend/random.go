package backend

import (
	"context"
	"fmt"

	"github.com/loraplex/loraplex/adapters"
	"github.com/loraplex/loraplex/inference/config"
	"github.com/loraplex/loraplex/server"
)

// RandomAdapters is Adapters that can also create random LoRA adapters for
// the served base (server.RandomAdapters), for load tests and benchmarks.
type RandomAdapters struct {
	*Adapters
	Base     *config.Config // the served model's config
	BaseName string         // written as the adapters' base_model_name_or_path
}

// CreateRandom writes a random LoRA adapter into the store under name,
// through the same validation and loading as any other adapter.
func (r RandomAdapters) CreateRandom(ctx context.Context, name string, spec server.RandomLoRA, replace bool) error {
	a, cfg, err := adapters.RandomLoRA(r.Base, adapters.RandomSpec{R: spec.R, Alpha: spec.Alpha,
		TargetModules: spec.TargetModules, BaseModel: r.BaseName}, spec.Seed)
	if err != nil {
		return fmt.Errorf("%w: %w", server.ErrBadRequest, err)
	}
	err = r.r.Put(ctx, name, replace, func(dir string) error { return adapters.SaveLoRA(dir, cfg, a) })
	return registryError(err)
}
