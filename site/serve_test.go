package site

import (
	"io"
	"net/http"
	"net/http/httptest"
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
