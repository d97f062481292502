package site

import (
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
)

// The site is self-contained: every script, style and module it loads is one of its own
// files, so it works offline once loaded (no CDN).
func TestSiteLoadsOnlyItsOwnFiles(t *testing.T) {
	fsys := FS()
	for _, name := range []string{"index.html", "app.js", "app.css", "format.js", "qr.js", "vendor/qrcode-generator/qrcode.mjs",
		"scanner.html", "scanner.js", "scanner.css", "dom.js", "vendor/jsqr/jsQR.js"} {
		if _, err := fs.Stat(fsys, name); err != nil {
			t.Errorf("missing %s: %v", name, err)
		}
	}
	remote := regexp.MustCompile(`(?i)(src|href)\s*=\s*["']?(https?:)?//|import[^;]*from\s*["'](https?:)?//|@import\s+url\(`)
	err := fs.WalkDir(fsys, ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || strings.HasPrefix(path, "wallet/") {
			return err
		}
		if !strings.HasSuffix(path, ".html") && !strings.HasSuffix(path, ".js") && !strings.HasSuffix(path, ".mjs") && !strings.HasSuffix(path, ".css") {
			return nil
		}
		b, err := fs.ReadFile(fsys, path)
		if err != nil {
			return err
		}
		if m := remote.Find(b); m != nil {
			t.Errorf("%s loads something from another site: %s", path, m)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// When `go generate ./site` has run, the wallet is embedded and served as the relay serves
// the site (http.FileServerFS): wallet.wasm as application/wasm, for streaming compilation,
// and wasm_exec.js and the worker glue as JavaScript.
func TestWalletServedWithItsTypes(t *testing.T) {
	if !HasWallet() {
		t.Skip("wallet not built into site/static/wallet: run go generate ./site")
	}
	srv := httptest.NewServer(http.FileServerFS(FS()))
	defer srv.Close()
	for path, want := range map[string]string{
		"/wallet/wallet.wasm":                 "application/wasm",
		"/wallet/wasm_exec.js":                "text/javascript",
		"/wallet/wallet-worker.js":            "text/javascript",
		"/wallet/wallet-client.js":            "text/javascript",
		"/vendor/qrcode-generator/qrcode.mjs": "text/javascript",
		"/":                                   "text/html",
	} {
		res, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != 200 || !strings.HasPrefix(res.Header.Get("Content-Type"), want) {
			t.Errorf("GET %s: %d %q, want 200 %s", path, res.StatusCode, res.Header.Get("Content-Type"), want)
		}
		if path == "/wallet/wallet.wasm" && string(body[:4]) != "\x00asm" {
			t.Errorf("wallet.wasm does not start with the wasm magic")
		}
	}
}
