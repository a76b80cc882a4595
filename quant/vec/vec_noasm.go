//go:build noasm || !amd64

package vec

func best() kernels { return generic }

func variants() []kernels { return []kernels{generic} }
