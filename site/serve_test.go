package site

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/fstest"
)

func TestHandlerServesPrecompressed(t *testing.T) {
	fsys := fstest.MapFS{
		"w.wasm":    {Data: []byte("raw wasm bytes")},
		"w.wasm.br": {Data: []byte("brotli bytes")},
		"w.wasm.gz": {Data: []byte("gzip bytes")},
		"a.js":      {Data: []byte("plain js")},
	}
	h := Handler(fsys)
	for _, tc := range []struct {
		path, accept, wantBody, wantEnc string
	}{
		{"/w.wasm", "gzip, deflate, br, zstd", "brotli bytes", "br"},
		{"/w.wasm", "gzip", "gzip bytes", "gzip"},
		{"/w.wasm", "br;q=0, gzip", "gzip bytes", "gzip"},
		{"/w.wasm", "", "raw wasm bytes", ""},
		{"/a.js", "br, gzip", "plain js", ""},
	} {
		req := httptest.NewRequest(http.MethodGet, tc.path, nil)
		if tc.accept != "" {
			req.Header.Set("Accept-Encoding", tc.accept)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		body, _ := io.ReadAll(rec.Body)
		if rec.Code != 200 || string(body) != tc.wantBody || rec.Header().Get("Content-Encoding") != tc.wantEnc {
			t.Errorf("%s (%q): %d %q encoding %q", tc.path, tc.accept, rec.Code, body, rec.Header().Get("Content-Encoding"))
		}
		if tc.path == "/w.wasm" && rec.Header().Get("Content-Type") != "application/wasm" {
			t.Errorf("%s (%q): type %q", tc.path, tc.accept, rec.Header().Get("Content-Type"))
		}
	}
}

// Each file has an ETag, its own per encoding; a browser holding it gets 304 Not Modified.
func TestHandlerETags(t *testing.T) {
	fsys := fstest.MapFS{
		"index.html": {Data: []byte("<!doctype html>")},
		"w.wasm":     {Data: []byte("raw wasm bytes")},
		"w.wasm.br":  {Data: []byte("brotli bytes")},
		"a.js":       {Data: []byte("plain js")},
	}
	h := Handler(fsys)
	get := func(path, accept, ifNoneMatch string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodGet, path, nil)
		if accept != "" {
			req.Header.Set("Accept-Encoding", accept)
		}
		if ifNoneMatch != "" {
			req.Header.Set("If-None-Match", ifNoneMatch)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}
	seen := map[string]string{}
	for _, tc := range []struct{ path, accept string }{{"/", ""}, {"/a.js", "br"}, {"/w.wasm", "br"}, {"/w.wasm", ""}} {
		first := get(tc.path, tc.accept, "")
		tag := first.Header().Get("ETag")
		if first.Code != 200 || !strings.HasPrefix(tag, `"`) {
			t.Errorf("%s (%q): %d, ETag %q", tc.path, tc.accept, first.Code, tag)
			continue
		}
		if other, dup := seen[tag]; dup {
			t.Errorf("%s (%q) has the ETag of %s", tc.path, tc.accept, other)
		}
		seen[tag] = tc.path + " " + tc.accept
		again := get(tc.path, tc.accept, tag)
		if again.Code != http.StatusNotModified || again.Body.Len() != 0 {
			t.Errorf("%s (%q) with If-None-Match: %d, %d bytes", tc.path, tc.accept, again.Code, again.Body.Len())
		}
		if stale := get(tc.path, tc.accept, `"stale"`); stale.Code != 200 || stale.Body.Len() == 0 {
			t.Errorf("%s (%q) with a stale tag: %d", tc.path, tc.accept, stale.Code)
		}
	}
}
