//go:build !noasm

#include "textflag.h"

// func dotAVX2(a, b []float32) float32
TEXT ·dotAVX2(SB), NOSPLIT, $0-52
	MOVQ   a_base+0(FP), SI
	MOVQ   b_base+24(FP), DI
	MOVQ   a_len+8(FP), CX
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	CMPQ   CX, $32
	JL     dot8

dot32:
	VMOVUPS     (SI), Y4
	VMOVUPS     32(SI), Y5
	VMOVUPS     64(SI), Y6
	VMOVUPS     96(SI), Y7
	VFMADD231PS (DI), Y4, Y0
	VFMADD231PS 32(DI), Y5, Y1
	VFMADD231PS 64(DI), Y6, Y2
	VFMADD231PS 96(DI), Y7, Y3
	ADDQ        $128, SI
	ADDQ        $128, DI
	SUBQ        $32, CX
	CMPQ        CX, $32
	JGE         dot32

dot8:
	CMPQ        CX, $8
	JL          dotsum
	VMOVUPS     (SI), Y4
	VFMADD231PS (DI), Y4, Y0
	ADDQ        $32, SI
	ADDQ        $32, DI
	SUBQ        $8, CX
	JMP         dot8

dotsum:
	VADDPS       Y1, Y0, Y0
	VADDPS       Y3, Y2, Y2
	VADDPS       Y2, Y0, Y0
	VEXTRACTF128 $1, Y0, X1
	VADDPS       X1, X0, X0
	VHADDPS      X0, X0, X0
	VHADDPS      X0, X0, X0

dot1:
	CMPQ        CX, $0
	JE          dotdone
	VMOVSS      (SI), X1
	VFMADD231SS (DI), X1, X0
	ADDQ        $4, SI
	ADDQ        $4, DI
	DECQ        CX
	JMP         dot1

dotdone:
	VZEROUPPER
	MOVSS X0, ret+48(FP)
	RET

// func sumSqAVX2(x []float32) float32
TEXT ·sumSqAVX2(SB), NOSPLIT, $0-28
	MOVQ   x_base+0(FP), SI
	MOVQ   x_len+8(FP), CX
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	CMPQ   CX, $32
	JL     sq8

sq32:
	VMOVUPS     (SI), Y4
	VMOVUPS     32(SI), Y5
	VMOVUPS     64(SI), Y6
	VMOVUPS     96(SI), Y7
	VFMADD231PS Y4, Y4, Y0
	VFMADD231PS Y5, Y5, Y1
	VFMADD231PS Y6, Y6, Y2
	VFMADD231PS Y7, Y7, Y3
	ADDQ        $128, SI
	SUBQ        $32, CX
	CMPQ        CX, $32
	JGE         sq32

sq8:
	CMPQ        CX, $8
	JL          sqsum
	VMOVUPS     (SI), Y4
	VFMADD231PS Y4, Y4, Y0
	ADDQ        $32, SI
	SUBQ        $8, CX
	JMP         sq8

sqsum:
	VADDPS       Y1, Y0, Y0
	VADDPS       Y3, Y2, Y2
	VADDPS       Y2, Y0, Y0
	VEXTRACTF128 $1, Y0, X1
	VADDPS       X1, X0, X0
	VHADDPS      X0, X0, X0
	VHADDPS      X0, X0, X0

sq1:
	CMPQ        CX, $0
	JE          sqdone
	VMOVSS      (SI), X1
	VFMADD231SS X1, X1, X0
	ADDQ        $4, SI
	DECQ        CX
	JMP         sq1

sqdone:
	VZEROUPPER
	MOVSS X0, ret+24(FP)
	RET

// func axpyAVX2(alpha float32, x, y []float32)
TEXT ·axpyAVX2(SB), NOSPLIT, $0-56
	VBROADCASTSS alpha+0(FP), Y0
	MOVQ         x_base+8(FP), SI
	MOVQ         x_len+16(FP), CX
	MOVQ         y_base+32(FP), DI
	CMPQ         CX, $32
	JL           axpy8

axpy32:
	VMOVUPS     (DI), Y4
	VMOVUPS     32(DI), Y5
	VMOVUPS     64(DI), Y6
	VMOVUPS     96(DI), Y7
	VFMADD231PS (SI), Y0, Y4
	VFMADD231PS 32(SI), Y0, Y5
	VFMADD231PS 64(SI), Y0, Y6
	VFMADD231PS 96(SI), Y0, Y7
	VMOVUPS     Y4, (DI)
	VMOVUPS     Y5, 32(DI)
	VMOVUPS     Y6, 64(DI)
	VMOVUPS     Y7, 96(DI)
	ADDQ        $128, SI
	ADDQ        $128, DI
	SUBQ        $32, CX
	CMPQ        CX, $32
	JGE         axpy32

axpy8:
	CMPQ        CX, $8
	JL          axpy1
	VMOVUPS     (DI), Y4
	VFMADD231PS (SI), Y0, Y4
	VMOVUPS     Y4, (DI)
	ADDQ        $32, SI
	ADDQ        $32, DI
	SUBQ        $8, CX
	JMP         axpy8

axpy1:
	CMPQ        CX, $0
	JE          axpydone
	VMOVSS      (DI), X4
	VFMADD231SS (SI), X0, X4
	VMOVSS      X4, (DI)
	ADDQ        $4, SI
	ADDQ        $4, DI
	DECQ        CX
	JMP         axpy1

axpydone:
	VZEROUPPER
	RET

// func scaleAVX2(alpha float32, x []float32)
TEXT ·scaleAVX2(SB), NOSPLIT, $0-32
	VBROADCASTSS alpha+0(FP), Y0
	MOVQ         x_base+8(FP), DI
	MOVQ         x_len+16(FP), CX

scale8:
	CMPQ    CX, $8
	JL      scale1
	VMULPS  (DI), Y0, Y4
	VMOVUPS Y4, (DI)
	ADDQ    $32, DI
	SUBQ    $8, CX
	JMP     scale8

scale1:
	CMPQ   CX, $0
	JE     scaledone
	VMULSS (DI), X0, X4
	VMOVSS X4, (DI)
	ADDQ   $4, DI
	DECQ   CX
	JMP    scale1

scaledone:
	VZEROUPPER
	RET

// func addAVX2(dst, x []float32)
TEXT ·addAVX2(SB), NOSPLIT, $0-48
	MOVQ dst_base+0(FP), DI
	MOVQ x_base+24(FP), SI
	MOVQ x_len+32(FP), CX

add8:
	CMPQ    CX, $8
	JL      add1
	VMOVUPS (DI), Y4
	VADDPS  (SI), Y4, Y4
	VMOVUPS Y4, (DI)
	ADDQ    $32, SI
	ADDQ    $32, DI
	SUBQ    $8, CX
	JMP     add8

add1:
	CMPQ   CX, $0
	JE     adddone
	VMOVSS (DI), X4
	VADDSS (SI), X4, X4
	VMOVSS X4, (DI)
	ADDQ   $4, SI
	ADDQ   $4, DI
	DECQ   CX
	JMP    add1

adddone:
	VZEROUPPER
	RET

// func mulAVX2(dst, x []float32)
TEXT ·mulAVX2(SB), NOSPLIT, $0-48
	MOVQ dst_base+0(FP), DI
	MOVQ x_base+24(FP), SI
	MOVQ x_len+32(FP), CX

mul8:
	CMPQ    CX, $8
	JL      mul1
	VMOVUPS (DI), Y4
	VMULPS  (SI), Y4, Y4
	VMOVUPS Y4, (DI)
	ADDQ    $32, SI
	ADDQ    $32, DI
	SUBQ    $8, CX
	JMP     mul8

mul1:
	CMPQ   CX, $0
	JE     muldone
	VMOVSS (DI), X4
	VMULSS (SI), X4, X4
	VMOVSS X4, (DI)
	ADDQ   $4, SI
	ADDQ   $4, DI
	DECQ   CX
	JMP    mul1

muldone:
	VZEROUPPER
	RET

// func dotAVX512(a, b []float32) float32
TEXT ·dotAVX512(SB), NOSPLIT, $0-52
	MOVQ   a_base+0(FP), SI
	MOVQ   b_base+24(FP), DI
	MOVQ   a_len+8(FP), CX
	VXORPS Z0, Z0, Z0
	VXORPS Z1, Z1, Z1
	VXORPS Z2, Z2, Z2
	VXORPS Z3, Z3, Z3
	CMPQ   CX, $64
	JL     d16

d64:
	VMOVUPS     (SI), Z4
	VMOVUPS     64(SI), Z5
	VMOVUPS     128(SI), Z6
	VMOVUPS     192(SI), Z7
	VFMADD231PS (DI), Z4, Z0
	VFMADD231PS 64(DI), Z5, Z1
	VFMADD231PS 128(DI), Z6, Z2
	VFMADD231PS 192(DI), Z7, Z3
	ADDQ        $256, SI
	ADDQ        $256, DI
	SUBQ        $64, CX
	CMPQ        CX, $64
	JGE         d64

d16:
	CMPQ        CX, $16
	JL          dtail
	VMOVUPS     (SI), Z4
	VFMADD231PS (DI), Z4, Z0
	ADDQ        $64, SI
	ADDQ        $64, DI
	SUBQ        $16, CX
	JMP         d16

dtail:
	// The last 0..15 values under a mask: masked-off lanes are not read.
	MOVL        $1, AX
	SHLL        CX, AX
	DECL        AX
	KMOVW       AX, K1
	VMOVUPS.Z   (SI), K1, Z4
	VMOVUPS.Z   (DI), K1, Z5
	VFMADD231PS Z5, Z4, Z1
	VADDPS      Z1, Z0, Z0
	VADDPS      Z3, Z2, Z2
	VADDPS      Z2, Z0, Z0
	CALL        hsum512<>(SB)
	MOVSS       X0, ret+48(FP)
	RET

// hsum512 leaves the sum of the 16 lanes of Z0 in X0 and clears the upper
// state.
TEXT hsum512<>(SB), NOSPLIT|NOFRAME, $0-0
	VEXTRACTF64X4 $1, Z0, Y1
	VADDPS        Y1, Y0, Y0
	VEXTRACTF128  $1, Y0, X1
	VADDPS        X1, X0, X0
	VHADDPS       X0, X0, X0
	VHADDPS       X0, X0, X0
	VZEROUPPER
	RET

// func sumSqAVX512(x []float32) float32
TEXT ·sumSqAVX512(SB), NOSPLIT, $0-28
	MOVQ   x_base+0(FP), SI
	MOVQ   x_len+8(FP), CX
	VXORPS Z0, Z0, Z0
	VXORPS Z1, Z1, Z1
	VXORPS Z2, Z2, Z2
	VXORPS Z3, Z3, Z3
	CMPQ   CX, $64
	JL     s16

s64:
	VMOVUPS     (SI), Z4
	VMOVUPS     64(SI), Z5
	VMOVUPS     128(SI), Z6
	VMOVUPS     192(SI), Z7
	VFMADD231PS Z4, Z4, Z0
	VFMADD231PS Z5, Z5, Z1
	VFMADD231PS Z6, Z6, Z2
	VFMADD231PS Z7, Z7, Z3
	ADDQ        $256, SI
	SUBQ        $64, CX
	CMPQ        CX, $64
	JGE         s64

s16:
	CMPQ        CX, $16
	JL          stail
	VMOVUPS     (SI), Z4
	VFMADD231PS Z4, Z4, Z0
	ADDQ        $64, SI
	SUBQ        $16, CX
	JMP         s16

stail:
	MOVL        $1, AX
	SHLL        CX, AX
	DECL        AX
	KMOVW       AX, K1
	VMOVUPS.Z   (SI), K1, Z4
	VFMADD231PS Z4, Z4, Z1
	VADDPS      Z1, Z0, Z0
	VADDPS      Z3, Z2, Z2
	VADDPS      Z2, Z0, Z0
	CALL        hsum512<>(SB)
	MOVSS       X0, ret+24(FP)
	RET

// func axpyAVX512(alpha float32, x, y []float32)
TEXT ·axpyAVX512(SB), NOSPLIT, $0-56
	VBROADCASTSS alpha+0(FP), Z0
	MOVQ         x_base+8(FP), SI
	MOVQ         x_len+16(FP), CX
	MOVQ         y_base+32(FP), DI
	CMPQ         CX, $64
	JL           a16

a64:
	VMOVUPS     (DI), Z4
	VMOVUPS     64(DI), Z5
	VMOVUPS     128(DI), Z6
	VMOVUPS     192(DI), Z7
	VFMADD231PS (SI), Z0, Z4
	VFMADD231PS 64(SI), Z0, Z5
	VFMADD231PS 128(SI), Z0, Z6
	VFMADD231PS 192(SI), Z0, Z7
	VMOVUPS     Z4, (DI)
	VMOVUPS     Z5, 64(DI)
	VMOVUPS     Z6, 128(DI)
	VMOVUPS     Z7, 192(DI)
	ADDQ        $256, SI
	ADDQ        $256, DI
	SUBQ        $64, CX
	CMPQ        CX, $64
	JGE         a64

a16:
	CMPQ        CX, $16
	JL          atail
	VMOVUPS     (DI), Z4
	VFMADD231PS (SI), Z0, Z4
	VMOVUPS     Z4, (DI)
	ADDQ        $64, SI
	ADDQ        $64, DI
	SUBQ        $16, CX
	JMP         a16

atail:
	MOVL        $1, AX
	SHLL        CX, AX
	DECL        AX
	KMOVW       AX, K1
	VMOVUPS.Z   (DI), K1, Z4
	VMOVUPS.Z   (SI), K1, Z5
	VFMADD231PS Z5, Z0, Z4
	VMOVUPS     Z4, K1, (DI)
	VZEROUPPER
	RET

// func maxAVX2(x []float32) float32
// The largest non-NaN value of x, or -Inf when there is none.
TEXT ·maxAVX2(SB), NOSPLIT, $0-28
	MOVQ         x_base+0(FP), SI
	MOVQ         x_len+8(FP), CX
	MOVL         $0xff800000, AX
	MOVQ         AX, X15
	VPBROADCASTD X15, Y15
	VMOVAPS      Y15, Y0
	VMOVAPS      Y15, Y1

mx16:
	CMPQ      CX, $16
	JL        mx8
	VMOVUPS   (SI), Y2
	VMOVUPS   32(SI), Y4
	VCMPPS    $3, Y2, Y2, Y3
	VCMPPS    $3, Y4, Y4, Y5
	VBLENDVPS Y3, Y15, Y2, Y2
	VBLENDVPS Y5, Y15, Y4, Y4
	VMAXPS    Y2, Y0, Y0
	VMAXPS    Y4, Y1, Y1
	ADDQ      $64, SI
	SUBQ      $16, CX
	JMP       mx16

mx8:
	CMPQ      CX, $8
	JL        mxred
	VMOVUPS   (SI), Y2
	VCMPPS    $3, Y2, Y2, Y3
	VBLENDVPS Y3, Y15, Y2, Y2
	VMAXPS    Y2, Y0, Y0
	ADDQ      $32, SI
	SUBQ      $8, CX

mxred:
	VMAXPS       Y1, Y0, Y0
	VEXTRACTF128 $1, Y0, X1
	VMAXPS       X1, X0, X0
	VPERMILPS    $0x4E, X0, X1
	VMAXPS       X1, X0, X0
	VPERMILPS    $0xB1, X0, X1
	VMAXPS       X1, X0, X0

mx1:
	CMPQ     CX, $0
	JE       mxdone
	VMOVSS   (SI), X2
	VUCOMISS X2, X2
	JPS      mxnext
	VMAXSS   X2, X0, X0

mxnext:
	ADDQ $4, SI
	DECQ CX
	JMP  mx1

mxdone:
	VZEROUPPER
	MOVSS X0, ret+24(FP)
	RET

// func indexAVX2(x []float32, v float32) int
// The first i with x[i] == v, or -1.
TEXT ·indexAVX2(SB), NOSPLIT, $0-40
	MOVQ         x_base+0(FP), SI
	MOVQ         x_len+8(FP), CX
	VBROADCASTSS v+24(FP), Y0
	XORQ         DX, DX

ix8:
	CMPQ      CX, $8
	JL        ix1
	VCMPPS    $0, (SI), Y0, Y1
	VMOVMSKPS Y1, AX
	TESTL     AX, AX
	JNE       ixfound
	ADDQ      $32, SI
	ADDQ      $8, DX
	SUBQ      $8, CX
	JMP       ix8

ixfound:
	BSFL AX, AX
	ADDQ AX, DX
	MOVQ DX, ret+32(FP)
	VZEROUPPER
	RET

ix1:
	CMPQ     CX, $0
	JE       ixnone
	VUCOMISS (SI), X0
	JPS      ixnext
	JEQ      ixone

ixnext:
	ADDQ $4, SI
	INCQ DX
	DECQ CX
	JMP  ix1

ixone:
	MOVQ DX, ret+32(FP)
	VZEROUPPER
	RET

ixnone:
	MOVQ $-1, ret+32(FP)
	VZEROUPPER
	RET
