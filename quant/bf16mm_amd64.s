//go:build !noasm

#include "textflag.h"
#include "tile4x64_amd64.h"

// The assembler knows neither AVX512_BF16 instruction, so each is written
// as its EVEX bytes with the instruction in a comment, in Intel operand
// order (destination first); TestBF16Encodings re-encodes every comment
// and compares.

// func bf16Acc4x64AVX512(d []float32, ldd int, a []uint32, lda int, b []uint32, ldb int, P int)
TEXT ·bf16Acc4x64AVX512(SB), NOSPLIT, $0-104
	MOVQ d_base+0(FP), AX
	MOVQ ldd+24(FP), BX
	SHLQ $2, BX
	LEAQ (BX)(BX*2), DX
	MOVQ a_base+32(FP), SI
	MOVQ lda+56(FP), R8
	SHLQ $2, R8
	LEAQ (R8)(R8*2), R9
	MOVQ b_base+64(FP), DI
	MOVQ ldb+88(FP), R10
	SHLQ $2, R10
	MOVQ P+96(FP), CX
	TILE4X64_LOAD
	TESTQ   CX, CX
	JE      done

loop:
	VMOVDQU32    (DI), Z16
	VMOVDQU32    64(DI), Z17
	VMOVDQU32    128(DI), Z18
	VMOVDQU32    192(DI), Z19
	VPBROADCASTD (SI), Z20
	VPBROADCASTD (SI)(R8*1), Z21
	VPBROADCASTD (SI)(R8*2), Z22
	VPBROADCASTD (SI)(R9*1), Z23
	BYTE $0x62; BYTE $0xb2; BYTE $0x7e; BYTE $0x40; BYTE $0x52; BYTE $0xc4  // VDPBF16PS Z0, Z16, Z20 (Intel order)
	BYTE $0x62; BYTE $0xb2; BYTE $0x76; BYTE $0x40; BYTE $0x52; BYTE $0xcc  // VDPBF16PS Z1, Z17, Z20 (Intel order)
	BYTE $0x62; BYTE $0xb2; BYTE $0x6e; BYTE $0x40; BYTE $0x52; BYTE $0xd4  // VDPBF16PS Z2, Z18, Z20 (Intel order)
	BYTE $0x62; BYTE $0xb2; BYTE $0x66; BYTE $0x40; BYTE $0x52; BYTE $0xdc  // VDPBF16PS Z3, Z19, Z20 (Intel order)
	BYTE $0x62; BYTE $0xb2; BYTE $0x7e; BYTE $0x40; BYTE $0x52; BYTE $0xe5  // VDPBF16PS Z4, Z16, Z21 (Intel order)
	BYTE $0x62; BYTE $0xb2; BYTE $0x76; BYTE $0x40; BYTE $0x52; BYTE $0xed  // VDPBF16PS Z5, Z17, Z21 (Intel order)
	BYTE $0x62; BYTE $0xb2; BYTE $0x6e; BYTE $0x40; BYTE $0x52; BYTE $0xf5  // VDPBF16PS Z6, Z18, Z21 (Intel order)
	BYTE $0x62; BYTE $0xb2; BYTE $0x66; BYTE $0x40; BYTE $0x52; BYTE $0xfd  // VDPBF16PS Z7, Z19, Z21 (Intel order)
	BYTE $0x62; BYTE $0x32; BYTE $0x7e; BYTE $0x40; BYTE $0x52; BYTE $0xc6  // VDPBF16PS Z8, Z16, Z22 (Intel order)
	BYTE $0x62; BYTE $0x32; BYTE $0x76; BYTE $0x40; BYTE $0x52; BYTE $0xce  // VDPBF16PS Z9, Z17, Z22 (Intel order)
	BYTE $0x62; BYTE $0x32; BYTE $0x6e; BYTE $0x40; BYTE $0x52; BYTE $0xd6  // VDPBF16PS Z10, Z18, Z22 (Intel order)
	BYTE $0x62; BYTE $0x32; BYTE $0x66; BYTE $0x40; BYTE $0x52; BYTE $0xde  // VDPBF16PS Z11, Z19, Z22 (Intel order)
	BYTE $0x62; BYTE $0x32; BYTE $0x7e; BYTE $0x40; BYTE $0x52; BYTE $0xe7  // VDPBF16PS Z12, Z16, Z23 (Intel order)
	BYTE $0x62; BYTE $0x32; BYTE $0x76; BYTE $0x40; BYTE $0x52; BYTE $0xef  // VDPBF16PS Z13, Z17, Z23 (Intel order)
	BYTE $0x62; BYTE $0x32; BYTE $0x6e; BYTE $0x40; BYTE $0x52; BYTE $0xf7  // VDPBF16PS Z14, Z18, Z23 (Intel order)
	BYTE $0x62; BYTE $0x32; BYTE $0x66; BYTE $0x40; BYTE $0x52; BYTE $0xff  // VDPBF16PS Z15, Z19, Z23 (Intel order)
	ADDQ $4, SI
	ADDQ R10, DI
	DECQ CX
	JNE  loop

done:
	TILE4X64_STORE
	VZEROUPPER
	RET

// func bf16CvtAVX512(dst []uint32, src []float32)
// len(dst) is a multiple of 16; src holds 2·len(dst) values.
TEXT ·bf16CvtAVX512(SB), NOSPLIT, $0-48
	MOVQ dst_base+0(FP), DI
	MOVQ dst_len+8(FP), CX
	MOVQ src_base+24(FP), SI
	SHRQ $4, CX
	JE   cdone

cloop:
	VMOVUPS   (SI), Z0
	VMOVUPS   64(SI), Z1
	BYTE $0x62; BYTE $0xf2; BYTE $0x77; BYTE $0x48; BYTE $0x72; BYTE $0xd0  // VCVTNE2PS2BF16 Z2, Z1, Z0 (Intel order)
	VMOVDQU32 Z2, (DI)
	ADDQ      $128, SI
	ADDQ      $64, DI
	DECQ      CX
	JNE       cloop

cdone:
	VZEROUPPER
	RET

// func bf16CvtPairsAVX512(dst []uint32, a, b []float32, idx *[32]uint16)
// len(dst) is a multiple of 16; idx interleaves the two halves.
TEXT ·bf16CvtPairsAVX512(SB), NOSPLIT, $0-80
	MOVQ      dst_base+0(FP), DI
	MOVQ      dst_len+8(FP), CX
	MOVQ      a_base+24(FP), SI
	MOVQ      b_base+48(FP), DX
	MOVQ      idx+72(FP), AX
	VMOVDQU16 (AX), Z3
	SHRQ      $4, CX
	JE        pdone

ploop:
	VMOVUPS   (SI), Z0
	VMOVUPS   (DX), Z1
	BYTE $0x62; BYTE $0xf2; BYTE $0x77; BYTE $0x48; BYTE $0x72; BYTE $0xd0  // VCVTNE2PS2BF16 Z2, Z1, Z0 (Intel order)
	VPERMW    Z2, Z3, Z2
	VMOVDQU32 Z2, (DI)
	ADDQ      $64, SI
	ADDQ      $64, DX
	ADDQ      $64, DI
	DECQ      CX
	JNE       ploop

pdone:
	VZEROUPPER
	RET

// func prefetchLines(p *byte, n int)
// Prefetches the n cache lines from p on into L1.
TEXT ·prefetchLines(SB), NOSPLIT, $0-16
	MOVQ p+0(FP), SI
	MOVQ n+8(FP), CX
	TESTQ CX, CX
	JE    pfdone

pfloop:
	PREFETCHT0 (SI)
	ADDQ       $64, SI
	DECQ       CX
	JNE        pfloop

pfdone:
	RET
