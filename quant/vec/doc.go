// Package vec holds the float32 vector kernels of attention, norms and
// optimisers (dot products, axpy, scaling, element-wise products, arg max,
// sums of squares), in AVX2/AVX-512 assembly on amd64 and in Go elsewhere or
// under the noasm build tag. The Go version of each is its specification.
package vec
