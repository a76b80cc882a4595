//go:build noasm || !amd64

package quant

func bestBF16Kernels() bf16KernelSet { return bf16Generic }

// bf16Variants lists the bfloat16 kernel sets this build can run.
func bf16Variants() []bf16KernelSet { return []bf16KernelSet{bf16Generic} }

func prefetchStrip(source, int, int, int) {}
