// Package par runs data-parallel loops on a fixed set of worker goroutines.
//
// Every kernel in loraplex splits its work with a Pool, so the number of cores
// a caller uses is decided in one place: the server gives inference one pool and
// the trainer a smaller one. A Gate ties the two together: the inference pool
// is on its High side and the trainer's on its Low side, which runs in short
// pieces and sleeps while inference is busy beyond the training share.
package par
