// Command genicons writes the site's icons (site/internal/icons: PNGs for the manifest and
// Apple's home screen, the SVG favicon, favicon.ico) into site/static/. Their output is
// committed; `go test ./site` checks it still matches what this draws.
//
//	go run ./site/internal/genicons
package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/stagepass/stagepass/site/internal/icons"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "genicons:", err)
		os.Exit(1)
	}
}

func run() error {
	gomod, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return fmt.Errorf("go env GOMOD: %w", err)
	}
	static := filepath.Join(filepath.Dir(strings.TrimSpace(string(gomod))), "site", "static")
	for _, f := range icons.Files() {
		b, err := f.Make()
		if err != nil {
			return err
		}
		path := filepath.Join(static, filepath.FromSlash(f.Path))
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(path, b, 0o644); err != nil {
			return err
		}
		fmt.Printf("%s (%d bytes)\n", path, len(b))
	}
	return nil
}
