//go:build !noasm

// NF4_SCALE512 leaves the block's dequantized table code·scale in Z5, with
// scale = float32(dyn[q]·a2) + off rounded like the Go code (no FMA).
#define NF4_SCALE512 \
	MOVBLZX      (DX), AX         \
	VMOVSS       (R8)(AX*4), X4   \
	VMULSS       X30, X4, X4      \
	VADDSS       X29, X4, X4      \
	VBROADCASTSS X4, Z4           \
	VMULPS       Z31, Z4, Z5

// NF4_CODES512 turns the block's 32 bytes at SI into four vectors of 16
// code indices in element order: Z10 = e0..15, Z11 = e16..31, Z12 =
// e32..47, Z13 = e48..63. Element 2k is the high nibble of byte k.
#define NF4_CODES512 \
	VMOVDQU      (SI), Y6         \
	VPSRLW       $4, Y6, Y7       \
	VPANDD       Y28, Y7, Y7      \
	VPANDD       Y28, Y6, Y6      \
	VPUNPCKLBW   Y6, Y7, Y8       \
	VPUNPCKHBW   Y6, Y7, Y9       \
	VPMOVZXBD    X8, Z10          \
	VPMOVZXBD    X9, Z11          \
	VEXTRACTI128 $1, Y8, X12      \
	VPMOVZXBD    X12, Z12         \
	VEXTRACTI128 $1, Y9, X13      \
	VPMOVZXBD    X13, Z13         \
	VPERMPS      Z5, Z10, Z10     \
	VPERMPS      Z5, Z11, Z11     \
	VPERMPS      Z5, Z12, Z12     \
	VPERMPS      Z5, Z13, Z13

#define NF4_SETUP512 \
	MOVQ          p_base+0(FP), SI   \
	MOVQ          q_base+24(FP), DX  \
	MOVQ          q_len+32(FP), CX   \
	MOVQ          code+72(FP), AX    \
	VMOVUPS       (AX), Z31          \
	MOVQ          dyn+80(FP), R8     \
	VMOVSS        a2+88(FP), X30     \
	VMOVSS        off+92(FP), X29    \
	MOVL          $0x0f0f0f0f, AX    \
	VPBROADCASTD  AX, Y28

// NF4_SCALE256 leaves the scaled table halves in Y15 and Y12.
#define NF4_SCALE256 \
	MOVBLZX      (DX), AX         \
	VMOVSS       (R8)(AX*4), X4   \
	VMULSS       X14, X4, X4      \
	VADDSS       X13, X4, X4      \
	VBROADCASTSS X4, Y4           \
	VMULPS       (R9), Y4, Y15    \
	VMULPS       32(R9), Y4, Y12

// NF4_BYTES256 writes the block's 64 codes, one per byte, to the stack
// frame: 0..15 = e0..15, 16..31 = e32..47, 32..47 = e16..31, 48..63 = e48..63.
#define NF4_BYTES256 \
	VMOVDQU    (SI), Y6        \
	VPSRLW     $4, Y6, Y7      \
	VPAND      Y11, Y7, Y7     \
	VPAND      Y11, Y6, Y6     \
	VPUNPCKLBW Y6, Y7, Y8      \
	VPUNPCKHBW Y6, Y7, Y9      \
	VMOVDQU    Y8, 0(SP)       \
	VMOVDQU    Y9, 32(SP)

// NF4_LOOK256(off, dst) loads the 8 codes at off(SP) and looks them up.
#define NF4_LOOK256(off, dst) \
	VPMOVZXBD  off(SP), Y5         \
	VPERMPS    Y15, Y5, Y6         \
	VPERMPS    Y12, Y5, dst        \
	VPSLLD     $28, Y5, Y5         \
	VBLENDVPS  Y5, dst, Y6, dst

#define NF4_SETUP256 \
	MOVQ         code+72(FP), R9    \
	MOVQ         dyn+80(FP), R8     \
	VMOVSS       a2+88(FP), X14     \
	VMOVSS       off+92(FP), X13    \
	MOVL         $0x0f0f0f0f, AX    \
	MOVQ         AX, X11            \
	VPBROADCASTD X11, Y11

#include "textflag.h"
#include "nf4quad_amd64.h"

// PREFETCH_W(r) asks for the weight line 4 KiB past r. The row kernels
// stream weights that are read once per token; the hardware prefetchers
// stop at 4 KiB pages and run only a few lines ahead, so without it the
// memory idles while a core computes: the float path decoded weights
// larger than the caches 20-30% slower. (The bf16 dot kernel, with little
// work per line, measured slower with it and has none.) NTA: a weight line
// is used once and should not push activations or the KV cache out of L2.
#define PREFETCH_W(r) PREFETCHNTA 4096(r)

// PREFETCH_Q8(r) is PREFETCH_W for the int8 row kernel, which needs a
// third of the float path's operations per weight and runs near memory
// speed. With the weights on huge pages (adviseHuge), T1 2 KiB ahead and
// no prefetch at all beat NTA 4 KiB ahead; on the M shape huge pages alone
// gave 1.04x, with this prefetch 1.10-1.14x. In the kernel's benchmark T1
// 2 KiB was at least as fast as T0, T2 or NTA at 0.5-4 KiB.
#define PREFETCH_Q8(r) PREFETCHT1 2048(r)

// Register use shared by the NF4 kernels:
//   SI packed codes, DX block-scale codes, DI x or dst, CX blocks left,
//   R8 dyn table, X30/X29 (X14/X13 in AVX2) a2 and offset.

// func nf4DotAVX512(p []byte, q []uint8, x []float32, code *[16]float32, dyn *[256]float32, a2, off float32) float32
TEXT ·nf4DotAVX512(SB), NOSPLIT, $0-100
	NF4_SETUP512
	MOVQ   x_base+48(FP), DI
	VXORPS Z0, Z0, Z0
	VXORPS Z1, Z1, Z1
	VXORPS Z2, Z2, Z2
	VXORPS Z3, Z3, Z3
	TESTQ  CX, CX
	JE     dotdone

dotloop:
	NF4_SCALE512
	NF4_CODES512
	VFMADD231PS (DI), Z10, Z0
	VFMADD231PS 64(DI), Z11, Z1
	VFMADD231PS 128(DI), Z12, Z2
	VFMADD231PS 192(DI), Z13, Z3
	ADDQ        $32, SI
	INCQ        DX
	ADDQ        $256, DI
	DECQ        CX
	JNE         dotloop

dotdone:
	VADDPS        Z1, Z0, Z0
	VADDPS        Z3, Z2, Z2
	VADDPS        Z2, Z0, Z0
	VEXTRACTF64X4 $1, Z0, Y1
	VADDPS        Y1, Y0, Y0
	VEXTRACTF128  $1, Y0, X1
	VADDPS        X1, X0, X0
	VHADDPS       X0, X0, X0
	VHADDPS       X0, X0, X0
	VZEROUPPER
	MOVSS         X0, ret+96(FP)
	RET

// func nf4DecodeAVX512(dst []float32, p []byte, q []uint8, code *[16]float32, dyn *[256]float32, a2, off float32)
TEXT ·nf4DecodeAVX512(SB), NOSPLIT, $0-96
	MOVQ         p_base+24(FP), SI
	MOVQ         q_base+48(FP), DX
	MOVQ         q_len+56(FP), CX
	MOVQ         code+72(FP), AX
	VMOVUPS      (AX), Z31
	MOVQ         dyn+80(FP), R8
	VMOVSS       a2+88(FP), X30
	VMOVSS       off+92(FP), X29
	MOVL         $0x0f0f0f0f, AX
	VPBROADCASTD AX, Y28
	MOVQ         dst_base+0(FP), DI
	TESTQ        CX, CX
	JE           decdone

decloop:
	NF4_SCALE512
	NF4_CODES512
	VMOVUPS Z10, (DI)
	VMOVUPS Z11, 64(DI)
	VMOVUPS Z12, 128(DI)
	VMOVUPS Z13, 192(DI)
	ADDQ    $32, SI
	INCQ    DX
	ADDQ    $256, DI
	DECQ    CX
	JNE     decloop

decdone:
	VZEROUPPER
	RET

// AVX2 has no 16-entry permute: the table is split into Y15 (codes 0-7)
// and Y12 (codes 8-15), both scaled, and bit 3 of the code picks the half.

// func nf4DotAVX2(p []byte, q []uint8, x []float32, code *[16]float32, dyn *[256]float32, a2, off float32) float32
TEXT ·nf4DotAVX2(SB), NOSPLIT, $64-100
	NF4_SETUP256
	MOVQ   p_base+0(FP), SI
	MOVQ   q_base+24(FP), DX
	MOVQ   q_len+32(FP), CX
	MOVQ   x_base+48(FP), DI
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	TESTQ  CX, CX
	JE     dot2done

dot2loop:
	NF4_SCALE256
	NF4_BYTES256
	NF4_LOOK256(0, Y10)
	VFMADD231PS (DI), Y10, Y0
	NF4_LOOK256(8, Y10)
	VFMADD231PS 32(DI), Y10, Y1
	NF4_LOOK256(32, Y10)
	VFMADD231PS 64(DI), Y10, Y0
	NF4_LOOK256(40, Y10)
	VFMADD231PS 96(DI), Y10, Y1
	NF4_LOOK256(16, Y10)
	VFMADD231PS 128(DI), Y10, Y0
	NF4_LOOK256(24, Y10)
	VFMADD231PS 160(DI), Y10, Y1
	NF4_LOOK256(48, Y10)
	VFMADD231PS 192(DI), Y10, Y0
	NF4_LOOK256(56, Y10)
	VFMADD231PS 224(DI), Y10, Y1
	ADDQ        $32, SI
	INCQ        DX
	ADDQ        $256, DI
	DECQ        CX
	JNE         dot2loop

dot2done:
	VADDPS       Y1, Y0, Y0
	VEXTRACTF128 $1, Y0, X1
	VADDPS       X1, X0, X0
	VHADDPS      X0, X0, X0
	VHADDPS      X0, X0, X0
	VZEROUPPER
	MOVSS        X0, ret+96(FP)
	RET

// func nf4DecodeAVX2(dst []float32, p []byte, q []uint8, code *[16]float32, dyn *[256]float32, a2, off float32)
TEXT ·nf4DecodeAVX2(SB), NOSPLIT, $64-96
	NF4_SETUP256
	MOVQ  p_base+24(FP), SI
	MOVQ  q_base+48(FP), DX
	MOVQ  q_len+56(FP), CX
	MOVQ  dst_base+0(FP), DI
	TESTQ CX, CX
	JE    dec2done

dec2loop:
	NF4_SCALE256
	NF4_BYTES256
	NF4_LOOK256(0, Y10)
	VMOVUPS Y10, (DI)
	NF4_LOOK256(8, Y10)
	VMOVUPS Y10, 32(DI)
	NF4_LOOK256(32, Y10)
	VMOVUPS Y10, 64(DI)
	NF4_LOOK256(40, Y10)
	VMOVUPS Y10, 96(DI)
	NF4_LOOK256(16, Y10)
	VMOVUPS Y10, 128(DI)
	NF4_LOOK256(24, Y10)
	VMOVUPS Y10, 160(DI)
	NF4_LOOK256(48, Y10)
	VMOVUPS Y10, 192(DI)
	NF4_LOOK256(56, Y10)
	VMOVUPS Y10, 224(DI)
	ADDQ    $32, SI
	INCQ    DX
	ADDQ    $256, DI
	DECQ    CX
	JNE     dec2loop

dec2done:
	VZEROUPPER
	RET

// The row kernels below keep, for the second-level group of the current
// block, the 256 possible block scales dyn[i]·a2[g] + off in a table (the
// t argument), rebuilt whenever a block starts a group. A block's scale is
// then one table entry, broadcast straight from memory by the multiply
// that uses it: per-block scalar arithmetic, register broadcasts and
// gathers all cost more than the lookups themselves.
//
// Register use: SI packed codes, DX block-scale codes, BX global block
// index, CX blocks left in the row, DI x (reloaded from the arguments for
// each row), R10 y, R11 rows left, R8 table, R9 a2, Z31 code, Z29 offset
// (broadcast); AX and R13 are temporaries.

// NF4Q_TABLE and NF4Q_LOOK (nf4quad_amd64.h) fill the table and decode a
// block, shared with the four-row kernel.

// NF4_HSUM4(za, zb, zc, zd, ya, xa) leaves Σ of the 64 lanes of za..zd
// in xa (ya and xa name za's lower halves); Z4 is a temporary.
#define NF4_HSUM4(za, zb, zc, zd, ya, xa) \
	VADDPS        zb, za, za   \
	VADDPS        zd, zc, zc   \
	VADDPS        zc, za, za   \
	VEXTRACTF64X4 $1, za, Y4   \
	VADDPS        Y4, ya, ya   \
	VEXTRACTF128  $1, ya, X4   \
	VADDPS        X4, xa, xa   \
	VHADDPS       xa, xa, xa   \
	VHADDPS       xa, xa, xa

// func nf4RowsAVX512(y []float32, p []byte, q []uint8, a2 []float32, b0, nb int, xq []float32, code *[16]float32, dyn *[256]float32, off float32, t *[256]float32)
TEXT ·nf4RowsAVX512(SB), NOSPLIT, $0-168
	MOVQ         y_base+0(FP), R10
	MOVQ         y_len+8(FP), R11
	MOVQ         p_base+24(FP), SI
	MOVQ         q_base+48(FP), DX
	MOVQ         a2_base+72(FP), R9
	MOVQ         b0+96(FP), BX
	VBROADCASTSS off+152(FP), Z29
	MOVQ         t+160(FP), R8
	MOVQ         code+136(FP), AX
	VMOVUPS      (AX), Z31
	TESTQ        R11, R11
	JE           rdone
	NF4Q_TABLE(dyn+144(FP))

rrow:
	MOVQ   nb+104(FP), CX
	MOVQ   xq_base+112(FP), DI
	VXORPS Z0, Z0, Z0
	VXORPS Z1, Z1, Z1
	VXORPS Z2, Z2, Z2
	VXORPS Z3, Z3, Z3

rblock:
	TESTQ $0xff, BX
	JNE   rlook
	NF4Q_TABLE(dyn+144(FP))

rlook:
	PREFETCH_W(SI)
	NF4Q_LOOK
	VFMADD231PS (DI), Z10, Z0
	VFMADD231PS 64(DI), Z11, Z1
	VFMADD231PS 128(DI), Z12, Z2
	VFMADD231PS 192(DI), Z13, Z3
	ADDQ        $32, SI
	INCQ        DX
	INCQ        BX
	ADDQ        $256, DI
	DECQ        CX
	JNE         rblock
	NF4_HSUM4(Z0, Z1, Z2, Z3, Y0, X0)
	VMOVSS      X0, (R10)
	ADDQ        $4, R10
	DECQ        R11
	JNE         rrow

rdone:
	VZEROUPPER
	RET

// func nf4Rows2AVX512(y0, y1 []float32, p []byte, q []uint8, a2 []float32, b0, nb int, x0, x1 []float32, code *[16]float32, dyn *[256]float32, off float32, t *[256]float32)
//
// nf4RowsAVX512 for two activation rows: each block is decoded once and
// multiplied into both. R12 is x1-x0; Z0-Z3 and Z15-Z18 the accumulators.
TEXT ·nf4Rows2AVX512(SB), NOSPLIT, $0-216
	MOVQ         y0_base+0(FP), R10
	MOVQ         y0_len+8(FP), R11
	MOVQ         p_base+48(FP), SI
	MOVQ         q_base+72(FP), DX
	MOVQ         a2_base+96(FP), R9
	MOVQ         b0+120(FP), BX
	VBROADCASTSS off+200(FP), Z29
	MOVQ         t+208(FP), R8
	MOVQ         x1_base+160(FP), R12
	SUBQ         x0_base+136(FP), R12
	MOVQ         code+184(FP), AX
	VMOVUPS      (AX), Z31
	TESTQ        R11, R11
	JE           r2done
	NF4Q_TABLE(dyn+192(FP))

r2row:
	MOVQ   nb+128(FP), CX
	MOVQ   x0_base+136(FP), DI
	VXORPS Z0, Z0, Z0
	VXORPS Z1, Z1, Z1
	VXORPS Z2, Z2, Z2
	VXORPS Z3, Z3, Z3
	VXORPS Z15, Z15, Z15
	VXORPS Z16, Z16, Z16
	VXORPS Z17, Z17, Z17
	VXORPS Z18, Z18, Z18

r2block:
	TESTQ $0xff, BX
	JNE   r2look
	NF4Q_TABLE(dyn+192(FP))

r2look:
	PREFETCH_W(SI)
	NF4Q_LOOK
	VFMADD231PS (DI), Z10, Z0
	VFMADD231PS 64(DI), Z11, Z1
	VFMADD231PS 128(DI), Z12, Z2
	VFMADD231PS 192(DI), Z13, Z3
	VFMADD231PS (DI)(R12*1), Z10, Z15
	VFMADD231PS 64(DI)(R12*1), Z11, Z16
	VFMADD231PS 128(DI)(R12*1), Z12, Z17
	VFMADD231PS 192(DI)(R12*1), Z13, Z18
	ADDQ        $32, SI
	INCQ        DX
	INCQ        BX
	ADDQ        $256, DI
	DECQ        CX
	JNE         r2block
	NF4_HSUM4(Z0, Z1, Z2, Z3, Y0, X0)
	NF4_HSUM4(Z15, Z16, Z17, Z18, Y15, X15)
	MOVQ        y1_base+24(FP), AX
	SUBQ        y0_base+0(FP), AX
	VMOVSS      X0, (R10)
	VMOVSS      X15, (R10)(AX*1)
	ADDQ        $4, R10
	DECQ        R11
	JNE         r2row

r2done:
	VZEROUPPER
	RET

// NF4_Q8_UNPACK turns the 128 packed codes in Z10 (two blocks) into offset
// int8 weights round(127·code)+128 through one byte permutation per 64: Z12
// holds the even elements (high nibbles), Z11 the odd ones. Z30 holds u8
// four times, so VPERMB, which reads the low 6 bits of an index byte, maps
// any byte to u8 of its low nibble: neither the packed byte nor its copy
// shifted right by 4 needs masking (VPSHUFB would need both masked: 5
// operations instead of 3, measured 15% slower on weights beyond the
// caches).
#define NF4_Q8_UNPACK \
	VPSRLW  $4, Z10, Z12  \
	VPERMB  Z30, Z10, Z11 \
	VPERMB  Z30, Z12, Z12

// NF4_Q8_DOT(hi, lo, corr, sc, zd) multiplies the unpacked weights by an
// encoded activation pair (even and odd int8 codes at hi and lo) and leaves
// the pair's float sums, per 32-bit lane, in zd: lanes 0-7 belong to the
// first block, 8-15 to the second. The lane corrections at corr start the
// integer sums so the weight offset cancels; sc holds the activation
// scales/127.
#define NF4_Q8_DOT(hi, lo, corr, sc, zd) \
	VMOVDQU32 corr, zd     \
	VPDPBUSD  hi, Z12, zd  \
	VPDPBUSD  lo, Z11, zd  \
	VCVTDQ2PS zd, zd       \
	VMULPS    sc, zd, zd

// NF4_Q8_SETUP loads the constants of the int8 row kernels.
#define NF4_Q8_SETUP \
	MOVL         $0x00ff, AX     \
	KMOVW        AX, K4          \
	MOVL         $0xff00, AX     \
	KMOVW        AX, K5          \
	MOVL         $0xffffffff, AX \
	KMOVQ        AX, K6

// NF4_Q8_HSUM(za, zb, ya, xa) leaves Σ of the 32 lanes of za and zb in xa
// (ya and xa name za's lower halves); Z4 is a temporary.
#define NF4_Q8_HSUM(za, zb, ya, xa) \
	VADDPS        zb, za, za \
	VEXTRACTF64X4 $1, za, Y4 \
	VADDPS        Y4, ya, ya \
	VEXTRACTF128  $1, ya, X4 \
	VADDPS        X4, xa, xa \
	VHADDPS       xa, xa, xa \
	VHADDPS       xa, xa, xa

// func nf4RowsQ8AVX512(y []float32, p []byte, q []uint8, a2 []float32, b0, nb int, xa []uint32, u8 *[16]byte, dyn *[256]float32, off float32, t *[256]float32)
//
// Register use as in nf4RowsAVX512, with CX counting pairs; K4/K5 select
// the lanes of the first and second block of a pair, K6 the bytes of a
// lone last block (odd nb). The second block of a pair may start a group,
// so its table check comes after the first block's multiply.
TEXT ·nf4RowsQ8AVX512(SB), NOSPLIT, $0-168
	MOVQ            y_base+0(FP), R10
	MOVQ            y_len+8(FP), R11
	MOVQ            p_base+24(FP), SI
	MOVQ            q_base+48(FP), DX
	MOVQ            a2_base+72(FP), R9
	MOVQ            b0+96(FP), BX
	VBROADCASTSS    off+152(FP), Z29
	MOVQ            t+160(FP), R8
	MOVQ            u8+136(FP), AX
	VBROADCASTI32X4 (AX), Z30
	NF4_Q8_SETUP
	TESTQ           R11, R11
	JE              q8done
	NF4Q_TABLE(dyn+144(FP))

q8row:
	MOVQ   nb+104(FP), CX
	SHRQ   $1, CX
	MOVQ   xa_base+112(FP), DI
	VXORPS Z0, Z0, Z0
	VXORPS Z1, Z1, Z1
	TESTQ  CX, CX
	JE     q8tail

q8pair:
	TESTQ            $0xff, BX
	JNE              q8a
	NF4Q_TABLE(dyn+144(FP))

q8a:
	PREFETCH_Q8(SI)
	VMOVDQU32        (SI), Z10
	NF4_Q8_UNPACK
	NF4_Q8_DOT((DI), 64(DI), 128(DI), 192(DI), Z13)
	MOVBLZX          (DX), AX
	VFMADD231PS.BCST (R8)(AX*4), Z13, K4, Z0
	INCQ             BX
	TESTQ            $0xff, BX
	JNE              q8b
	NF4Q_TABLE(dyn+144(FP))

q8b:
	MOVBLZX          1(DX), AX
	VFMADD231PS.BCST (R8)(AX*4), Z13, K5, Z1
	INCQ             BX
	ADDQ             $2, DX
	ADDQ             $64, SI
	ADDQ             $256, DI
	DECQ             CX
	JNE              q8pair

q8tail:
	MOVQ             nb+104(FP), AX
	TESTQ            $1, AX
	JE               q8sum
	TESTQ            $0xff, BX
	JNE              q8c
	NF4Q_TABLE(dyn+144(FP))

q8c:
	VMOVDQU8.Z       (SI), K6, Z10
	NF4_Q8_UNPACK
	NF4_Q8_DOT((DI), 64(DI), 128(DI), 192(DI), Z13)
	MOVBLZX          (DX), AX
	VFMADD231PS.BCST (R8)(AX*4), Z13, K4, Z0
	INCQ             BX
	INCQ             DX
	ADDQ             $32, SI

q8sum:
	NF4_Q8_HSUM(Z0, Z1, Y0, X0)
	VMOVSS        X0, (R10)
	ADDQ          $4, R10
	DECQ          R11
	JNE           q8row

q8done:
	VZEROUPPER
	RET

// NF4_Q8_BYTES(zc, xc, off) narrows the 16 int32 codes in zc to bytes
// (X20 scratch) and writes its even elements at off(DI) and odd ones at
// 64+off(DI), 8 bytes each; Z21 holds the deinterleaving shuffle.
#define NF4_Q8_BYTES(zc, xc, off) \
	VPMOVSDB zc, X20          \
	VPSHUFB  X21, X20, X20    \
	VMOVQ    X20, off(DI)     \
	VPEXTRQ  $1, X20, 64+off(DI)

// func encodeActsQ8AVX512(xa []uint32, x []float32)
//
// encodeActsQ8Generic for whole pairs of blocks; the caller zeroes the
// second half of a lone last block's pair. SI x, DI the block's place in
// xa (pair start + 32 for a second block), CX blocks left, BX the parity
// of the block.
TEXT ·encodeActsQ8AVX512(SB), NOSPLIT, $0-48
	MOVQ         xa_base+0(FP), DI
	MOVQ         x_base+24(FP), SI
	MOVQ         x_len+32(FP), CX
	SHRQ         $6, CX
	XORQ         BX, BX
	MOVL         $0x7fffffff, AX
	VPBROADCASTD AX, Z22
	MOVL         $0x42fe0000, AX   // 127.0
	VMOVD        AX, X23
	MOVQ         $0x0e0c0a0806040200, AX
	VMOVQ        AX, X21
	MOVQ         $0x0f0d0b0907050301, AX
	VPINSRQ      $1, AX, X21, X21
	TESTQ        CX, CX
	JE           encdone

encblock:
	VMOVUPS       (SI), Z0
	VMOVUPS       64(SI), Z1
	VMOVUPS       128(SI), Z2
	VMOVUPS       192(SI), Z3
	VANDPS        Z22, Z0, Z4
	VANDPS        Z22, Z1, Z5
	VANDPS        Z22, Z2, Z6
	VANDPS        Z22, Z3, Z7
	VMAXPS        Z5, Z4, Z4
	VMAXPS        Z7, Z6, Z6
	VMAXPS        Z6, Z4, Z4
	VEXTRACTF64X4 $1, Z4, Y5
	VMAXPS        Y5, Y4, Y4
	VEXTRACTF128  $1, Y4, X5
	VMAXPS        X5, X4, X4
	VPERMILPS     $0x4e, X4, X5
	VMAXPS        X5, X4, X4
	VPERMILPS     $0xb1, X4, X5
	VMAXPS        X5, X4, X4
	VXORPS        X6, X6, X6
	VUCOMISS      X6, X4
	JE            enczero
	VDIVSS        X4, X23, X7
	VBROADCASTSS  X7, Z7
	VMULPS        Z7, Z0, Z0
	VMULPS        Z7, Z1, Z1
	VMULPS        Z7, Z2, Z2
	VMULPS        Z7, Z3, Z3
	VCVTPS2DQ     Z0, Z0
	VCVTPS2DQ     Z1, Z1
	VCVTPS2DQ     Z2, Z2
	VCVTPS2DQ     Z3, Z3
	NF4_Q8_BYTES(Z0, X0, 0)
	NF4_Q8_BYTES(Z1, X1, 8)
	NF4_Q8_BYTES(Z2, X2, 16)
	NF4_Q8_BYTES(Z3, X3, 24)
	VPADDD        Z1, Z0, Z0
	VPADDD        Z3, Z2, Z2
	VPADDD        Z2, Z0, Z0
	VEXTRACTI64X4 $1, Z0, Y1
	VPADDD        Y1, Y0, Y0
	VEXTRACTI128  $1, Y0, X1
	VPADDD        X1, X0, X0
	VPSHUFD       $0x4e, X0, X1
	VPADDD        X1, X0, X0
	VPSHUFD       $0xb1, X0, X1
	VPADDD        X1, X0, X0
	VPSLLD        $4, X0, X0
	VPSUBD        X0, X6, X0
	VPBROADCASTD  X0, Y0
	VMOVDQU       Y0, 128(DI)
	VDIVSS        X23, X4, X4
	VDIVSS        X23, X4, X4
	VBROADCASTSS  X4, Y4
	VMOVUPS       Y4, 192(DI)
	JMP           encnext

enczero:
	VMOVDQU Y6, (DI)
	VMOVDQU Y6, 64(DI)
	VMOVDQU Y6, 128(DI)
	VMOVDQU Y6, 192(DI)

encnext:
	ADDQ $256, SI
	ADDQ $32, DI
	XORQ $1, BX
	JNE  encodd
	ADDQ $192, DI

encodd:
	DECQ CX
	JNE  encblock

encdone:
	VZEROUPPER
	RET

// func nf4Rows2Q8AVX512(y0, y1 []float32, p []byte, q []uint8, a2 []float32, b0, nb int, x0, x1 []uint32, u8 *[16]byte, dyn *[256]float32, off float32, t *[256]float32)
//
// nf4RowsQ8AVX512 for two encoded activation rows: each pair of blocks is
// unpacked once and multiplied into both. R12 is x1-x0; Z0/Z1 and Z2/Z3
// the accumulators of y0 and y1.
TEXT ·nf4Rows2Q8AVX512(SB), NOSPLIT, $0-216
	MOVQ            y0_base+0(FP), R10
	MOVQ            y0_len+8(FP), R11
	MOVQ            p_base+48(FP), SI
	MOVQ            q_base+72(FP), DX
	MOVQ            a2_base+96(FP), R9
	MOVQ            b0+120(FP), BX
	VBROADCASTSS    off+200(FP), Z29
	MOVQ            t+208(FP), R8
	MOVQ            x1_base+160(FP), R12
	SUBQ            x0_base+136(FP), R12
	MOVQ            u8+184(FP), AX
	VBROADCASTI32X4 (AX), Z30
	NF4_Q8_SETUP
	TESTQ           R11, R11
	JE              q82done
	NF4Q_TABLE(dyn+192(FP))

q82row:
	MOVQ   nb+128(FP), CX
	SHRQ   $1, CX
	MOVQ   x0_base+136(FP), DI
	VXORPS Z0, Z0, Z0
	VXORPS Z1, Z1, Z1
	VXORPS Z2, Z2, Z2
	VXORPS Z3, Z3, Z3
	TESTQ  CX, CX
	JE     q82tail

q82pair:
	TESTQ            $0xff, BX
	JNE              q82a
	NF4Q_TABLE(dyn+192(FP))

q82a:
	PREFETCH_W(SI)
	VMOVDQU32        (SI), Z10
	NF4_Q8_UNPACK
	NF4_Q8_DOT((DI), 64(DI), 128(DI), 192(DI), Z13)
	NF4_Q8_DOT((DI)(R12*1), 64(DI)(R12*1), 128(DI)(R12*1), 192(DI)(R12*1), Z14)
	MOVBLZX          (DX), AX
	VFMADD231PS.BCST (R8)(AX*4), Z13, K4, Z0
	VFMADD231PS.BCST (R8)(AX*4), Z14, K4, Z2
	INCQ             BX
	TESTQ            $0xff, BX
	JNE              q82b
	NF4Q_TABLE(dyn+192(FP))

q82b:
	MOVBLZX          1(DX), AX
	VFMADD231PS.BCST (R8)(AX*4), Z13, K5, Z1
	VFMADD231PS.BCST (R8)(AX*4), Z14, K5, Z3
	INCQ             BX
	ADDQ             $2, DX
	ADDQ             $64, SI
	ADDQ             $256, DI
	DECQ             CX
	JNE              q82pair

q82tail:
	MOVQ             nb+128(FP), AX
	TESTQ            $1, AX
	JE               q82sum
	TESTQ            $0xff, BX
	JNE              q82c
	NF4Q_TABLE(dyn+192(FP))

q82c:
	VMOVDQU8.Z       (SI), K6, Z10
	NF4_Q8_UNPACK
	NF4_Q8_DOT((DI), 64(DI), 128(DI), 192(DI), Z13)
	NF4_Q8_DOT((DI)(R12*1), 64(DI)(R12*1), 128(DI)(R12*1), 192(DI)(R12*1), Z14)
	MOVBLZX          (DX), AX
	VFMADD231PS.BCST (R8)(AX*4), Z13, K4, Z0
	VFMADD231PS.BCST (R8)(AX*4), Z14, K4, Z2
	INCQ             BX
	INCQ             DX
	ADDQ             $32, SI

q82sum:
	NF4_Q8_HSUM(Z0, Z1, Y0, X0)
	NF4_Q8_HSUM(Z2, Z3, Y2, X2)
	MOVQ   y1_base+24(FP), AX
	SUBQ   y0_base+0(FP), AX
	VMOVSS X0, (R10)
	VMOVSS X2, (R10)(AX*1)
	ADDQ   $4, R10
	DECQ   R11
	JNE    q82row

q82done:
	VZEROUPPER
	RET
