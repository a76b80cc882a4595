package quant

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/loraplex/loraplex/quant/par"
)

// randomNF4 builds an NF4 matrix from random codes and scales directly:
// speed does not depend on the values, and quantizing 65M weights would
// dominate the benchmark set-up.
func randomNF4(rows, cols int) *NF4 {
	r := rand.New(rand.NewPCG(1, 1))
	n := rows * cols
	nb := (n + 63) / 64
	q := &NF4{rows: rows, cols: cols, packed: make([]byte, (n+1)/2), qabs: make([]uint8, nb),
		absmax2: make([]float32, (nb+255)/256), offset: 0.01, code: &nf4Code, dyn: &dynamicMap}
	for i := range q.packed {
		q.packed[i] = byte(r.Uint32())
	}
	for i := range q.qabs {
		q.qabs[i] = byte(r.Uint32())
	}
	for i := range q.absmax2 {
		q.absmax2[i] = 0.005
	}
	adviseHuge(q.packed) // as the constructors do
	return q
}

// BenchmarkMemCopy is the bandwidth yardstick: GB/s here is read+write of
// a 256 MB slice; compare NF4 n=1 GB/s (weights read) with it.
func BenchmarkMemCopy(b *testing.B) {
	const n = 256 << 20
	src, dst := make([]byte, n), make([]byte, n)
	for i := range src {
		src[i] = byte(i)
	}
	copy(dst, src) // fault the pages in before timing
	b.SetBytes(n)
	for b.Loop() {
		copy(dst, src)
	}
}

func benchMulT(b *testing.B, m Matrix, n int) {
	p := par.New(0)
	x := randVec(rand.New(rand.NewPCG(2, 2)), n*m.Cols())
	y := make([]float32, n*m.Rows())
	b.SetBytes(m.Bytes())
	for b.Loop() {
		m.MulT(p, y, x, n)
	}
	flops := 2 * float64(m.Rows()) * float64(m.Cols()) * float64(n) * float64(b.N)
	b.ReportMetric(flops/b.Elapsed().Seconds()/1e9, "GFLOP/s")
}

func BenchmarkNF4MulT(b *testing.B) {
	for _, sh := range [][3]int{{5632, 2048, 1}, {32000, 2048, 1}, {2048, 5632, 1}, {5632, 2048, 2}, {5632, 2048, 8}, {5632, 2048, 64}, {2048, 2048, 128}} {
		b.Run(fmt.Sprintf("%dx%d/n=%d", sh[0], sh[1], sh[2]), func(b *testing.B) {
			benchMulT(b, randomNF4(sh[0], sh[1]), sh[2])
		})
	}
}

// BenchmarkNF4MulTInt8 is the opt-in int8 prefill path beside the float32
// one on the same matrix.
func BenchmarkNF4MulTInt8(b *testing.B) {
	for _, n := range []int{128, 512} {
		for _, on := range []bool{false, true} {
			q := randomNF4(5632, 2048)
			q.SetInt8Prefill(on)
			b.Run(fmt.Sprintf("n=%d/int8=%v", n, on), func(b *testing.B) { benchMulT(b, q, n) })
		}
	}
}

// BenchmarkNF4MulTInt8Decode is the opt-in int8 decoding path on the
// shapes of BenchmarkNF4MulT's n=1 cases.
func BenchmarkNF4MulTInt8Decode(b *testing.B) {
	for _, sh := range [][3]int{{5632, 2048, 1}, {32000, 2048, 1}, {2048, 5632, 1}, {5632, 2048, 2}} {
		q := randomNF4(sh[0], sh[1])
		q.SetInt8Decode(true)
		b.Run(fmt.Sprintf("%dx%d/n=%d", sh[0], sh[1], sh[2]), func(b *testing.B) { benchMulT(b, q, sh[2]) })
	}
}

// BenchmarkNF4MulTInt8DecodeCold cycles int8 decoding of one and two rows
// through 24 5632x2048 matrices, 138 MB of weights, so that every product
// streams its weights from memory as in a model's decode step.
func BenchmarkNF4MulTInt8DecodeCold(b *testing.B) {
	ms := make([]*NF4, 24)
	for i := range ms {
		ms[i] = randomNF4(5632, 2048)
		ms[i].SetInt8Decode(true)
	}
	p := par.New(0)
	for _, n := range []int{1, 2} {
		b.Run(fmt.Sprintf("n=%d", n), func(b *testing.B) {
			x := randVec(rand.New(rand.NewPCG(2, 2)), n*2048)
			y := make([]float32, n*5632)
			b.SetBytes(ms[0].Bytes())
			i := 0
			for b.Loop() {
				ms[i%len(ms)].MulT(p, y, x, n)
				i++
			}
		})
	}
}

func BenchmarkBF16MulT(b *testing.B) {
	for _, sh := range [][3]int{{32000, 2048, 1}, {32000, 2048, 8}} {
		b.Run(fmt.Sprintf("%dx%d/n=%d", sh[0], sh[1], sh[2]), func(b *testing.B) {
			w := make([]uint16, sh[0]*sh[1])
			for i := range w {
				w[i] = 0x3c00 + uint16(i%256)
			}
			benchMulT(b, NewBF16(sh[0], sh[1], w), sh[2])
		})
	}
}

func BenchmarkF32MulT(b *testing.B) {
	for _, sh := range [][3]int{{2048, 2048, 1}, {2048, 2048, 128}} {
		b.Run(fmt.Sprintf("%dx%d/n=%d", sh[0], sh[1], sh[2]), func(b *testing.B) {
			benchMulT(b, NewF32(sh[0], sh[1], randVec(rand.New(rand.NewPCG(3, 3)), sh[0]*sh[1])), sh[2])
		})
	}
}

func BenchmarkNF4MulGrad(b *testing.B) {
	const rows, cols, n = 5632, 2048, 16
	m := randomNF4(rows, cols)
	p := par.New(0)
	dy := randVec(rand.New(rand.NewPCG(4, 4)), n*rows)
	dx := make([]float32, n*cols)
	b.SetBytes(m.Bytes())
	for b.Loop() {
		m.MulGrad(p, dx, dy, n)
	}
	b.ReportMetric(2*rows*cols*n*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
}

func BenchmarkQuantizeNF4(b *testing.B) {
	const rows, cols = 2048, 2048
	w := randWeights(rand.New(rand.NewPCG(5, 5)), rows*cols)
	b.SetBytes(rows * cols * 4)
	for b.Loop() {
		QuantizeNF4(rows, cols, w)
	}
}

// BenchmarkKernelNF4Dot measures the in-cache speed of each nf4Dot
// variant over one 2048-column row (bytes/s of packed codes).
func BenchmarkKernelNF4Dot(b *testing.B) {
	q := randomNF4(1, 2048)
	x := randVec(rand.New(rand.NewPCG(1, 1)), 2048)
	for _, ks := range kernelVariants() {
		b.Run(ks.name, func(b *testing.B) {
			b.SetBytes(int64(len(q.packed)))
			for b.Loop() {
				ks.nf4Dot(q.packed, q.qabs, x, q.code, q.dyn, q.absmax2[0], q.offset)
			}
		})
	}
}

// BenchmarkKernelNF4Rows measures the in-cache speed of the decoding row
// kernels on one thread over 32 rows of 2048 columns (bytes/s of packed
// codes); the ratio to memory bandwidth tells how far a core is from
// streaming weights at memory speed.
func BenchmarkKernelNF4Rows(b *testing.B) {
	const R, C = 32, 2048
	q := randomNF4(R, C)
	x := randVec(rand.New(rand.NewPCG(1, 1)), C)
	xq, xa := make([]float32, C), make([]uint32, q8DecWords(C))
	quadX(xq, x)
	kern.encodeActsQ8(xa, x)
	y := make([]float32, R)
	if kern.nf4Rows != nil {
		b.Run("float32", func(b *testing.B) {
			b.SetBytes(int64(len(q.packed)))
			for b.Loop() {
				kern.nf4Rows(y, q.packed, q.qabs, q.absmax2, 0, C/64, xq, q.code, q.dyn, q.offset)
			}
		})
	}
	if kern.nf4RowsQ8 != nil {
		b.Run("int8", func(b *testing.B) {
			b.SetBytes(int64(len(q.packed)))
			for b.Loop() {
				kern.nf4RowsQ8(y, q.packed, q.qabs, q.absmax2, 0, C/64, xa, q.dyn, q.offset)
			}
		})
	}
}

// BenchmarkDecodeStepM runs the weight products of one decoded token of the
// M shape (TinyLlama-1.1B: 22 layers of q, k, v, o, gate, up, down in NF4
// and a BF16 lm_head, 631 MB) back to back, with the float32 and the int8
// decoding paths. Attention and the other per-token work are left out, so
// tok/s is an upper bound of what the kernels allow.
func BenchmarkDecodeStepM(b *testing.B) {
	const layers, hidden, kv, ffn, vocab = 22, 2048, 256, 5632, 32000
	shapes := [][2]int{{hidden, hidden}, {kv, hidden}, {kv, hidden}, {hidden, hidden}, {ffn, hidden}, {ffn, hidden}, {hidden, ffn}}
	var ms []*NF4
	for range layers {
		for _, sh := range shapes {
			ms = append(ms, randomNF4(sh[0], sh[1]))
		}
	}
	head := make([]uint16, vocab*hidden)
	for i := range head {
		head[i] = 0x3c00 + uint16(i%256)
	}
	lm := NewBF16(vocab, hidden, head)
	p := par.New(0)
	x := randVec(rand.New(rand.NewPCG(2, 2)), ffn)
	y := make([]float32, vocab)
	bytes := lm.Bytes()
	for _, m := range ms {
		bytes += m.Bytes()
	}
	for _, on := range []bool{false, true} {
		b.Run(fmt.Sprintf("int8=%v", on), func(b *testing.B) {
			for _, m := range ms {
				m.SetInt8Decode(on)
			}
			b.SetBytes(bytes)
			for b.Loop() {
				for _, m := range ms {
					m.MulT(p, y, x, 1)
				}
				lm.MulT(p, y, x, 1)
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "tok/s")
		})
	}
}
