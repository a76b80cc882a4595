package adapters

import (
	"errors"
	"math"
	"path/filepath"
	"testing"

	"github.com/loraplex/loraplex/inference/model"
)

func TestRandomLoRADeterministicAndLoadable(t *testing.T) {
	base := tinyBase()
	a, cfg, err := RandomLoRA(base, RandomSpec{R: 4, BaseModel: "tiny-llama"}, 7)
	if err != nil {
		t.Fatal(err)
	}
	again, _, _ := RandomLoRA(base, RandomSpec{R: 4, BaseModel: "tiny-llama"}, 7)
	other, _, _ := RandomLoRA(base, RandomSpec{R: 4, BaseModel: "tiny-llama"}, 8)
	if cfg.R != 4 || cfg.Alpha != 8 || len(cfg.TargetModules.Names) != 7 {
		t.Fatalf("defaults: r %d alpha %g targets %v", cfg.R, cfg.Alpha, cfg.TargetModules.Names)
	}
	dir := filepath.Join(t.TempDir(), "rand")
	if err := SaveLoRA(dir, cfg, a); err != nil {
		t.Fatal(err)
	}
	loaded, _ := mustLoad(t, dir)
	for l := range 2 {
		for m := range model.NumModules {
			x, y := a.LoRA[l][m], loaded.LoRA[l][m]
			d := tinyDims[m.String()]
			if x == nil || y == nil || len(x.A) != 4*d[0] || len(x.B) != d[1]*4 || x.Scale != 2 {
				t.Fatalf("layer %d %s: missing or misshapen", l, m)
			}
			if !equalF32(x.A, y.A) || !equalF32(x.B, y.B) || y.Scale != x.Scale {
				t.Errorf("layer %d %s: changed by save and load", l, m)
			}
			if !equalF32(x.A, again.LoRA[l][m].A) || !equalF32(x.B, again.LoRA[l][m].B) {
				t.Errorf("layer %d %s: same seed, different weights", l, m)
			}
			if equalF32(x.A, other.LoRA[l][m].A) || equalF32(x.B, other.LoRA[l][m].B) {
				t.Errorf("layer %d %s: different seeds, same weights", l, m)
			}
			// A is kaiming_uniform(a=√5): |A| <= 1/√in, and the draws come
			// near the bound. B is non-zero.
			bound := 1 / math.Sqrt(float64(d[0]))
			var amax, bmax float64
			for _, v := range x.A {
				amax = max(amax, math.Abs(float64(v)))
			}
			for _, v := range x.B {
				bmax = max(bmax, math.Abs(float64(v)))
			}
			if amax > bound || amax < 0.9*bound || bmax == 0 {
				t.Errorf("layer %d %s: max |A| %g (bound %g), max |B| %g", l, m, amax, bound, bmax)
			}
		}
	}
}

func TestRandomLoRATargetsAndRejects(t *testing.T) {
	a, cfg, err := RandomLoRA(tinyBase(), RandomSpec{R: 2, Alpha: 16, TargetModules: []string{"v_proj", "down_proj"}}, 1)
	if err != nil {
		t.Fatal(err)
	}
	if got := adapted(a); got != "0.v_proj 0.down_proj 1.v_proj 1.down_proj" {
		t.Errorf("adapted %q", got)
	}
	if a.LoRA[0][model.V].Scale != 8 || cfg.Alpha != 16 {
		t.Errorf("scale %g alpha %g, want 8 and 16", a.LoRA[0][model.V].Scale, cfg.Alpha)
	}
	for _, spec := range []RandomSpec{
		{R: -1},
		{R: 4, Alpha: -2},
		{TargetModules: []string{"lm_head"}},
		{TargetModules: []string{"q_proj", "q_proj"}},
	} {
		if _, _, err := RandomLoRA(tinyBase(), spec, 1); !errors.Is(err, ErrConfig) {
			t.Errorf("%+v: %v, want ErrConfig", spec, err)
		}
	}
}
