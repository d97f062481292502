// Command bindgen writes the Go bindings (go-ethereum abigen, v2) for every compiled
// contract artifact. It is run by `go generate ./contracts/...`.
package main

import (
	"flag"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/stagepass/stagepass/contracts"
)

func main() {
	artifacts := flag.String("artifacts", "artifacts", "folder of compiled artifacts")
	out := flag.String("out", "bindings", "folder to write the binding packages into")
	flag.Parse()
	files, err := contracts.GenerateBindings(os.DirFS(*artifacts))
	if err != nil {
		log.Fatal(err)
	}
	if err := os.RemoveAll(*out); err != nil {
		log.Fatal(err)
	}
	for name, src := range files {
		path := filepath.Join(*out, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			log.Fatal(err)
		}
		if err := os.WriteFile(path, src, 0o644); err != nil {
			log.Fatal(err)
		}
		fmt.Fprintf(os.Stderr, "wrote %s\n", path)
	}
}
