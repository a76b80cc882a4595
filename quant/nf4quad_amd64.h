// Macros of the quad-order NF4 row kernels (nf4_amd64.s, nf4rows4_amd64.s). Register
// use: SI packed codes, DX block-scale codes, BX global block index, R8
// the scale table, R9 a2, Z31 code, Z29 offset (broadcast); AX and R13
// are temporaries.

// NF4Q_TABLE(dynarg) fills the table at R8 with the 256 possible block
// scales of the second-level group of block BX, dyn[i]·a2[BX/256] + off,
// rounded like the Go code (product, then sum).
#define NF4Q_TABLE_PART(o) \
	VMULPS  o(R13), Z6, Z7 \
	VADDPS  Z29, Z7, Z7    \
	VMOVUPS Z7, o(R8)

#define NF4Q_TABLE(dynarg) \
	MOVQ         BX, AX         \
	SHRQ         $8, AX         \
	VBROADCASTSS (R9)(AX*4), Z6 \
	MOVQ         dynarg, R13    \
	NF4Q_TABLE_PART(0)          \
	NF4Q_TABLE_PART(64)         \
	NF4Q_TABLE_PART(128)        \
	NF4Q_TABLE_PART(192)        \
	NF4Q_TABLE_PART(256)        \
	NF4Q_TABLE_PART(320)        \
	NF4Q_TABLE_PART(384)        \
	NF4Q_TABLE_PART(448)        \
	NF4Q_TABLE_PART(512)        \
	NF4Q_TABLE_PART(576)        \
	NF4Q_TABLE_PART(640)        \
	NF4Q_TABLE_PART(704)        \
	NF4Q_TABLE_PART(768)        \
	NF4Q_TABLE_PART(832)        \
	NF4Q_TABLE_PART(896)        \
	NF4Q_TABLE_PART(960)

// NF4Q_LOOK leaves the table code·scale of the block at DX in Z5, widens
// the block's 32 bytes at SI to 16 words, one per dword lane, and looks up
// the four nibbles of each: Z10-Z13 hold the values of elements 4i+1, 4i,
// 4i+3 and 4i+2 of lane i (quad order). VPERMPS reads only the low 4 bits
// of an index, so no masking is needed.
#define NF4Q_LOOK \
	MOVBLZX     (DX), AX            \
	VMULPS.BCST (R8)(AX*4), Z31, Z5 \
	VPMOVZXWD   (SI), Z10           \
	VPSRLD      $4, Z10, Z11        \
	VPSRLD      $8, Z10, Z12        \
	VPSRLD      $12, Z10, Z13       \
	VPERMPS     Z5, Z10, Z10        \
	VPERMPS     Z5, Z11, Z11        \
	VPERMPS     Z5, Z12, Z12        \
	VPERMPS     Z5, Z13, Z13
