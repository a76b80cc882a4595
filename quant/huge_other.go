//go:build !linux

package quant

// adviseHuge leaves b as it is where Linux's transparent huge pages are
// not offered.
func adviseHuge([]byte) {}
