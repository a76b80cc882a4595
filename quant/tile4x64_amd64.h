// Macros of the 4×64 accumulator tiles (acc4x64 in dense_amd64.s and its
// bfloat16 twin in bf16mm_amd64.s): Z0-Z15 hold four rows of 64 float32
// sums, row i at AX + i·BX, with DX = 3·BX.

// TILE4X64_LOAD reads the tile into Z0-Z15.
#define TILE4X64_LOAD \
	VMOVUPS (AX), Z0             \
	VMOVUPS 64(AX), Z1           \
	VMOVUPS 128(AX), Z2          \
	VMOVUPS 192(AX), Z3          \
	VMOVUPS (AX)(BX*1), Z4       \
	VMOVUPS 64(AX)(BX*1), Z5     \
	VMOVUPS 128(AX)(BX*1), Z6    \
	VMOVUPS 192(AX)(BX*1), Z7    \
	VMOVUPS (AX)(BX*2), Z8       \
	VMOVUPS 64(AX)(BX*2), Z9     \
	VMOVUPS 128(AX)(BX*2), Z10   \
	VMOVUPS 192(AX)(BX*2), Z11   \
	VMOVUPS (AX)(DX*1), Z12      \
	VMOVUPS 64(AX)(DX*1), Z13    \
	VMOVUPS 128(AX)(DX*1), Z14   \
	VMOVUPS 192(AX)(DX*1), Z15

// TILE4X64_STORE writes Z0-Z15 back to the tile.
#define TILE4X64_STORE \
	VMOVUPS Z0, (AX)             \
	VMOVUPS Z1, 64(AX)           \
	VMOVUPS Z2, 128(AX)          \
	VMOVUPS Z3, 192(AX)          \
	VMOVUPS Z4, (AX)(BX*1)       \
	VMOVUPS Z5, 64(AX)(BX*1)     \
	VMOVUPS Z6, 128(AX)(BX*1)    \
	VMOVUPS Z7, 192(AX)(BX*1)    \
	VMOVUPS Z8, (AX)(BX*2)       \
	VMOVUPS Z9, 64(AX)(BX*2)     \
	VMOVUPS Z10, 128(AX)(BX*2)   \
	VMOVUPS Z11, 192(AX)(BX*2)   \
	VMOVUPS Z12, (AX)(DX*1)      \
	VMOVUPS Z13, 64(AX)(DX*1)    \
	VMOVUPS Z14, 128(AX)(DX*1)   \
	VMOVUPS Z15, 192(AX)(DX*1)
