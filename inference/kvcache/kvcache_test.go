package kvcache

import (
	"errors"
	"sync"
	"testing"
)

func TestReserveExhaustFreeReuse(t *testing.T) {
	p := NewPool(2, 3, 4, 16, 5)
	if p.Total() != 5 || p.Used() != 0 || p.BlockSize() != 16 {
		t.Fatalf("new pool: total %d used %d block %d", p.Total(), p.Used(), p.BlockSize())
	}
	var a, b Seq
	steps := []struct {
		s        *Seq
		n        int
		wantErr  bool
		wantUsed int
	}{
		{&a, 1, false, 1},  // 1 token → 1 block
		{&a, 15, false, 1}, // Len still 0: room for 15 fits the same block
		{&a, 17, false, 2}, // 17 tokens → 2 blocks
		{&b, 48, false, 5}, // 3 more blocks: pool full
		{&b, 49, true, 5},  // one block short: nothing taken
		{&a, 0, false, 5},  // no-op
	}
	for i, st := range steps {
		need, before := p.Need(st.s, st.n), p.Used()
		err := p.Reserve(st.s, st.n)
		if err == nil && p.Used() != before+need {
			t.Fatalf("step %d: Need said %d blocks, Reserve took %d", i, need, p.Used()-before)
		}
		if (err != nil) != st.wantErr || (err != nil && !errors.Is(err, ErrOutOfBlocks)) {
			t.Fatalf("step %d: Reserve(%d) error %v, wantErr %v", i, st.n, err, st.wantErr)
		}
		if p.Used() != st.wantUsed {
			t.Fatalf("step %d: used %d, want %d", i, p.Used(), st.wantUsed)
		}
	}
	if len(b.Blocks) != 3 {
		t.Fatalf("failed reservation changed the block table: %v", b.Blocks)
	}
	aBlocks := append([]int32(nil), a.Blocks...)
	p.Free(&a)
	if p.Used() != 3 || len(a.Blocks) != 0 || a.Len != 0 {
		t.Fatalf("after free: used %d, seq %+v", p.Used(), a)
	}
	var c Seq
	if err := p.Reserve(&c, 32); err != nil {
		t.Fatal(err)
	}
	seen := map[int32]bool{}
	for _, blk := range aBlocks {
		seen[blk] = true
	}
	for _, blk := range c.Blocks {
		if !seen[blk] {
			t.Fatalf("freed blocks %v not reused: got %v", aBlocks, c.Blocks)
		}
	}
	for _, blk := range b.Blocks {
		if seen[blk] {
			t.Fatalf("block %d handed to two sequences", blk)
		}
	}
}

func TestTruncate(t *testing.T) {
	p := NewPool(1, 1, 2, 4, 4)
	var s Seq
	if err := p.Reserve(&s, 14); err != nil {
		t.Fatal(err)
	}
	s.Len = 14
	for _, tc := range []struct{ n, wantLen, wantBlocks int }{
		{20, 14, 4}, // beyond Len: keeps everything
		{9, 9, 3},
		{8, 8, 2},
		{0, 0, 0},
	} {
		p.Truncate(&s, tc.n)
		if s.Len != tc.wantLen || len(s.Blocks) != tc.wantBlocks || p.Used() != tc.wantBlocks {
			t.Fatalf("Truncate(%d): len %d blocks %d used %d, want %d %d", tc.n, s.Len, len(s.Blocks), p.Used(), tc.wantLen, tc.wantBlocks)
		}
	}
}

func TestWriteLayout(t *testing.T) {
	const layers, heads, d, bs = 2, 3, 4, 2
	p := NewPool(layers, heads, d, bs, 3)
	var s Seq
	if err := p.Reserve(&s, 5); err != nil {
		t.Fatal(err)
	}
	val := func(kv, layer, pos, h, i int) float32 { return float32(kv*10000 + layer*1000 + pos*100 + h*10 + i) }
	for layer := 0; layer < layers; layer++ {
		for pos := 0; pos < 5; pos++ {
			k, v := make([]float32, heads*d), make([]float32, heads*d)
			for h := 0; h < heads; h++ {
				for i := 0; i < d; i++ {
					k[h*d+i], v[h*d+i] = val(0, layer, pos, h, i), val(1, layer, pos, h, i)
				}
			}
			p.Write(&s, layer, pos, k, v)
		}
	}
	for layer := 0; layer < layers; layer++ {
		for pos := 0; pos < 5; pos++ {
			for h := 0; h < heads; h++ {
				kb, vb := p.K(s.Blocks[pos/bs], layer, h), p.V(s.Blocks[pos/bs], layer, h)
				for i := 0; i < d; i++ {
					if got := kb[(pos%bs)*d+i]; got != val(0, layer, pos, h, i) {
						t.Fatalf("K layer %d pos %d head %d [%d] = %g", layer, pos, h, i, got)
					}
					if got := vb[(pos%bs)*d+i]; got != val(1, layer, pos, h, i) {
						t.Fatalf("V layer %d pos %d head %d [%d] = %g", layer, pos, h, i, got)
					}
				}
			}
		}
	}
}

func TestConcurrentReserveFree(t *testing.T) {
	p := NewPool(1, 1, 1, 4, 64)
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := 0; k < 200; k++ {
				var s Seq
				if err := p.Reserve(&s, 4*(1+k%3)); err != nil {
					t.Error(err)
					return
				}
				p.Free(&s)
			}
		}()
	}
	wg.Wait()
	if p.Used() != 0 {
		t.Fatalf("leaked %d blocks", p.Used())
	}
}
