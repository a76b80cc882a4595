package tokenizer

import "math/bits"

// mergeTable maps a pair of ids to its merge (rank and merged id). It is an
// open-addressing hash table because the merge loop does a lookup per
// candidate pair and the built-in map's hashing dominated the profile.
type mergeTable struct {
	keys  []uint64 // pairKey+1; 0 marks an empty slot
	vals  []merge
	shift uint
	n     int
}

func newMergeTable(n int) *mergeTable {
	size := 1 << bits.Len(uint(n*2+1))
	return &mergeTable{keys: make([]uint64, size), vals: make([]merge, size), shift: uint(64 - bits.TrailingZeros(uint(size)))}
}

func (m *mergeTable) slot(k uint64) int { return int((k * 0x9E3779B97F4A7C15) >> m.shift) }

// put stores v under k unless k is already present (the first merge listed,
// the lowest rank, wins) and reports whether it stored.
func (m *mergeTable) put(k uint64, v merge) bool {
	k++
	mask := len(m.keys) - 1
	for i := m.slot(k); ; i = (i + 1) & mask {
		switch m.keys[i] {
		case 0:
			m.keys[i], m.vals[i] = k, v
			m.n++
			return true
		case k:
			return false
		}
	}
}

func (m *mergeTable) get(k uint64) (merge, bool) {
	k++
	mask := len(m.keys) - 1
	for i := m.slot(k); ; i = (i + 1) & mask {
		switch m.keys[i] {
		case k:
			return m.vals[i], true
		case 0:
			return merge{}, false
		}
	}
}
