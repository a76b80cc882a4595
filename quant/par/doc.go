// Package par runs data-parallel loops on a fixed set of worker goroutines.
//
// Every kernel in loraplex splits its work with a Pool, so the number of cores
// a caller uses is decided in one place: the server gives inference one pool and
// the trainer a smaller one, which is how training gets only a share of the CPU.
package par
