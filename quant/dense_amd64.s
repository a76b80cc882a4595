//go:build !noasm

#include "textflag.h"
#include "tile4x64_amd64.h"

// HSUM_X0 folds Z0..Z3 (AVX-512) into the scalar X0.
#define HSUM512_X0 \
	VADDPS        Z1, Z0, Z0 \
	VADDPS        Z3, Z2, Z2 \
	VADDPS        Z2, Z0, Z0 \
	VEXTRACTF64X4 $1, Z0, Y1 \
	VADDPS        Y1, Y0, Y0 \
	VEXTRACTF128  $1, Y0, X1 \
	VADDPS        X1, X0, X0 \
	VHADDPS       X0, X0, X0 \
	VHADDPS       X0, X0, X0

#define HSUM256_X0 \
	VADDPS       Y1, Y0, Y0 \
	VADDPS       Y3, Y2, Y2 \
	VADDPS       Y2, Y0, Y0 \
	VEXTRACTF128 $1, Y0, X1 \
	VADDPS       X1, X0, X0 \
	VHADDPS      X0, X0, X0 \
	VHADDPS      X0, X0, X0

// func bf16DotAVX512(w []uint16, x []float32) float32
TEXT ·bf16DotAVX512(SB), NOSPLIT, $0-52
	MOVQ   w_base+0(FP), SI
	MOVQ   w_len+8(FP), CX
	MOVQ   x_base+24(FP), DI
	VXORPS Z0, Z0, Z0
	VXORPS Z1, Z1, Z1
	VXORPS Z2, Z2, Z2
	VXORPS Z3, Z3, Z3
	CMPQ   CX, $64
	JL     b16

b64:
	VPMOVZXWD   (SI), Z4
	VPMOVZXWD   32(SI), Z5
	VPMOVZXWD   64(SI), Z6
	VPMOVZXWD   96(SI), Z7
	VPSLLD      $16, Z4, Z4
	VPSLLD      $16, Z5, Z5
	VPSLLD      $16, Z6, Z6
	VPSLLD      $16, Z7, Z7
	VFMADD231PS (DI), Z4, Z0
	VFMADD231PS 64(DI), Z5, Z1
	VFMADD231PS 128(DI), Z6, Z2
	VFMADD231PS 192(DI), Z7, Z3
	ADDQ        $128, SI
	ADDQ        $256, DI
	SUBQ        $64, CX
	CMPQ        CX, $64
	JGE         b64

b16:
	CMPQ        CX, $16
	JL          bsum
	VPMOVZXWD   (SI), Z4
	VPSLLD      $16, Z4, Z4
	VFMADD231PS (DI), Z4, Z0
	ADDQ        $32, SI
	ADDQ        $64, DI
	SUBQ        $16, CX
	JMP         b16

bsum:
	HSUM512_X0

b1:
	CMPQ        CX, $0
	JE          bdone
	MOVWLZX     (SI), AX
	SHLL        $16, AX
	MOVQ        AX, X4
	VFMADD231SS (DI), X4, X0
	ADDQ        $2, SI
	ADDQ        $4, DI
	DECQ        CX
	JMP         b1

bdone:
	VZEROUPPER
	MOVSS X0, ret+48(FP)
	RET

// func bf16DecodeAVX512(dst []float32, w []uint16)
TEXT ·bf16DecodeAVX512(SB), NOSPLIT, $0-48
	MOVQ dst_base+0(FP), DI
	MOVQ w_base+24(FP), SI
	MOVQ w_len+32(FP), CX

bd16:
	CMPQ      CX, $16
	JL        bd1
	VPMOVZXWD (SI), Z4
	VPSLLD    $16, Z4, Z4
	VMOVUPS   Z4, (DI)
	ADDQ      $32, SI
	ADDQ      $64, DI
	SUBQ      $16, CX
	JMP       bd16

bd1:
	CMPQ    CX, $0
	JE      bddone
	MOVWLZX (SI), AX
	SHLL    $16, AX
	MOVL    AX, (DI)
	ADDQ    $2, SI
	ADDQ    $4, DI
	DECQ    CX
	JMP     bd1

bddone:
	VZEROUPPER
	RET

// func bf16DotAVX2(w []uint16, x []float32) float32
TEXT ·bf16DotAVX2(SB), NOSPLIT, $0-52
	MOVQ   w_base+0(FP), SI
	MOVQ   w_len+8(FP), CX
	MOVQ   x_base+24(FP), DI
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	CMPQ   CX, $32
	JL     c8

c32:
	VPMOVZXWD   (SI), Y4
	VPMOVZXWD   16(SI), Y5
	VPMOVZXWD   32(SI), Y6
	VPMOVZXWD   48(SI), Y7
	VPSLLD      $16, Y4, Y4
	VPSLLD      $16, Y5, Y5
	VPSLLD      $16, Y6, Y6
	VPSLLD      $16, Y7, Y7
	VFMADD231PS (DI), Y4, Y0
	VFMADD231PS 32(DI), Y5, Y1
	VFMADD231PS 64(DI), Y6, Y2
	VFMADD231PS 96(DI), Y7, Y3
	ADDQ        $64, SI
	ADDQ        $128, DI
	SUBQ        $32, CX
	CMPQ        CX, $32
	JGE         c32

c8:
	CMPQ        CX, $8
	JL          csum
	VPMOVZXWD   (SI), Y4
	VPSLLD      $16, Y4, Y4
	VFMADD231PS (DI), Y4, Y0
	ADDQ        $16, SI
	ADDQ        $32, DI
	SUBQ        $8, CX
	JMP         c8

csum:
	HSUM256_X0

c1:
	CMPQ        CX, $0
	JE          cdone
	MOVWLZX     (SI), AX
	SHLL        $16, AX
	MOVQ        AX, X4
	VFMADD231SS (DI), X4, X0
	ADDQ        $2, SI
	ADDQ        $4, DI
	DECQ        CX
	JMP         c1

cdone:
	VZEROUPPER
	MOVSS X0, ret+48(FP)
	RET

// func bf16DecodeAVX2(dst []float32, w []uint16)
TEXT ·bf16DecodeAVX2(SB), NOSPLIT, $0-48
	MOVQ dst_base+0(FP), DI
	MOVQ w_base+24(FP), SI
	MOVQ w_len+32(FP), CX

cd8:
	CMPQ      CX, $8
	JL        cd1
	VPMOVZXWD (SI), Y4
	VPSLLD    $16, Y4, Y4
	VMOVUPS   Y4, (DI)
	ADDQ      $16, SI
	ADDQ      $32, DI
	SUBQ      $8, CX
	JMP       cd8

cd1:
	CMPQ    CX, $0
	JE      cddone
	MOVWLZX (SI), AX
	SHLL    $16, AX
	MOVL    AX, (DI)
	ADDQ    $2, SI
	ADDQ    $4, DI
	DECQ    CX
	JMP     cd1

cddone:
	VZEROUPPER
	RET

// func f16DotAVX2(w []uint16, x []float32) float32
TEXT ·f16DotAVX2(SB), NOSPLIT, $0-52
	MOVQ   w_base+0(FP), SI
	MOVQ   w_len+8(FP), CX
	MOVQ   x_base+24(FP), DI
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	CMPQ   CX, $32
	JL     h8

h32:
	VCVTPH2PS   (SI), Y4
	VCVTPH2PS   16(SI), Y5
	VCVTPH2PS   32(SI), Y6
	VCVTPH2PS   48(SI), Y7
	VFMADD231PS (DI), Y4, Y0
	VFMADD231PS 32(DI), Y5, Y1
	VFMADD231PS 64(DI), Y6, Y2
	VFMADD231PS 96(DI), Y7, Y3
	ADDQ        $64, SI
	ADDQ        $128, DI
	SUBQ        $32, CX
	CMPQ        CX, $32
	JGE         h32

h8:
	CMPQ        CX, $8
	JL          hsum
	VCVTPH2PS   (SI), Y4
	VFMADD231PS (DI), Y4, Y0
	ADDQ        $16, SI
	ADDQ        $32, DI
	SUBQ        $8, CX
	JMP         h8

hsum:
	HSUM256_X0

h1:
	CMPQ        CX, $0
	JE          hdone
	MOVWLZX     (SI), AX
	MOVQ        AX, X4
	VCVTPH2PS   X4, X4
	VFMADD231SS (DI), X4, X0
	ADDQ        $2, SI
	ADDQ        $4, DI
	DECQ        CX
	JMP         h1

hdone:
	VZEROUPPER
	MOVSS X0, ret+48(FP)
	RET

// func f16DecodeAVX2(dst []float32, w []uint16)
TEXT ·f16DecodeAVX2(SB), NOSPLIT, $0-48
	MOVQ dst_base+0(FP), DI
	MOVQ w_base+24(FP), SI
	MOVQ w_len+32(FP), CX

hd8:
	CMPQ      CX, $8
	JL        hd1
	VCVTPH2PS (SI), Y4
	VMOVUPS   Y4, (DI)
	ADDQ      $16, SI
	ADDQ      $32, DI
	SUBQ      $8, CX
	JMP       hd8

hd1:
	CMPQ      CX, $0
	JE        hddone
	MOVWLZX   (SI), AX
	MOVQ      AX, X4
	VCVTPH2PS X4, X4
	VMOVSS    X4, (DI)
	ADDQ      $2, SI
	ADDQ      $4, DI
	DECQ      CX
	JMP       hd1

hddone:
	VZEROUPPER
	RET

// HSUM16(z, y, x, off) stores the sum of the 16 lanes of z at off(AX),
// using only EVEX-encodable instructions and Z16/Z17 as scratch.
#define HSUM16(z, y, off) \
	VEXTRACTF64X4 $1, z, Y16        \
	VADDPS        Y16, y, Y16       \
	VEXTRACTF32X4 $1, Y16, X17      \
	VADDPS        X17, X16, X16     \
	VPERMILPS     $0x4E, X16, X17   \
	VADDPS        X17, X16, X16     \
	VPERMILPS     $0xB1, X16, X17   \
	VADDPS        X17, X16, X16     \
	VMOVSS        X16, off(AX)

// DOT4x4_STEP multiplies the four x rows in Z16..Z19 by the four w rows at
// (DI), (DI)(R10), (DI)(R10*2), (DI)(R11) into Z0..Z15 (Z[4a+b]).
#define DOT4x4_STEP \
	VFMADD231PS Z20, Z16, Z0  \
	VFMADD231PS Z20, Z17, Z4  \
	VFMADD231PS Z20, Z18, Z8  \
	VFMADD231PS Z20, Z19, Z12 \
	VFMADD231PS Z21, Z16, Z1  \
	VFMADD231PS Z21, Z17, Z5  \
	VFMADD231PS Z21, Z18, Z9  \
	VFMADD231PS Z21, Z19, Z13 \
	VFMADD231PS Z22, Z16, Z2  \
	VFMADD231PS Z22, Z17, Z6  \
	VFMADD231PS Z22, Z18, Z10 \
	VFMADD231PS Z22, Z19, Z14 \
	VFMADD231PS Z23, Z16, Z3  \
	VFMADD231PS Z23, Z17, Z7  \
	VFMADD231PS Z23, Z18, Z11 \
	VFMADD231PS Z23, Z19, Z15

// func dot4x4AVX512(t *[16]float32, x []float32, ldx int, w []float32, ldw int, K int)
TEXT ·dot4x4AVX512(SB), NOSPLIT, $0-80
	MOVQ x_base+8(FP), SI
	MOVQ ldx+32(FP), R8
	SHLQ $2, R8
	LEAQ (R8)(R8*2), R9
	MOVQ w_base+40(FP), DI
	MOVQ ldw+64(FP), R10
	SHLQ $2, R10
	LEAQ (R10)(R10*2), R11
	MOVQ K+72(FP), CX
	VXORPS Z0, Z0, Z0
	VXORPS Z1, Z1, Z1
	VXORPS Z2, Z2, Z2
	VXORPS Z3, Z3, Z3
	VXORPS Z4, Z4, Z4
	VXORPS Z5, Z5, Z5
	VXORPS Z6, Z6, Z6
	VXORPS Z7, Z7, Z7
	VXORPS Z8, Z8, Z8
	VXORPS Z9, Z9, Z9
	VXORPS Z10, Z10, Z10
	VXORPS Z11, Z11, Z11
	VXORPS Z12, Z12, Z12
	VXORPS Z13, Z13, Z13
	VXORPS Z14, Z14, Z14
	VXORPS Z15, Z15, Z15
	CMPQ   CX, $16
	JL     t4tail

t4loop:
	VMOVUPS (SI), Z16
	VMOVUPS (SI)(R8*1), Z17
	VMOVUPS (SI)(R8*2), Z18
	VMOVUPS (SI)(R9*1), Z19
	VMOVUPS (DI), Z20
	VMOVUPS (DI)(R10*1), Z21
	VMOVUPS (DI)(R10*2), Z22
	VMOVUPS (DI)(R11*1), Z23
	DOT4x4_STEP
	ADDQ    $64, SI
	ADDQ    $64, DI
	SUBQ    $16, CX
	CMPQ    CX, $16
	JGE     t4loop

t4tail:
	// The last 0..15 columns under a mask; masked-off lanes are not read.
	MOVL      $1, AX
	SHLL      CX, AX
	DECL      AX
	KMOVW     AX, K1
	VMOVUPS.Z (SI), K1, Z16
	VMOVUPS.Z (SI)(R8*1), K1, Z17
	VMOVUPS.Z (SI)(R8*2), K1, Z18
	VMOVUPS.Z (SI)(R9*1), K1, Z19
	VMOVUPS.Z (DI), K1, Z20
	VMOVUPS.Z (DI)(R10*1), K1, Z21
	VMOVUPS.Z (DI)(R10*2), K1, Z22
	VMOVUPS.Z (DI)(R11*1), K1, Z23
	DOT4x4_STEP
	MOVQ      t+0(FP), AX
	HSUM16(Z0, Y0, 0)
	HSUM16(Z1, Y1, 4)
	HSUM16(Z2, Y2, 8)
	HSUM16(Z3, Y3, 12)
	HSUM16(Z4, Y4, 16)
	HSUM16(Z5, Y5, 20)
	HSUM16(Z6, Y6, 24)
	HSUM16(Z7, Y7, 28)
	HSUM16(Z8, Y8, 32)
	HSUM16(Z9, Y9, 36)
	HSUM16(Z10, Y10, 40)
	HSUM16(Z11, Y11, 44)
	HSUM16(Z12, Y12, 48)
	HSUM16(Z13, Y13, 52)
	HSUM16(Z14, Y14, 56)
	HSUM16(Z15, Y15, 60)
	VZEROUPPER
	RET

// HSUM8(y, x, off) stores the sum of the 8 lanes of y at off(AX).
#define HSUM8(y, x, off) \
	VEXTRACTF128 $1, y, X8 \
	VADDPS       X8, x, X8 \
	VHADDPS      X8, X8, X8 \
	VHADDPS      X8, X8, X8 \
	VMOVSS       X8, off(AX)

// func dot2x4AVX2(t *[8]float32, x []float32, ldx int, w []float32, ldw int, K int)
// K must be a multiple of 8.
TEXT ·dot2x4AVX2(SB), NOSPLIT, $0-80
	MOVQ   x_base+8(FP), SI
	MOVQ   ldx+32(FP), R8
	SHLQ   $2, R8
	MOVQ   w_base+40(FP), DI
	MOVQ   ldw+64(FP), R10
	SHLQ   $2, R10
	LEAQ   (R10)(R10*2), R11
	MOVQ   K+72(FP), CX
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	VXORPS Y4, Y4, Y4
	VXORPS Y5, Y5, Y5
	VXORPS Y6, Y6, Y6
	VXORPS Y7, Y7, Y7
	TESTQ  CX, CX
	JE     t2done

t2loop:
	VMOVUPS     (SI), Y8
	VMOVUPS     (SI)(R8*1), Y9
	VMOVUPS     (DI), Y10
	VMOVUPS     (DI)(R10*1), Y11
	VMOVUPS     (DI)(R10*2), Y12
	VMOVUPS     (DI)(R11*1), Y13
	VFMADD231PS Y10, Y8, Y0
	VFMADD231PS Y11, Y8, Y1
	VFMADD231PS Y12, Y8, Y2
	VFMADD231PS Y13, Y8, Y3
	VFMADD231PS Y10, Y9, Y4
	VFMADD231PS Y11, Y9, Y5
	VFMADD231PS Y12, Y9, Y6
	VFMADD231PS Y13, Y9, Y7
	ADDQ        $32, SI
	ADDQ        $32, DI
	SUBQ        $8, CX
	JNE         t2loop

t2done:
	MOVQ t+0(FP), AX
	HSUM8(Y0, X0, 0)
	HSUM8(Y1, X1, 4)
	HSUM8(Y2, X2, 8)
	HSUM8(Y3, X3, 12)
	HSUM8(Y4, X4, 16)
	HSUM8(Y5, X5, 20)
	HSUM8(Y6, X6, 24)
	HSUM8(Y7, X7, 28)
	VZEROUPPER
	RET

// func acc4x64AVX512(dx []float32, ldx int, dy []float32, ldy int, w []float32, ldw int, R int)
TEXT ·acc4x64AVX512(SB), NOSPLIT, $0-104
	MOVQ dx_base+0(FP), AX
	MOVQ ldx+24(FP), BX
	SHLQ $2, BX
	LEAQ (BX)(BX*2), DX
	MOVQ dy_base+32(FP), SI
	MOVQ ldy+56(FP), R8
	SHLQ $2, R8
	LEAQ (R8)(R8*2), R9
	MOVQ w_base+64(FP), DI
	MOVQ ldw+88(FP), R10
	SHLQ $2, R10
	MOVQ R+96(FP), CX
	TILE4X64_LOAD
	TESTQ   CX, CX
	JE      a4done

a4loop:
	VMOVUPS      (DI), Z16
	VMOVUPS      64(DI), Z17
	VMOVUPS      128(DI), Z18
	VMOVUPS      192(DI), Z19
	VBROADCASTSS (SI), Z20
	VBROADCASTSS (SI)(R8*1), Z21
	VBROADCASTSS (SI)(R8*2), Z22
	VBROADCASTSS (SI)(R9*1), Z23
	VFMADD231PS  Z20, Z16, Z0
	VFMADD231PS  Z20, Z17, Z1
	VFMADD231PS  Z20, Z18, Z2
	VFMADD231PS  Z20, Z19, Z3
	VFMADD231PS  Z21, Z16, Z4
	VFMADD231PS  Z21, Z17, Z5
	VFMADD231PS  Z21, Z18, Z6
	VFMADD231PS  Z21, Z19, Z7
	VFMADD231PS  Z22, Z16, Z8
	VFMADD231PS  Z22, Z17, Z9
	VFMADD231PS  Z22, Z18, Z10
	VFMADD231PS  Z22, Z19, Z11
	VFMADD231PS  Z23, Z16, Z12
	VFMADD231PS  Z23, Z17, Z13
	VFMADD231PS  Z23, Z18, Z14
	VFMADD231PS  Z23, Z19, Z15
	ADDQ         $4, SI
	ADDQ         R10, DI
	DECQ         CX
	JNE          a4loop

a4done:
	TILE4X64_STORE
	VZEROUPPER
	RET

// func acc4x16AVX2(dx []float32, ldx int, dy []float32, ldy int, w []float32, ldw int, R int)
TEXT ·acc4x16AVX2(SB), NOSPLIT, $0-104
	MOVQ    dx_base+0(FP), AX
	MOVQ    ldx+24(FP), BX
	SHLQ    $2, BX
	LEAQ    (BX)(BX*2), DX
	MOVQ    dy_base+32(FP), SI
	MOVQ    ldy+56(FP), R8
	SHLQ    $2, R8
	LEAQ    (R8)(R8*2), R9
	MOVQ    w_base+64(FP), DI
	MOVQ    ldw+88(FP), R10
	SHLQ    $2, R10
	MOVQ    R+96(FP), CX
	VMOVUPS (AX), Y0
	VMOVUPS 32(AX), Y1
	VMOVUPS (AX)(BX*1), Y2
	VMOVUPS 32(AX)(BX*1), Y3
	VMOVUPS (AX)(BX*2), Y4
	VMOVUPS 32(AX)(BX*2), Y5
	VMOVUPS (AX)(DX*1), Y6
	VMOVUPS 32(AX)(DX*1), Y7
	TESTQ   CX, CX
	JE      b4done

b4loop:
	VMOVUPS      (DI), Y8
	VMOVUPS      32(DI), Y9
	VBROADCASTSS (SI), Y10
	VBROADCASTSS (SI)(R8*1), Y11
	VBROADCASTSS (SI)(R8*2), Y12
	VBROADCASTSS (SI)(R9*1), Y13
	VFMADD231PS  Y10, Y8, Y0
	VFMADD231PS  Y10, Y9, Y1
	VFMADD231PS  Y11, Y8, Y2
	VFMADD231PS  Y11, Y9, Y3
	VFMADD231PS  Y12, Y8, Y4
	VFMADD231PS  Y12, Y9, Y5
	VFMADD231PS  Y13, Y8, Y6
	VFMADD231PS  Y13, Y9, Y7
	ADDQ         $4, SI
	ADDQ         R10, DI
	DECQ         CX
	JNE          b4loop

b4done:
	VMOVUPS Y0, (AX)
	VMOVUPS Y1, 32(AX)
	VMOVUPS Y2, (AX)(BX*1)
	VMOVUPS Y3, 32(AX)(BX*1)
	VMOVUPS Y4, (AX)(BX*2)
	VMOVUPS Y5, 32(AX)(BX*2)
	VMOVUPS Y6, (AX)(DX*1)
	VMOVUPS Y7, 32(AX)(DX*1)
	VZEROUPPER
	RET

// func bf16Dot2AVX512(w []uint16, x []float32, ldx int, out *[2]float32)
//
// bf16DotAVX512 for two activation rows (x and x[ldx:]): each weight is
// widened once and multiplied into both.
TEXT ·bf16Dot2AVX512(SB), NOSPLIT, $0-64
	MOVQ   w_base+0(FP), SI
	MOVQ   w_len+8(FP), CX
	MOVQ   x_base+24(FP), DI
	MOVQ   ldx+48(FP), BX
	SHLQ   $2, BX
	VXORPS Z0, Z0, Z0
	VXORPS Z1, Z1, Z1
	VXORPS Z2, Z2, Z2
	VXORPS Z3, Z3, Z3

e32:
	CMPQ        CX, $32
	JL          e16
	VPMOVZXWD   (SI), Z4
	VPMOVZXWD   32(SI), Z5
	VPSLLD      $16, Z4, Z4
	VPSLLD      $16, Z5, Z5
	VFMADD231PS (DI), Z4, Z0
	VFMADD231PS 64(DI), Z5, Z1
	VFMADD231PS (DI)(BX*1), Z4, Z2
	VFMADD231PS 64(DI)(BX*1), Z5, Z3
	ADDQ        $64, SI
	ADDQ        $128, DI
	SUBQ        $32, CX
	JMP         e32

e16:
	CMPQ        CX, $16
	JL          esum
	VPMOVZXWD   (SI), Z4
	VPSLLD      $16, Z4, Z4
	VFMADD231PS (DI), Z4, Z0
	VFMADD231PS (DI)(BX*1), Z4, Z2
	ADDQ        $32, SI
	ADDQ        $64, DI
	SUBQ        $16, CX

esum:
	VADDPS        Z1, Z0, Z0
	VADDPS        Z3, Z2, Z2
	VEXTRACTF64X4 $1, Z0, Y1
	VADDPS        Y1, Y0, Y0
	VEXTRACTF128  $1, Y0, X1
	VADDPS        X1, X0, X0
	VHADDPS       X0, X0, X0
	VHADDPS       X0, X0, X0
	VEXTRACTF64X4 $1, Z2, Y3
	VADDPS        Y3, Y2, Y2
	VEXTRACTF128  $1, Y2, X3
	VADDPS        X3, X2, X2
	VHADDPS       X2, X2, X2
	VHADDPS       X2, X2, X2

e1:
	CMPQ        CX, $0
	JE          edone
	MOVWLZX     (SI), AX
	SHLL        $16, AX
	MOVQ        AX, X4
	VFMADD231SS (DI), X4, X0
	VFMADD231SS (DI)(BX*1), X4, X2
	ADDQ        $2, SI
	ADDQ        $4, DI
	DECQ        CX
	JMP         e1

edone:
	MOVQ   out+56(FP), AX
	VMOVSS X0, (AX)
	VMOVSS X2, 4(AX)
	VZEROUPPER
	RET
