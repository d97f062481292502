// Package site holds Stagepass's static site (HTML, CSS, JavaScript modules), embedded into
// the relay binary, which serves it.
package site

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
