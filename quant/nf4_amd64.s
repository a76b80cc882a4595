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

// func nf4DotSplitAVX512(p []byte, q []uint8, xs []float32, code *[16]float32, dyn *[256]float32, a2, off float32) float32
//
// Each byte widens to a dword whose low 4 bits are the odd element's code
// and whose bits 4-7, shifted down, are the even element's; VPERMPS reads
// only the low 4 bits of an index, so no masking or byte shuffles are
// needed. xs holds x with each 32-element chunk split into evens then odds.
TEXT ·nf4DotSplitAVX512(SB), NOSPLIT, $0-100
	NF4_SETUP512
	MOVQ   xs_base+48(FP), DI
	VXORPS Z0, Z0, Z0
	VXORPS Z1, Z1, Z1
	VXORPS Z2, Z2, Z2
	VXORPS Z3, Z3, Z3
	TESTQ  CX, CX
	JE     spdone

sploop:
	NF4_SCALE512
	VPMOVZXBD   (SI), Z10
	VPMOVZXBD   16(SI), Z11
	VPSRLD      $4, Z10, Z12
	VPSRLD      $4, Z11, Z13
	VPERMPS     Z5, Z10, Z10
	VPERMPS     Z5, Z11, Z11
	VPERMPS     Z5, Z12, Z12
	VPERMPS     Z5, Z13, Z13
	VFMADD231PS (DI), Z12, Z0
	VFMADD231PS 64(DI), Z10, Z1
	VFMADD231PS 128(DI), Z13, Z2
	VFMADD231PS 192(DI), Z11, Z3
	ADDQ        $32, SI
	INCQ        DX
	ADDQ        $256, DI
	DECQ        CX
	JNE         sploop

spdone:
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

// func nf4DotSplit2AVX512(p []byte, q []uint8, xs []float32, ldx int, code *[16]float32, dyn *[256]float32, a2, off float32, out *[2]float32)
//
// nf4DotSplitAVX512 for two activation rows (xs and xs[ldx:]): each block
// is decoded once and multiplied into both.
TEXT ·nf4DotSplit2AVX512(SB), NOSPLIT, $0-112
	MOVQ         p_base+0(FP), SI
	MOVQ         q_base+24(FP), DX
	MOVQ         q_len+32(FP), CX
	MOVQ         xs_base+48(FP), DI
	MOVQ         ldx+72(FP), BX
	SHLQ         $2, BX
	MOVQ         code+80(FP), AX
	VMOVUPS      (AX), Z31
	MOVQ         dyn+88(FP), R8
	VMOVSS       a2+96(FP), X30
	VMOVSS       off+100(FP), X29
	VXORPS       Z0, Z0, Z0
	VXORPS       Z1, Z1, Z1
	VXORPS       Z2, Z2, Z2
	VXORPS       Z3, Z3, Z3
	VXORPS       Z6, Z6, Z6
	VXORPS       Z7, Z7, Z7
	VXORPS       Z8, Z8, Z8
	VXORPS       Z9, Z9, Z9
	TESTQ        CX, CX
	JE           s2done

s2loop:
	NF4_SCALE512
	VPMOVZXBD   (SI), Z10
	VPMOVZXBD   16(SI), Z11
	VPSRLD      $4, Z10, Z12
	VPSRLD      $4, Z11, Z13
	VPERMPS     Z5, Z10, Z10
	VPERMPS     Z5, Z11, Z11
	VPERMPS     Z5, Z12, Z12
	VPERMPS     Z5, Z13, Z13
	VFMADD231PS (DI), Z12, Z0
	VFMADD231PS 64(DI), Z10, Z1
	VFMADD231PS 128(DI), Z13, Z2
	VFMADD231PS 192(DI), Z11, Z3
	VFMADD231PS (DI)(BX*1), Z12, Z6
	VFMADD231PS 64(DI)(BX*1), Z10, Z7
	VFMADD231PS 128(DI)(BX*1), Z13, Z8
	VFMADD231PS 192(DI)(BX*1), Z11, Z9
	ADDQ        $32, SI
	INCQ        DX
	ADDQ        $256, DI
	DECQ        CX
	JNE         s2loop

s2done:
	MOVQ          out+104(FP), AX
	VADDPS        Z1, Z0, Z0
	VADDPS        Z3, Z2, Z2
	VADDPS        Z2, Z0, Z0
	VADDPS        Z7, Z6, Z6
	VADDPS        Z9, Z8, Z8
	VADDPS        Z8, Z6, Z6
	VEXTRACTF64X4 $1, Z0, Y1
	VADDPS        Y1, Y0, Y0
	VEXTRACTF128  $1, Y0, X1
	VADDPS        X1, X0, X0
	VHADDPS       X0, X0, X0
	VHADDPS       X0, X0, X0
	VMOVSS        X0, (AX)
	VEXTRACTF64X4 $1, Z6, Y1
	VADDPS        Y1, Y6, Y6
	VEXTRACTF128  $1, Y6, X1
	VADDPS        X1, X6, X6
	VHADDPS       X6, X6, X6
	VHADDPS       X6, X6, X6
	VMOVSS        X6, 4(AX)
	VZEROUPPER
	RET
