package quant

import "testing"

// useKernels makes ks the kernel set for the rest of the test.
func useKernels(t testing.TB, ks kernelSet) {
	old := kern
	kern = ks
	t.Cleanup(func() { kern = old })
}
