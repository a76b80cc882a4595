//go:build !noasm

#include "textflag.h"

// HSUM leaves the sum of the 16 lanes of Z in the low lane of X, through
// the scratch register Y4/X4.
#define HSUM(Z, Y, X) \
	VEXTRACTF64X4 $1, Z, Y4 \
	VADDPS        Y4, Y, Y  \
	VEXTRACTF128  $1, Y, X4 \
	VADDPS        X4, X, X  \
	VPERMILPS     $0x4E, X, X4 \
	VADDPS        X4, X, X  \
	VPERMILPS     $0xB1, X, X4 \
	VADDSS        X4, X, X

// func loraDown16AVX512(t, x []float32, a []uint16, nb, in, v, r int)
// Rows past nb repeat the last one, so every block runs as four rows and
// only the first nb sums are stored.
TEXT ·loraDown16AVX512(SB), NOSPLIT, $0-104
	MOVQ t_base+0(FP), R14
	MOVQ x_base+24(FP), R8
	MOVQ a_base+48(FP), SI
	MOVQ nb+72(FP), BX
	MOVQ in+80(FP), R12
	MOVQ v+88(FP), CX
	MOVQ r+96(FP), DX
	MOVQ DX, AX
	SHLQ $2, AX // t row stride in bytes
	SHLQ $2, R12 // x row stride in bytes
	MOVQ R8, R9
	CMPQ BX, $2
	JLT  d1
	ADDQ R12, R9
d1:
	MOVQ R9, R10
	CMPQ BX, $3
	JLT  d2
	ADDQ R12, R10
d2:
	MOVQ R10, R11
	CMPQ BX, $4
	JLT  d3
	ADDQ R12, R11
d3:
	SHRQ $1, R12 // a row stride in bytes
	SUBQ $32, CX // last column where 32 more fit

dj:
	TESTQ  DX, DX
	JZ     ddone
	VXORPS Z0, Z0, Z0
	VXORPS Z1, Z1, Z1
	VXORPS Z2, Z2, Z2
	VXORPS Z3, Z3, Z3
	VXORPS Z5, Z5, Z5
	VXORPS Z6, Z6, Z6
	VXORPS Z7, Z7, Z7
	VXORPS Z8, Z8, Z8
	XORQ   R13, R13

dk32:
	CMPQ        R13, CX
	JGT         dk16
	VPMOVZXWD   (SI)(R13*2), Z4
	VPMOVZXWD   32(SI)(R13*2), Z9
	VPSLLD      $16, Z4, Z4
	VPSLLD      $16, Z9, Z9
	VFMADD231PS (R8)(R13*4), Z4, Z0
	VFMADD231PS (R9)(R13*4), Z4, Z1
	VFMADD231PS (R10)(R13*4), Z4, Z2
	VFMADD231PS (R11)(R13*4), Z4, Z3
	VFMADD231PS 64(R8)(R13*4), Z9, Z5
	VFMADD231PS 64(R9)(R13*4), Z9, Z6
	VFMADD231PS 64(R10)(R13*4), Z9, Z7
	VFMADD231PS 64(R11)(R13*4), Z9, Z8
	ADDQ        $32, R13
	JMP         dk32

dk16:
	CMPQ        R13, v+88(FP)
	JGE         dred
	VPMOVZXWD   (SI)(R13*2), Z4
	VPSLLD      $16, Z4, Z4
	VFMADD231PS (R8)(R13*4), Z4, Z0
	VFMADD231PS (R9)(R13*4), Z4, Z1
	VFMADD231PS (R10)(R13*4), Z4, Z2
	VFMADD231PS (R11)(R13*4), Z4, Z3

dred:
	VADDPS Z5, Z0, Z0
	VADDPS Z6, Z1, Z1
	VADDPS Z7, Z2, Z2
	VADDPS Z8, Z3, Z3
	HSUM(Z0, Y0, X0)
	HSUM(Z1, Y1, X1)
	HSUM(Z2, Y2, X2)
	HSUM(Z3, Y3, X3)
	MOVSS  X0, (R14)
	CMPQ   BX, $2
	JLT    dnext
	MOVSS  X1, (R14)(AX*1)
	CMPQ   BX, $3
	JLT    dnext
	MOVSS  X2, (R14)(AX*2)
	CMPQ   BX, $4
	JLT    dnext
	LEAQ   (R14)(AX*2), R13
	MOVSS  X3, (R13)(AX*1)

dnext:
	ADDQ $4, R14
	ADDQ R12, SI
	DECQ DX
	JMP  dj

ddone:
	VZEROUPPER
	RET

// func loraUp16AVX512(y, t []float32, bt []uint16, nb, out, v, r int)
// Rows past nb repeat the last one: each column block loads every row of y
// before it stores any, so a repeated row stores the same sums twice.
TEXT ·loraUp16AVX512(SB), NOSPLIT, $0-104
	MOVQ y_base+0(FP), R8
	MOVQ t_base+24(FP), R12
	MOVQ bt_base+48(FP), SI
	MOVQ nb+72(FP), BX
	MOVQ out+80(FP), CX
	MOVQ r+96(FP), DX
	SHLQ $2, CX // y row stride in bytes
	SHLQ $2, DX // t row stride in bytes
	MOVQ R8, R9
	MOVQ R12, R13
	CMPQ BX, $2
	JLT  u1
	ADDQ CX, R9
	ADDQ DX, R13
u1:
	MOVQ R9, R10
	MOVQ R13, R14
	CMPQ BX, $3
	JLT  u2
	ADDQ CX, R10
	ADDQ DX, R14
u2:
	MOVQ R10, R11
	MOVQ R14, R15
	CMPQ BX, $4
	JLT  u3
	ADDQ CX, R11
	ADDQ DX, R15
u3:
	SHRQ $1, CX // bt row stride in bytes
	MOVQ v+88(FP), AX
	SUBQ $32, AX // last column where 32 more fit
	XORQ BX, BX

uo32:
	CMPQ    BX, AX
	JGT     uo16
	VMOVUPS (R8)(BX*4), Z0
	VMOVUPS (R9)(BX*4), Z1
	VMOVUPS (R10)(BX*4), Z2
	VMOVUPS (R11)(BX*4), Z3
	VMOVUPS 64(R8)(BX*4), Z5
	VMOVUPS 64(R9)(BX*4), Z6
	VMOVUPS 64(R10)(BX*4), Z7
	VMOVUPS 64(R11)(BX*4), Z8
	LEAQ    (SI)(BX*2), DI
	XORQ    DX, DX

uj32:
	CMPQ         DX, r+96(FP)
	JGE          us32
	VPMOVZXWD    (DI), Z4
	VPMOVZXWD    32(DI), Z9
	VPSLLD       $16, Z4, Z4
	VPSLLD       $16, Z9, Z9
	VBROADCASTSS (R12)(DX*4), Z10
	VBROADCASTSS (R13)(DX*4), Z11
	VBROADCASTSS (R14)(DX*4), Z12
	VBROADCASTSS (R15)(DX*4), Z13
	VFMADD231PS  Z10, Z4, Z0
	VFMADD231PS  Z11, Z4, Z1
	VFMADD231PS  Z12, Z4, Z2
	VFMADD231PS  Z13, Z4, Z3
	VFMADD231PS  Z10, Z9, Z5
	VFMADD231PS  Z11, Z9, Z6
	VFMADD231PS  Z12, Z9, Z7
	VFMADD231PS  Z13, Z9, Z8
	ADDQ         CX, DI
	INCQ         DX
	JMP          uj32

us32:
	VMOVUPS Z0, (R8)(BX*4)
	VMOVUPS Z1, (R9)(BX*4)
	VMOVUPS Z2, (R10)(BX*4)
	VMOVUPS Z3, (R11)(BX*4)
	VMOVUPS Z5, 64(R8)(BX*4)
	VMOVUPS Z6, 64(R9)(BX*4)
	VMOVUPS Z7, 64(R10)(BX*4)
	VMOVUPS Z8, 64(R11)(BX*4)
	ADDQ    $32, BX
	JMP     uo32

uo16:
	CMPQ    BX, v+88(FP)
	JGE     udone
	VMOVUPS (R8)(BX*4), Z0
	VMOVUPS (R9)(BX*4), Z1
	VMOVUPS (R10)(BX*4), Z2
	VMOVUPS (R11)(BX*4), Z3
	LEAQ    (SI)(BX*2), DI
	XORQ    DX, DX

uj16:
	CMPQ         DX, r+96(FP)
	JGE          us16
	VPMOVZXWD    (DI), Z4
	VPSLLD       $16, Z4, Z4
	VBROADCASTSS (R12)(DX*4), Z10
	VBROADCASTSS (R13)(DX*4), Z11
	VBROADCASTSS (R14)(DX*4), Z12
	VBROADCASTSS (R15)(DX*4), Z13
	VFMADD231PS  Z10, Z4, Z0
	VFMADD231PS  Z11, Z4, Z1
	VFMADD231PS  Z12, Z4, Z2
	VFMADD231PS  Z13, Z4, Z3
	ADDQ         CX, DI
	INCQ         DX
	JMP          uj16

us16:
	VMOVUPS Z0, (R8)(BX*4)
	VMOVUPS Z1, (R9)(BX*4)
	VMOVUPS Z2, (R10)(BX*4)
	VMOVUPS Z3, (R11)(BX*4)

udone:
	VZEROUPPER
	RET
