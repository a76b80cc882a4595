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
// version. The AVX-512 decoding row kernels have no Go twin (other CPUs
// decode through the generic dot product); their comments give the loop
// they compute and tests check them against the generic dot product.
//
// MulT with one to three activation rows (decoding) streams each weight row
// once through a fused dequantize-and-dot kernel. With cols a multiple of
// 64 the AVX-512 NF4 kernels take x in "quad order" (each 64-value block
// reordered once per call so that one widening load and three shifts
// unpack a block's nibbles), look block scales up in a per-group table of
// the 256 possible values instead of computing them, and walk whole runs
// of rows per call, prefetching the weights a page ahead of the hardware
// prefetchers. Workers claim shares of 256K weights in turn
// rather than each taking a fixed half, so a worker that wakes late or
// loses its core to another process does not hold up the call. The float32
// kernel spends ~13 vector operations per 64 weights, which keeps a core
// below memory speed; SetInt8Decode opts a matrix into int8 activations
// and VNNI dot products (~4.5 operations per 64 weights) at the cost of
// the prefill path's rounding error.
//
// Decode batches of four to eight rows with cols ≤ 2048 go through a row
// kernel for four activation rows (nf4rows4.go), which decodes each block
// once for all four.
//
// MulT with more rows widens a panel of 16 weight rows to float32 once
// and multiplies it with up to 64 activation rows in 4×4 register tiles, so
// a decode batch pays the dequantization once. MulGrad cuts dx into equal
// items of up to 256 rows × 256 columns, as many as a multiple of the
// workers where it can (a fixed split of three strips over two cores would
// leave one idle most of the call), which the workers claim one by one;
// each item widens 64×256 tiles of W and accumulates dy·W into 4×64 tiles
// of dx.
//
// SetInt8Prefill opts a matrix into int8 products from four activation rows
// on (prefill and decoding batches, q8.go): activations are rounded to int8
// per 64-value block, each panel of 16 weight rows is widened to int8 once
// per call with one weight row per 32-bit lane, and VPDPBUSD tiles of 4 or
// 8 activation rows write 16 outputs a row.
//
// The paths sum in different orders, so a row's result from a batch can
// differ from the same row computed alone in the last float32 bits. All
// Matrix methods only read the weights: any number of goroutines may call
// them at once, and QuantizeNF4 may run for several tensors in parallel.
package quant
