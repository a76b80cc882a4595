package ops

import "github.com/loraplex/loraplex/quant/vec"

// The vector kernels live in quant/vec (SIMD where available); these
// wrappers inline away and keep the op code short.

func dot(a, b []float32) float32 { return vec.Dot(a, b) }

func axpy(alpha float32, x, y []float32) { vec.Axpy(alpha, x, y) }
