// Package registry keeps the adapters a server can serve: a Store of PEFT
// directories on disk, and a Registry that loads them on demand into a
// memory-bounded LRU and leases them to requests. A leased adapter is never
// evicted or changed under a request, and a replaced adapter gets a new
// identity, so no request is ever served by a mix of two versions.
package registry
