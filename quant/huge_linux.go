package quant

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// hugePage is the size of a transparent huge page on amd64 and arm64.
const hugePage = 2 << 20

// adviseHuge moves the 2 MiB pages that b touches onto transparent huge
// pages (MADV_COLLAPSE, Linux 6.1 and later, whatever the system's THP
// setting); it does not change their contents, only their backing. Decoding
// streams every weight once per token; on 4 KiB pages each page costs a TLB
// miss and stops the hardware prefetchers. The range is rounded outwards
// because a 2048x2048 matrix is exactly 2 MiB and would otherwise not hold
// one aligned huge page. Best effort: older kernels and mappings that cannot
// collapse keep b as it is.
func adviseHuge(b []byte) {
	if len(b) < hugePage/2 {
		return
	}
	p := uintptr(unsafe.Pointer(unsafe.SliceData(b)))
	lo := p &^ (hugePage - 1)
	hi := (p + uintptr(len(b)) + hugePage - 1) &^ (hugePage - 1)
	// The raw call: the rounded range is no Go object to slice.
	unix.Syscall(unix.SYS_MADVISE, lo, hi-lo, unix.MADV_COLLAPSE)
}
