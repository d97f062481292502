// Package site holds Stagepass's static site (HTML, CSS, JavaScript modules), embedded into
// the relay binary, which serves it.
//
// The wallet files (static/wallet/: wallet.wasm, wasm_exec.js of the same Go release and the
// worker glue from wasm/js) are build output, not committed: `go generate ./site` makes them
// (build.sh runs it before `go build`), and go:embed picks them up when they are there. A
// build without them still compiles and serves the site, whose page then says the wallet is
// not built.
package site

//go:generate go run ./internal/genwallet

import (
	"embed"
	"io/fs"
)

//go:embed static
var static embed.FS

// FS is the site's files, rooted at the site's top folder.
func FS() fs.FS {
	sub, err := fs.Sub(static, "static")
	if err != nil {
		panic(err) // the embedded folder exists by construction
	}
	return sub
}

// HasWallet reports whether the wallet (wallet.wasm and its JavaScript) was built into this
// binary by `go generate ./site`.
func HasWallet() bool {
	_, err := fs.Stat(static, "static/wallet/wallet.wasm")
	return err == nil
}
