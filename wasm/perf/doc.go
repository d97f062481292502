// Package perf holds the wallet's size check and its end-to-end timing of
// the real wasm under Node; the per-operation Go benchmarks live next to the
// code they measure (keys, signing, protocol, vault).
package perf
