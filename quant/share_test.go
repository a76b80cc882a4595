package quant

import (
	"testing"

	"github.com/loraplex/loraplex/quant/par"
)

// TestShareRows checks how decoding products are cut into shares: every
// worker gets several shares of a small matrix, no share falls below the
// work that makes claiming it cheap, and none exceeds shareWork.
func TestShareRows(t *testing.T) {
	for _, tc := range []struct {
		workers, rows, cols, n int
		want                   int
	}{
		{2, 192, 576, 1, 32},      // K, V of the S shape: 6 shares
		{2, 576, 576, 1, 80},      // Q, O: 8 shares
		{2, 1536, 576, 1, 192},    // gate, up: 8 shares
		{2, 576, 1536, 1, 80},     // down: 8 shares
		{2, 32000, 576, 1, 455},   // head: capped at shareWork
		{2, 8, 64, 1, 256},        // tiny: one share, held at minShareWork
		{1, 4096, 4096, 1, 64},    // big rows: capped at shareWork
		{2, 64, 8192, 3, 10},      // long rows: capped at shareWork
		{8, 256, 576, 1, 28},      // many workers: held at minShareWork
		{2, 192, 576, 3, 32},      // three activation rows: 6 shares
		{4, 100000, 100, 1, 2621}, // long and thin
	} {
		p := par.New(tc.workers)
		got := shareRows(p, tc.rows, tc.cols, tc.n)
		if got != tc.want {
			t.Errorf("workers=%d %d×%d n=%d: share %d rows, want %d", tc.workers, tc.rows, tc.cols, tc.n, got, tc.want)
		}
		if work := got * tc.cols * tc.n; work > max(shareWork, tc.cols*tc.n) {
			t.Errorf("workers=%d %d×%d n=%d: share of %d multiply-adds exceeds %d", tc.workers, tc.rows, tc.cols, tc.n, work, shareWork)
		}
	}
}
