package site

import (
	"compress/gzip"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/andybalholm/brotli"
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

// Text with no precompressed copy is compressed (brotli, else gzip) and decodes to the file;
// images are not; "/index.html" is still redirected to "/".
func TestHandlerCompressesText(t *testing.T) {
	js := strings.Repeat("export const answer = 42; // the same line, again and again\n", 200)
	fsys := fstest.MapFS{
		"index.html":           {Data: []byte("<!doctype html>" + strings.Repeat("<p>hello</p>", 100))},
		"app.js":               {Data: []byte(js)},
		"icon.png":             {Data: []byte(strings.Repeat("png ", 100))},
		"manifest.webmanifest": {Data: []byte(`{"icons": [` + strings.Repeat(`{"src": "icon.png"}, `, 50) + `{}]}`)},
	}
	h := Handler(fsys)
	for _, tc := range []struct{ path, accept, wantEnc, want string }{
		{"/app.js", "gzip, deflate, br", "br", js},
		{"/app.js", "gzip", "gzip", js},
		{"/app.js", "", "", js},
		{"/", "br", "br", string(fsys["index.html"].Data)},
		{"/icon.png", "br, gzip", "", string(fsys["icon.png"].Data)},
		{"/manifest.webmanifest", "br", "br", string(fsys["manifest.webmanifest"].Data)},
	} {
		req := httptest.NewRequest(http.MethodGet, tc.path, nil)
		req.Header.Set("Accept-Encoding", tc.accept)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		var body io.Reader = rec.Body
		switch rec.Header().Get("Content-Encoding") {
		case "br":
			body = brotli.NewReader(body)
		case "gzip":
			zr, err := gzip.NewReader(body)
			if err != nil {
				t.Fatal(err)
			}
			body = zr
		}
		sent := rec.Body.Len()
		got, err := io.ReadAll(body)
		if err != nil || rec.Code != 200 || string(got) != tc.want || rec.Header().Get("Content-Encoding") != tc.wantEnc {
			t.Errorf("%s (%q): %d, encoding %q, err %v, body ok %v", tc.path, tc.accept, rec.Code, rec.Header().Get("Content-Encoding"), err, string(got) == tc.want)
		}
		if tc.path == "/manifest.webmanifest" && rec.Header().Get("Content-Type") != "application/manifest+json" {
			t.Errorf("manifest served as %q", rec.Header().Get("Content-Type"))
		}
		if tc.wantEnc != "" && sent*5 > len(tc.want) {
			t.Errorf("%s (%q): %d bytes sent for %d", tc.path, tc.accept, sent, len(tc.want))
		}
	}
	req := httptest.NewRequest(http.MethodGet, "/index.html", nil)
	req.Header.Set("Accept-Encoding", "br")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusMovedPermanently || rec.Header().Get("Location") != "./" {
		t.Errorf("/index.html: %d %q, want a redirect to ./", rec.Code, rec.Header().Get("Location"))
	}
}
