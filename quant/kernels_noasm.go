//go:build noasm || !amd64

package quant

func bestKernels() kernelSet { return genericKernels }

// kernelVariants lists the kernel sets this build can run, for the tests.
func kernelVariants() []kernelSet { return []kernelSet{genericKernels} }
