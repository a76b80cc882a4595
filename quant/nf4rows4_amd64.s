//go:build !noasm

#include "textflag.h"
#include "nf4quad_amd64.h"

// func nf4Rows4AVX512(y []float32, ldy, rows int, p []byte, q []uint8, a2 []float32, b0, nb int, xq []float32, code *[16]float32, dyn *[256]float32, off float32, t *[256]float32)
//
// Each block is decoded once into Z10-Z13 and multiplied into four
// activation rows, 64·nb floats apart from DI (R12 bytes; R14 = 3·R12).
// Accumulators: Z0-Z3 (x row 0), Z15-Z18, Z19-Z22, Z23-Z26 (rows 1-3),
// one per quad so each row sums as nf4RowsAVX512 does. R10 is y, R11 the
// weight rows left.
TEXT ·nf4Rows4AVX512(SB), NOSPLIT, $0-184
	MOVQ         y_base+0(FP), R10
	MOVQ         rows+32(FP), R11
	MOVQ         p_base+40(FP), SI
	MOVQ         q_base+64(FP), DX
	MOVQ         a2_base+88(FP), R9
	MOVQ         b0+112(FP), BX
	VBROADCASTSS off+168(FP), Z29
	MOVQ         t+176(FP), R8
	MOVQ         nb+120(FP), R12
	SHLQ         $8, R12
	LEAQ         (R12)(R12*2), R14
	MOVQ         code+152(FP), AX
	VMOVUPS      (AX), Z31
	TESTQ        R11, R11
	JE           r4done
	NF4Q_TABLE(dyn+160(FP))

r4row:
	MOVQ   nb+120(FP), CX
	MOVQ   xq_base+128(FP), DI
	VXORPS Z0, Z0, Z0
	VXORPS Z1, Z1, Z1
	VXORPS Z2, Z2, Z2
	VXORPS Z3, Z3, Z3
	VXORPS Z15, Z15, Z15
	VXORPS Z16, Z16, Z16
	VXORPS Z17, Z17, Z17
	VXORPS Z18, Z18, Z18
	VXORPS Z19, Z19, Z19
	VXORPS Z20, Z20, Z20
	VXORPS Z21, Z21, Z21
	VXORPS Z22, Z22, Z22
	VXORPS Z23, Z23, Z23
	VXORPS Z24, Z24, Z24
	VXORPS Z25, Z25, Z25
	VXORPS Z26, Z26, Z26

r4block:
	TESTQ $0xff, BX
	JNE   r4look
	NF4Q_TABLE(dyn+160(FP))

r4look:
	NF4Q_LOOK
	VFMADD231PS (DI), Z10, Z0
	VFMADD231PS 64(DI), Z11, Z1
	VFMADD231PS 128(DI), Z12, Z2
	VFMADD231PS 192(DI), Z13, Z3
	VFMADD231PS (DI)(R12*1), Z10, Z15
	VFMADD231PS 64(DI)(R12*1), Z11, Z16
	VFMADD231PS 128(DI)(R12*1), Z12, Z17
	VFMADD231PS 192(DI)(R12*1), Z13, Z18
	VFMADD231PS (DI)(R12*2), Z10, Z19
	VFMADD231PS 64(DI)(R12*2), Z11, Z20
	VFMADD231PS 128(DI)(R12*2), Z12, Z21
	VFMADD231PS 192(DI)(R12*2), Z13, Z22
	VFMADD231PS (DI)(R14*1), Z10, Z23
	VFMADD231PS 64(DI)(R14*1), Z11, Z24
	VFMADD231PS 128(DI)(R14*1), Z12, Z25
	VFMADD231PS 192(DI)(R14*1), Z13, Z26
	ADDQ        $32, SI
	INCQ        DX
	INCQ        BX
	ADDQ        $256, DI
	DECQ        CX
	JNE         r4block

	// Fold each row's quads into one vector (Z0-Z3 for rows 0-3), halve
	// the vectors to four lanes, then three horizontal adds leave the
	// four sums in X0.
	VADDPS        Z1, Z0, Z0
	VADDPS        Z3, Z2, Z2
	VADDPS        Z2, Z0, Z0
	VADDPS        Z16, Z15, Z15
	VADDPS        Z18, Z17, Z17
	VADDPS        Z17, Z15, Z1
	VADDPS        Z20, Z19, Z19
	VADDPS        Z22, Z21, Z21
	VADDPS        Z21, Z19, Z2
	VADDPS        Z24, Z23, Z23
	VADDPS        Z26, Z25, Z25
	VADDPS        Z25, Z23, Z3
	VEXTRACTF64X4 $1, Z0, Y4
	VADDPS        Y4, Y0, Y0
	VEXTRACTF64X4 $1, Z1, Y4
	VADDPS        Y4, Y1, Y1
	VEXTRACTF64X4 $1, Z2, Y4
	VADDPS        Y4, Y2, Y2
	VEXTRACTF64X4 $1, Z3, Y4
	VADDPS        Y4, Y3, Y3
	VEXTRACTF128  $1, Y0, X4
	VADDPS        X4, X0, X0
	VEXTRACTF128  $1, Y1, X4
	VADDPS        X4, X1, X1
	VEXTRACTF128  $1, Y2, X4
	VADDPS        X4, X2, X2
	VEXTRACTF128  $1, Y3, X4
	VADDPS        X4, X3, X3
	VHADDPS       X1, X0, X0
	VHADDPS       X3, X2, X2
	VHADDPS       X2, X0, X0
	MOVQ          ldy+24(FP), AX
	SHLQ          $2, AX
	VMOVSS        X0, (R10)
	VEXTRACTPS    $1, X0, (R10)(AX*1)
	VEXTRACTPS    $2, X0, (R10)(AX*2)
	LEAQ          (AX)(AX*2), AX
	VEXTRACTPS    $3, X0, (R10)(AX*1)
	ADDQ          $4, R10
	DECQ          R11
	JNE           r4row

r4done:
	VZEROUPPER
	RET
