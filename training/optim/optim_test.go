package optim

import (
	"bytes"
	"errors"
	"math"
	"testing"
)

func TestAdamWMatchesHandComputedSteps(t *testing.T) {
	w, g := []float32{1}, []float32{0.5}
	o, err := New(Config{LR: 0.1, WeightDecay: 0.1, Schedule: "constant", TotalSteps: 2, ClipNorm: -1},
		[]Param{{W: w, G: g, Decay: true}})
	if err != nil {
		t.Fatal(err)
	}
	o.Step(1)
	// Step 1: decay 1·(1-0.1·0.1) = 0.99; m̂ = g, v̂ = g², update 0.1·0.5/(0.5+1e-8).
	if math.Abs(float64(w[0])-0.89) > 1e-6 || g[0] != 0 {
		t.Fatalf("after step 1: w=%v g=%v, want 0.89 and 0", w[0], g[0])
	}
	g[0] = -0.25
	o.Step(1)
	// Step 2 by hand: m = 0.9·0.05 + 0.1·(-0.25) = 0.02, v = 0.999·0.00025 + 0.001·0.0625
	// = 0.00031225; m̂ = 0.02/0.19, v̂ = 0.00031225/0.001999;
	// w = 0.89·0.99 - 0.1·m̂/sqrt(v̂) = 0.8811 - 0.0266337 = 0.8544663.
	if math.Abs(float64(w[0])-0.8544663) > 2e-6 {
		t.Fatalf("after step 2: w=%v, want 0.8544663", w[0])
	}
}

func TestClipByGlobalNorm(t *testing.T) {
	// Two tensors whose global gradient norm is 5: clipped to 1, they become
	// (0.6, 0.8). Feeding (0.6, 0.8) unclipped on step 2 then gives m̂ = g and
	// v̂ = g² exactly, so each weight moves by LR·sign, which only holds if
	// step 1 saw the clipped values.
	a, b := []float32{0}, []float32{0}
	ga, gb := []float32{3}, []float32{4}
	o, _ := New(Config{LR: 0.01, Schedule: "constant", TotalSteps: 2, Eps: 1e-12}, []Param{{W: a, G: ga}, {W: b, G: gb}})
	if r := o.Step(1); math.Abs(r.GradNorm-5) > 1e-9 {
		t.Fatalf("grad norm %v, want 5", r.GradNorm)
	}
	ga[0], gb[0] = 0.6, 0.8
	o.Step(1)
	for _, w := range []float32{a[0], b[0]} {
		if math.Abs(float64(w)+0.02) > 1e-6 {
			t.Fatalf("weights %v %v, want -0.02 each", a[0], b[0])
		}
	}
}

func TestAccumulationAndDeterminism(t *testing.T) {
	run := func(micro bool) []float32 {
		w := []float32{0.3, -0.2, 0.1}
		g := make([]float32, 3)
		o, _ := New(Config{LR: 0.05, WeightDecay: 0.01, TotalSteps: 3, WarmupSteps: 1}, []Param{{W: w, G: g, Decay: true}})
		for s := 0; s < 3; s++ {
			g1 := []float32{0.1 * float32(s+1), -0.3, 0.05}
			g2 := []float32{-0.2, 0.1 * float32(s), 0.25}
			if micro { // two micro-batches summed, averaged by the step
				for i := range g {
					g[i] += g1[i]
				}
				for i := range g {
					g[i] += g2[i]
				}
				o.Step(0.5)
			} else {
				for i := range g {
					g[i] = (g1[i] + g2[i]) * 0.5
				}
				o.Step(1)
			}
		}
		return w
	}
	a, b, c := run(true), run(false), run(true)
	for i := range a {
		if a[i] != c[i] {
			t.Fatalf("not deterministic: %v vs %v", a, c)
		}
		if math.Abs(float64(a[i]-b[i])) > 1e-7 {
			t.Fatalf("accumulated %v vs averaged %v", a, b)
		}
	}
}

func TestSchedule(t *testing.T) {
	tests := []struct {
		sched string
		min   float64
		t     int
		want  float64
	}{
		{"cosine", 0, 5, 0.5}, // warm-up: 5/10
		{"cosine", 0, 10, 1},
		{"cosine", 0, 11, 1}, // first decay step uses the full rate
		{"cosine", 0, 61, 0.5},
		{"cosine", 0, 110, 0.5 * (1 + math.Cos(0.99*math.Pi))},
		{"cosine", 0.1, 61, 0.55},
		{"linear", 0, 61, 0.5},
		{"linear", 0, 110, 0.01},
		{"constant", 0, 110, 1},
	}
	for _, tc := range tests {
		c := Config{LR: 1, WarmupSteps: 10, TotalSteps: 110, Schedule: tc.sched, MinLRRatio: tc.min}
		if err := c.Validate(); err != nil {
			t.Fatal(err)
		}
		if got := c.LRAt(tc.t); math.Abs(got-tc.want) > 1e-12 {
			t.Errorf("%s min %v step %d: lr %v, want %v", tc.sched, tc.min, tc.t, got, tc.want)
		}
	}
}

func TestSaveLoad(t *testing.T) {
	mk := func() (*AdamW, []float32, []float32) {
		w, g := []float32{1, 2}, []float32{0, 0}
		o, _ := New(Config{TotalSteps: 10}, []Param{{W: w, G: g}, {W: nil, G: nil}})
		return o, w, g
	}
	o1, w1, g1 := mk()
	g1[0], g1[1] = 0.5, -1
	o1.Step(1)
	var buf bytes.Buffer
	if err := o1.Save(&buf); err != nil {
		t.Fatal(err)
	}
	o2, w2, g2 := mk()
	copy(w2, w1)
	if err := o2.Load(&buf); err != nil || o2.Steps() != 1 {
		t.Fatalf("load: %v, steps %d", err, o2.Steps())
	}
	g1[0], g1[1], g2[0], g2[1] = 0.2, 0.3, 0.2, 0.3
	o1.Step(1)
	o2.Step(1)
	if w1[0] != w2[0] || w1[1] != w2[1] {
		t.Fatalf("resumed %v, uninterrupted %v", w2, w1)
	}
	o3, _ := New(Config{TotalSteps: 10}, []Param{{W: make([]float32, 3), G: make([]float32, 3)}})
	buf.Reset()
	o1.Save(&buf)
	if err := o3.Load(&buf); !errors.Is(err, ErrConfig) {
		t.Fatalf("shape mismatch: want ErrConfig, got %v", err)
	}
}

func TestConfigValidate(t *testing.T) {
	for _, c := range []Config{{TotalSteps: 0}, {TotalSteps: 5, WarmupSteps: 6}, {TotalSteps: 5, Beta1: 1},
		{TotalSteps: 5, Schedule: "step"}, {TotalSteps: 5, LR: math.NaN()}, {TotalSteps: 5, MinLRRatio: 2}} {
		if err := c.Validate(); !errors.Is(err, ErrConfig) {
			t.Errorf("%+v: want ErrConfig, got %v", c, err)
		}
	}
}
