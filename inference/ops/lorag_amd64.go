//go:build !noasm

package ops

// loraDown16AVX512 sets t[i·r+j] to the sum over the first v (a multiple of
// 16) columns of a[j·in+k]·x[i·in+k], for nb (1 to 4) rows i and all j < r:
// loraDown16Go's sums for k0 = 0 over a prefix of the columns.
//
//go:noescape
func loraDown16AVX512(t, x []float32, a []uint16, nb, in, v, r int)

// loraUp16AVX512 is loraUp16Go with o0 = 0 for the first v (a multiple of
// 16) of the out columns.
//
//go:noescape
func loraUp16AVX512(y, t []float32, bt []uint16, nb, out, v, r int)
