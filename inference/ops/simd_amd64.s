//go:build !noasm

#include "textflag.h"

// The constants of expSlice's algorithm (exp.go), as float32 bits.
DATA expc<>+0(SB)/4, $0x3fb8aa3b  // log2(e)
DATA expc<>+4(SB)/4, $0x3f318000  // c1
DATA expc<>+8(SB)/4, $0xb95e8083  // c2
DATA expc<>+12(SB)/4, $0x39506967 // polynomial, highest degree first
DATA expc<>+16(SB)/4, $0x3ab743ce
DATA expc<>+20(SB)/4, $0x3c088908
DATA expc<>+24(SB)/4, $0x3d2aa9c1
DATA expc<>+28(SB)/4, $0x3e2aaaaa
DATA expc<>+32(SB)/4, $0x3f000000
DATA expc<>+36(SB)/4, $0x3f800000 // 1
DATA expc<>+40(SB)/4, $0x42b17217 // above: +Inf
DATA expc<>+44(SB)/4, $0xc2aeac4f // below: 0
DATA expc<>+48(SB)/4, $0x7f800000 // +Inf
GLOBL expc<>(SB), RODATA|NOPTR, $52

// EXPCONSTS loads the constants into Z16-Z28 and zero into Z29.
#define EXPCONSTS \
	VBROADCASTSS expc<>+0(SB), Z16; \
	VBROADCASTSS expc<>+4(SB), Z17; \
	VBROADCASTSS expc<>+8(SB), Z18; \
	VBROADCASTSS expc<>+12(SB), Z19; \
	VBROADCASTSS expc<>+16(SB), Z20; \
	VBROADCASTSS expc<>+20(SB), Z21; \
	VBROADCASTSS expc<>+24(SB), Z22; \
	VBROADCASTSS expc<>+28(SB), Z23; \
	VBROADCASTSS expc<>+32(SB), Z24; \
	VBROADCASTSS expc<>+36(SB), Z25; \
	VBROADCASTSS expc<>+40(SB), Z26; \
	VBROADCASTSS expc<>+44(SB), Z27; \
	VBROADCASTSS expc<>+48(SB), Z28; \
	VXORPS       Z29, Z29, Z29

// EXP16 sets Z1 = e^Z0 lane by lane as expSlice does, using Z2-Z5 and
// K1-K3: n = round(x·log2 e), r = x − n·ln 2 in two parts, the polynomial
// for e^r, then the scale by 2^n; NaN stays, the ends saturate.
#define EXP16 \
	VMINPS       Z26, Z0, Z2; \
	VMAXPS       Z27, Z2, Z2; \
	VMULPS       Z16, Z2, Z3; \
	VRNDSCALEPS  $0, Z3, Z3; \
	VMOVAPS      Z2, Z4; \
	VFNMADD231PS Z17, Z3, Z4; \
	VFNMADD231PS Z18, Z3, Z4; \
	VMOVAPS      Z19, Z5; \
	VFMADD213PS  Z20, Z4, Z5; \
	VFMADD213PS  Z21, Z4, Z5; \
	VFMADD213PS  Z22, Z4, Z5; \
	VFMADD213PS  Z23, Z4, Z5; \
	VFMADD213PS  Z24, Z4, Z5; \
	VMULPS       Z4, Z5, Z5; \
	VFMADD213PS  Z4, Z4, Z5; \
	VADDPS       Z25, Z5, Z5; \
	VSCALEFPS    Z3, Z5, Z1; \
	VCMPPS       $0x1e, Z26, Z0, K1; \
	VMOVAPS      Z28, K1, Z1; \
	VCMPPS       $0x11, Z27, Z0, K2; \
	VMOVAPS      Z29, K2, Z1; \
	VCMPPS       $3, Z0, Z0, K3; \
	VMOVAPS      Z0, K3, Z1

// func expAVX512(x []float32)
TEXT ·expAVX512(SB), NOSPLIT, $0-24
	MOVQ x_base+0(FP), SI
	MOVQ x_len+8(FP), CX
	SHRQ $4, CX
	JZ   expdone
	EXPCONSTS

exploop:
	VMOVUPS (SI), Z0
	EXP16
	VMOVUPS Z1, (SI)
	ADDQ    $64, SI
	DECQ    CX
	JNZ     exploop

expdone:
	VZEROUPPER
	RET

// func swigluAVX512(out, gate, up []float32)
TEXT ·swigluAVX512(SB), NOSPLIT, $0-72
	MOVQ out_base+0(FP), DI
	MOVQ gate_base+24(FP), SI
	MOVQ gate_len+32(FP), CX
	MOVQ up_base+48(FP), DX
	SHRQ $4, CX
	JZ   swdone
	EXPCONSTS

swloop:
	VMOVUPS (SI), Z6
	VSUBPS  Z6, Z29, Z0
	EXP16
	VADDPS  Z25, Z1, Z1
	VDIVPS  Z1, Z6, Z1
	VMULPS  (DX), Z1, Z1
	VMOVUPS Z1, (DI)
	ADDQ    $64, SI
	ADDQ    $64, DI
	ADDQ    $64, DX
	DECQ    CX
	JNZ     swloop

swdone:
	VZEROUPPER
	RET

// func dotRowsAVX512(s, q, k []float32, scale float32)
TEXT ·dotRowsAVX512(SB), NOSPLIT, $0-76
	MOVQ   s_base+0(FP), DI
	MOVQ   s_len+8(FP), BX
	MOVQ   q_base+24(FP), SI
	MOVQ   q_len+32(FP), CX
	MOVQ   k_base+48(FP), DX
	VMOVSS scale+72(FP), X7

row:
	VXORPS Z0, Z0, Z0
	VXORPS Z1, Z1, Z1
	VXORPS Z2, Z2, Z2
	VXORPS Z3, Z3, Z3
	MOVQ   SI, R8
	MOVQ   CX, R9

d64:
	CMPQ        R9, $64
	JL          d16
	VMOVUPS     (R8), Z4
	VMOVUPS     64(R8), Z5
	VMOVUPS     128(R8), Z6
	VMOVUPS     192(R8), Z8
	VFMADD231PS (DX), Z4, Z0
	VFMADD231PS 64(DX), Z5, Z1
	VFMADD231PS 128(DX), Z6, Z2
	VFMADD231PS 192(DX), Z8, Z3
	ADDQ        $256, R8
	ADDQ        $256, DX
	SUBQ        $64, R9
	JMP         d64

d16:
	TESTQ       R9, R9
	JZ          reduce
	VMOVUPS     (R8), Z4
	VFMADD231PS (DX), Z4, Z0
	ADDQ        $64, R8
	ADDQ        $64, DX
	SUBQ        $16, R9
	JMP         d16

reduce:
	VADDPS        Z1, Z0, Z0
	VADDPS        Z3, Z2, Z2
	VADDPS        Z2, Z0, Z0
	VEXTRACTF64X4 $1, Z0, Y1
	VADDPS        Y1, Y0, Y0
	VEXTRACTF128  $1, Y0, X1
	VADDPS        X1, X0, X0
	VPERMILPS     $0x4E, X0, X1
	VADDPS        X1, X0, X0
	VPERMILPS     $0xB1, X0, X1
	VADDSS        X1, X0, X0
	VMULSS        X7, X0, X0
	VMOVSS        X0, (DI)
	ADDQ          $4, DI
	DECQ          BX
	JNZ           row
	VZEROUPPER
	RET

// func axpyRowsAVX512(out, p, v []float32)
TEXT ·axpyRowsAVX512(SB), NOSPLIT, $0-72
	MOVQ out_base+0(FP), DI
	MOVQ out_len+8(FP), CX
	MOVQ p_base+24(FP), SI
	MOVQ p_len+32(FP), BX
	MOVQ v_base+48(FP), DX
	MOVQ CX, R10
	SHLQ $2, R10

chunk64:
	CMPQ    CX, $64
	JL      chunk16
	VMOVUPS (DI), Z0
	VMOVUPS 64(DI), Z1
	VMOVUPS 128(DI), Z2
	VMOVUPS 192(DI), Z3
	MOVQ    SI, R8
	MOVQ    DX, R9
	MOVQ    BX, R11

t64:
	VBROADCASTSS (R8), Z4
	VFMADD231PS  (R9), Z4, Z0
	VFMADD231PS  64(R9), Z4, Z1
	VFMADD231PS  128(R9), Z4, Z2
	VFMADD231PS  192(R9), Z4, Z3
	ADDQ         $4, R8
	ADDQ         R10, R9
	DECQ         R11
	JNZ          t64
	VMOVUPS      Z0, (DI)
	VMOVUPS      Z1, 64(DI)
	VMOVUPS      Z2, 128(DI)
	VMOVUPS      Z3, 192(DI)
	ADDQ         $256, DI
	ADDQ         $256, DX
	SUBQ         $64, CX
	JMP          chunk64

chunk16:
	TESTQ   CX, CX
	JZ      done
	VMOVUPS (DI), Z0
	MOVQ    SI, R8
	MOVQ    DX, R9
	MOVQ    BX, R11

t16:
	VBROADCASTSS (R8), Z4
	VFMADD231PS  (R9), Z4, Z0
	ADDQ         $4, R8
	ADDQ         R10, R9
	DECQ         R11
	JNZ          t16
	VMOVUPS      Z0, (DI)
	ADDQ         $64, DI
	ADDQ         $64, DX
	SUBQ         $16, CX
	JMP          chunk16

done:
	VZEROUPPER
	RET

// func dotBF16AVX512(a []uint16, x []float32) float32
TEXT ·dotBF16AVX512(SB), NOSPLIT, $0-52
	MOVQ   a_base+0(FP), SI
	MOVQ   a_len+8(FP), CX
	MOVQ   x_base+24(FP), DI
	VXORPS Z0, Z0, Z0
	VXORPS Z1, Z1, Z1

bd32:
	CMPQ        CX, $32
	JL          bd16
	VPMOVZXWD   (SI), Z2
	VPMOVZXWD   32(SI), Z3
	VPSLLD      $16, Z2, Z2
	VPSLLD      $16, Z3, Z3
	VFMADD231PS (DI), Z2, Z0
	VFMADD231PS 64(DI), Z3, Z1
	ADDQ        $64, SI
	ADDQ        $128, DI
	SUBQ        $32, CX
	JMP         bd32

bd16:
	TESTQ       CX, CX
	JZ          bdsum
	VPMOVZXWD   (SI), Z2
	VPSLLD      $16, Z2, Z2
	VFMADD231PS (DI), Z2, Z0

bdsum:
	VADDPS        Z1, Z0, Z0
	VEXTRACTF64X4 $1, Z0, Y1
	VADDPS        Y1, Y0, Y0
	VEXTRACTF128  $1, Y0, X1
	VADDPS        X1, X0, X0
	VPERMILPS     $0x4E, X0, X1
	VADDPS        X1, X0, X0
	VPERMILPS     $0xB1, X0, X1
	VADDSS        X1, X0, X0
	VZEROUPPER
	MOVSS         X0, ret+48(FP)
	RET

// func axpyBF16AVX512(alpha float32, a []uint16, y []float32)
TEXT ·axpyBF16AVX512(SB), NOSPLIT, $0-56
	VBROADCASTSS alpha+0(FP), Z7
	MOVQ         a_base+8(FP), SI
	MOVQ         a_len+16(FP), CX
	MOVQ         y_base+32(FP), DI
	SHRQ         $4, CX
	JZ           badone

baloop:
	VPMOVZXWD   (SI), Z1
	VPSLLD      $16, Z1, Z1
	VMOVUPS     (DI), Z2
	VFMADD231PS Z1, Z7, Z2
	VMOVUPS     Z2, (DI)
	ADDQ        $32, SI
	ADDQ        $64, DI
	DECQ        CX
	JNZ         baloop

badone:
	VZEROUPPER
	RET
