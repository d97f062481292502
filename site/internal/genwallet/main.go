// Command genwallet builds what the site serves from the wallet: wallet.wasm (GOOS=js
// GOARCH=wasm, -trimpath -ldflags="-s -w", from wasm/cmd/wallet), wasm_exec.js from the
// same Go release ($(go env GOROOT)/lib/wasm), and the worker glue (wasm/js). It writes
// them into site/static/wallet/, which go:embed picks up when present. Run it with
// `go generate ./site` (build.sh does) before `go build`.
package main

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/andybalholm/brotli"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "genwallet:", err)
		os.Exit(1)
	}
}

func run() error {
	// go generate runs in the package's folder (site/); find the module root from there.
	root, err := goEnv("", "GOMOD")
	if err != nil {
		return err
	}
	root = filepath.Dir(root)
	out := filepath.Join(root, "site", "static", "wallet")
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	goroot, err := goEnv(root, "GOROOT")
	if err != nil {
		return err
	}
	// Temporary files start with a dot, which go:embed leaves out, so a `go build` running
	// at the same time never sees a half-written file.
	tmp := filepath.Join(out, ".wallet.wasm.tmp")
	build := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", tmp, "./wasm/cmd/wallet")
	build.Dir = root
	build.Env = append(os.Environ(), "GOOS=js", "GOARCH=wasm")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		return fmt.Errorf("build wallet.wasm: %w", err)
	}
	wasm, err := os.ReadFile(tmp)
	os.Remove(tmp)
	if err != nil {
		return err
	}
	if err := writeIfChanged(filepath.Join(out, "wallet.wasm"), wasm); err != nil {
		return err
	}
	if err := precompress(filepath.Join(out, "wallet.wasm"), wasm); err != nil {
		return err
	}
	copies := map[string]string{
		filepath.Join(goroot, "lib", "wasm", "wasm_exec.js"):  "wasm_exec.js",
		filepath.Join(root, "wasm", "js", "wallet-worker.js"): "wallet-worker.js",
		filepath.Join(root, "wasm", "js", "wallet-client.js"): "wallet-client.js",
	}
	for src, name := range copies {
		b, err := os.ReadFile(src)
		if err != nil {
			return err
		}
		if err := writeIfChanged(filepath.Join(out, name), b); err != nil {
			return err
		}
	}
	return nil
}

// precompress writes path.gz (gzip -9) and path.br (brotli quality 11) beside path, so the
// relay can send the 7 MB wallet as about 2 MB without compressing per request. Brotli at
// quality 11 takes ~20 s here, so it is redone only when the wallet changed.
func precompress(path string, b []byte) error {
	sum := sha256.Sum256(b)
	stamp := path + ".sha256" // a few bytes, embedded along with the rest; harmless
	if old, err := os.ReadFile(stamp); err == nil && string(old) == hex.EncodeToString(sum[:]) {
		if _, err := os.Stat(path + ".br"); err == nil {
			return nil
		}
	}
	var gz bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&gz, gzip.BestCompression)
	if _, err := zw.Write(b); err != nil {
		return err
	}
	if err := zw.Close(); err != nil {
		return err
	}
	var br bytes.Buffer
	bw := brotli.NewWriterOptions(&br, brotli.WriterOptions{Quality: 11, LGWin: 24})
	if _, err := bw.Write(b); err != nil {
		return err
	}
	if err := bw.Close(); err != nil {
		return err
	}
	if err := writeIfChanged(path+".gz", gz.Bytes()); err != nil {
		return err
	}
	if err := writeIfChanged(path+".br", br.Bytes()); err != nil {
		return err
	}
	return writeIfChanged(stamp, []byte(hex.EncodeToString(sum[:])))
}

// writeIfChanged replaces path with b atomically (rename), and not at all when it already
// holds b.
func writeIfChanged(path string, b []byte) error {
	if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, b) {
		return nil
	}
	tmp := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".tmp")
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

func goEnv(dir, name string) (string, error) {
	cmd := exec.Command("go", "env", name)
	cmd.Dir = dir
	var b bytes.Buffer
	cmd.Stdout = &b
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("go env %s: %w", name, err)
	}
	return strings.TrimSpace(b.String()), nil
}
