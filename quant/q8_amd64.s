//go:build !noasm

#include "textflag.h"

// Q8_W(wrow, a0, a1, a2, a3) multiplies the weight vector at wrow by the
// four activation vectors Z16..Z19 into accumulators a0..a3.
#define Q8_W(wrow, a0, a1, a2, a3) \
	VMOVDQU64 wrow, Z20      \
	VPDPBUSD  Z16, Z20, a0   \
	VPDPBUSD  Z17, Z20, a1   \
	VPDPBUSD  Z18, Z20, a2   \
	VPDPBUSD  Z19, Z20, a3

// Q8_PAIR(acc, sx, corr, sw, off) turns the 16 block sums of one (x row,
// w row) pair into floats and adds them to f at off(AX):
// f += float(acc - corr) * (sx * sw).
#define Q8_PAIR(acc, sx, corr, sw, off) \
	VPSUBD    corr, acc, acc     \
	VCVTDQ2PS acc, acc           \
	VMULPS    sw, sx, Z25        \
	VMULPS    Z25, acc, acc      \
	VADDPS    off(AX), acc, acc  \
	VMOVUPS   acc, off(AX)

// Q8_SUM(off, toff) stores the sum of the 16 floats at off(AX) at toff(BX).
#define Q8_SUM(off, toff) \
	VMOVUPS       off(AX), Z0 \
	VEXTRACTF64X4 $1, Z0, Y1  \
	VADDPS        Y1, Y0, Y0  \
	VEXTRACTF128  $1, Y0, X1  \
	VADDPS        X1, X0, X0  \
	VHADDPS       X0, X0, X0  \
	VHADDPS       X0, X0, X0  \
	VMOVSS        X0, toff(BX)

// func q8Tile4x4AVX512(t *[16]float32, f *[256]float32, xq, wu []byte, sx []float32, corr []int32, sw []float32, groups int)
TEXT ·q8Tile4x4AVX512(SB), NOSPLIT, $0-144
	MOVQ f+8(FP), AX
	MOVQ xq_base+16(FP), SI
	MOVQ wu_base+40(FP), DI
	MOVQ sx_base+64(FP), R10
	MOVQ corr_base+88(FP), R11
	MOVQ sw_base+112(FP), R12
	MOVQ groups+136(FP), CX
	VPXORD  Z0, Z0, Z0
	VMOVUPS Z0, (AX)
	VMOVUPS Z0, 64(AX)
	VMOVUPS Z0, 128(AX)
	VMOVUPS Z0, 192(AX)
	VMOVUPS Z0, 256(AX)
	VMOVUPS Z0, 320(AX)
	VMOVUPS Z0, 384(AX)
	VMOVUPS Z0, 448(AX)
	VMOVUPS Z0, 512(AX)
	VMOVUPS Z0, 576(AX)
	VMOVUPS Z0, 640(AX)
	VMOVUPS Z0, 704(AX)
	VMOVUPS Z0, 768(AX)
	VMOVUPS Z0, 832(AX)
	VMOVUPS Z0, 896(AX)
	VMOVUPS Z0, 960(AX)
	MOVQ CX, R8
	SHLQ $10, R8              // row stride of xq and wu: groups·1024 bytes
	LEAQ (R8)(R8*2), R9
	MOVQ CX, R13
	SHLQ $6, R13              // row stride of sx, corr, sw: groups·16·4 bytes
	LEAQ (R13)(R13*2), R14
	TESTQ CX, CX
	JE    q8done

q8group:
	VPXORD Z0, Z0, Z0
	VPXORD Z1, Z1, Z1
	VPXORD Z2, Z2, Z2
	VPXORD Z3, Z3, Z3
	VPXORD Z4, Z4, Z4
	VPXORD Z5, Z5, Z5
	VPXORD Z6, Z6, Z6
	VPXORD Z7, Z7, Z7
	VPXORD Z8, Z8, Z8
	VPXORD Z9, Z9, Z9
	VPXORD Z10, Z10, Z10
	VPXORD Z11, Z11, Z11
	VPXORD Z12, Z12, Z12
	VPXORD Z13, Z13, Z13
	VPXORD Z14, Z14, Z14
	VPXORD Z15, Z15, Z15
	MOVQ   $16, DX

q8j:
	VMOVDQU64 (SI), Z16
	VMOVDQU64 (SI)(R8*1), Z17
	VMOVDQU64 (SI)(R8*2), Z18
	VMOVDQU64 (SI)(R9*1), Z19
	Q8_W((DI), Z0, Z4, Z8, Z12)
	Q8_W((DI)(R8*1), Z1, Z5, Z9, Z13)
	Q8_W((DI)(R8*2), Z2, Z6, Z10, Z14)
	Q8_W((DI)(R9*1), Z3, Z7, Z11, Z15)
	ADDQ      $64, SI
	ADDQ      $64, DI
	DECQ      DX
	JNE       q8j

	VMOVUPS (R10), Z21
	VMOVUPS (R10)(R13*1), Z22
	VMOVUPS (R10)(R13*2), Z23
	VMOVUPS (R10)(R14*1), Z24
	Q8_PAIR(Z0, Z21, (R11), (R12), 0)
	Q8_PAIR(Z1, Z21, (R11), (R12)(R13*1), 64)
	Q8_PAIR(Z2, Z21, (R11), (R12)(R13*2), 128)
	Q8_PAIR(Z3, Z21, (R11), (R12)(R14*1), 192)
	Q8_PAIR(Z4, Z22, (R11)(R13*1), (R12), 256)
	Q8_PAIR(Z5, Z22, (R11)(R13*1), (R12)(R13*1), 320)
	Q8_PAIR(Z6, Z22, (R11)(R13*1), (R12)(R13*2), 384)
	Q8_PAIR(Z7, Z22, (R11)(R13*1), (R12)(R14*1), 448)
	Q8_PAIR(Z8, Z23, (R11)(R13*2), (R12), 512)
	Q8_PAIR(Z9, Z23, (R11)(R13*2), (R12)(R13*1), 576)
	Q8_PAIR(Z10, Z23, (R11)(R13*2), (R12)(R13*2), 640)
	Q8_PAIR(Z11, Z23, (R11)(R13*2), (R12)(R14*1), 704)
	Q8_PAIR(Z12, Z24, (R11)(R14*1), (R12), 768)
	Q8_PAIR(Z13, Z24, (R11)(R14*1), (R12)(R13*1), 832)
	Q8_PAIR(Z14, Z24, (R11)(R14*1), (R12)(R13*2), 896)
	Q8_PAIR(Z15, Z24, (R11)(R14*1), (R12)(R14*1), 960)
	ADDQ    $64, R10
	ADDQ    $64, R11
	ADDQ    $64, R12
	DECQ    CX
	JNE     q8group

q8done:
	MOVQ t+0(FP), BX
	Q8_SUM(0, 0)
	Q8_SUM(64, 4)
	Q8_SUM(128, 8)
	Q8_SUM(192, 12)
	Q8_SUM(256, 16)
	Q8_SUM(320, 20)
	Q8_SUM(384, 24)
	Q8_SUM(448, 28)
	Q8_SUM(512, 32)
	Q8_SUM(576, 36)
	Q8_SUM(640, 40)
	Q8_SUM(704, 44)
	Q8_SUM(768, 48)
	Q8_SUM(832, 52)
	Q8_SUM(896, 56)
	Q8_SUM(960, 60)
	VZEROUPPER
	RET
