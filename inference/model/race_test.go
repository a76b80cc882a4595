//go:build race

package model

// The race detector makes sync.Pool drop items at random, so pooled
// scratch shows up as allocations.
const raceEnabled = true
