// Package quant stores weight matrices (float32, bfloat16, float16 and
// bitsandbytes NF4) and multiplies activations by them without widening the
// whole matrix, so the resident model stays as small as its file format.
//
// # NF4 in memory
//
// An *NF4 keeps exactly what a bitsandbytes checkpoint with double
// quantization holds, nothing more:
//
//   - packed: ceil(rows·cols/2) bytes. The weight is flattened row-major;
//     element 2j is the high nibble of packed[j], element 2j+1 the low
//     nibble. An odd total length is padded with code 7 (the value 0.0).
//   - qabs: one uint8 per 64-element block of the flattened weight (the last
//     block may be partial and may straddle rows when cols is not a
//     multiple of 64): an index into the signed 8-bit dynamic map.
//   - absmax2: one float32 per 256 consecutive blocks, and one float32 offset.
//
// The scale of block b is dyn[qabs[b]]·absmax2[b/256] + offset (rounded to
// float32 after the product and after the sum, as bitsandbytes does), and
// element i of block b is code[nibble_i]·scale. That is 4 + 8/64 + 32/16384
// ≈ 4.127 bits per parameter. Kernels decode the block scale on the fly, once
// per 64 values, and read the nibbles in place.
//
// # Kernels
//
// Every kernel has a pure-Go version (the specification, always compiled)
// and, on amd64 without the noasm build tag, AVX2 and AVX-512 versions chosen
// at start-up from the CPU features. Tests run all of them against the Go
// version.
//
// MulT with one activation row (decoding) streams each weight row once
// through a fused dequantize-and-dot kernel. With cols a multiple of 64 the
// AVX-512 NF4 kernel takes x in "split order" (each 32-value chunk as its 16
// even then 16 odd elements, prepared once per call), which turns the nibble
// unpacking into one widening load and one shift per 32 values.
//
// MulT with several rows widens a panel of 16 weight rows to float32 once
// and multiplies it with up to 64 activation rows in 4×4 register tiles, so
// a decode batch pays the dequantization once. MulGrad widens 64×256 tiles
// of W once per call and accumulates dy·W into 4×64 tiles of dx.
//
// The paths sum in different orders, so a row's result from a batch can
// differ from the same row computed alone in the last float32 bits. All
// Matrix methods only read the weights: any number of goroutines may call
// them at once, and QuantizeNF4 may run for several tensors in parallel.
package quant
