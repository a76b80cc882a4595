package vec

// Dot returns Σ a[i]·b[i]; len(b) must be at least len(a).
func Dot(a, b []float32) float32 {
	if len(a) == 0 {
		return 0
	}
	return impl.dot(a, b[:len(a)])
}

// Axpy sets y[i] += alpha·x[i]; len(y) must be at least len(x).
func Axpy(alpha float32, x, y []float32) {
	if len(x) == 0 {
		return
	}
	impl.axpy(alpha, x, y[:len(x)])
}

// Scale sets x[i] *= alpha.
func Scale(alpha float32, x []float32) {
	if len(x) == 0 {
		return
	}
	impl.scale(alpha, x)
}

// Add sets dst[i] += x[i]; len(dst) must be at least len(x).
func Add(dst, x []float32) {
	if len(x) == 0 {
		return
	}
	impl.add(dst[:len(x)], x)
}

// Mul sets dst[i] *= x[i]; len(dst) must be at least len(x).
func Mul(dst, x []float32) {
	if len(x) == 0 {
		return
	}
	impl.mul(dst[:len(x)], x)
}

// SumSq returns Σ x[i]².
func SumSq(x []float32) float32 {
	if len(x) == 0 {
		return 0
	}
	return impl.sumSq(x)
}

// MaxIndex returns the index of the largest value, the first one on a tie;
// NaN values are skipped. It returns -1 for an empty or all-NaN slice.
func MaxIndex(x []float32) int {
	if len(x) == 0 {
		return -1
	}
	return impl.maxIndex(x)
}

// kernels is one implementation of every loop; the Go one is the spec.
type kernels struct {
	name     string
	dot      func(a, b []float32) float32
	axpy     func(alpha float32, x, y []float32)
	scale    func(alpha float32, x []float32)
	add      func(dst, x []float32)
	mul      func(dst, x []float32)
	sumSq    func(x []float32) float32
	maxIndex func(x []float32) int
}

var impl = best()

var generic = kernels{
	name: "generic", dot: dotGeneric, axpy: axpyGeneric, scale: scaleGeneric,
	add: addGeneric, mul: mulGeneric, sumSq: sumSqGeneric, maxIndex: maxIndexGeneric,
}

// dotGeneric: for i := range a { s += a[i] * b[i] }.
func dotGeneric(a, b []float32) float32 {
	var s float32
	b = b[:len(a)]
	for i, v := range a {
		s += v * b[i]
	}
	return s
}

// axpyGeneric: for i := range x { y[i] += alpha * x[i] }.
func axpyGeneric(alpha float32, x, y []float32) {
	y = y[:len(x)]
	for i, v := range x {
		y[i] += alpha * v
	}
}

// scaleGeneric: for i := range x { x[i] *= alpha }.
func scaleGeneric(alpha float32, x []float32) {
	for i := range x {
		x[i] *= alpha
	}
}

// addGeneric: for i := range x { dst[i] += x[i] }.
func addGeneric(dst, x []float32) {
	dst = dst[:len(x)]
	for i, v := range x {
		dst[i] += v
	}
}

// mulGeneric: for i := range x { dst[i] *= x[i] }.
func mulGeneric(dst, x []float32) {
	dst = dst[:len(x)]
	for i, v := range x {
		dst[i] *= v
	}
}

// sumSqGeneric: for i := range x { s += x[i] * x[i] }.
func sumSqGeneric(x []float32) float32 {
	var s float32
	for _, v := range x {
		s += v * v
	}
	return s
}

// maxIndexGeneric: the first i with the largest x[i], NaN skipped.
func maxIndexGeneric(x []float32) int {
	best := -1
	for i, v := range x {
		if v == v && (best < 0 || v > x[best]) {
			best = i
		}
	}
	return best
}
