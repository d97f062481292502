package site

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strings"
	"sync"
	"time"
)

// Handler serves fsys like http.FileServerFS, but sends a file's precompressed copy
// (NAME.br, else NAME.gz, written beside it at build time) when the browser accepts that
// encoding: the wallet goes out as about 2 MB of brotli instead of 7.5 MB, with no
// compression work per request. The original Content-Type is kept (application/wasm, so the
// browser still compiles while downloading).
//
// Every file goes out with an ETag (a hash of the bytes sent: each encoding has its own),
// so a browser that has it answers If-None-Match with 304 Not Modified: a repeat visit, whose
// service worker asks the network first, downloads headers, not the 2 MB wallet again.
func Handler(fsys fs.FS) http.Handler {
	files := http.FileServerFS(fsys)
	tags := &etags{fsys: fsys}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name := strings.TrimPrefix(path.Clean(r.URL.Path), "/")
		if name == "" || strings.HasSuffix(r.URL.Path, "/") {
			if tag := tags.of(path.Join(name, "index.html")); tag != "" {
				w.Header().Set("ETag", tag)
			}
			files.ServeHTTP(w, r)
			return
		}
		w.Header().Add("Vary", "Accept-Encoding")
		accept := r.Header.Get("Accept-Encoding")
		for _, enc := range []struct{ token, ext string }{{"br", ".br"}, {"gzip", ".gz"}} {
			if !acceptsEncoding(accept, enc.token) {
				continue
			}
			f, err := fsys.Open(name + enc.ext)
			if err != nil {
				continue
			}
			defer f.Close()
			rs, ok := f.(io.ReadSeeker)
			if !ok {
				continue
			}
			ctype := mime.TypeByExtension(path.Ext(name))
			if ctype == "" {
				ctype = "application/octet-stream"
			}
			w.Header().Set("Content-Type", ctype)
			w.Header().Set("Content-Encoding", enc.token)
			if tag := tags.of(name + enc.ext); tag != "" {
				w.Header().Set("ETag", tag)
			}
			http.ServeContent(w, r, name, time.Time{}, rs)
			return
		}
		if tag := tags.of(name); tag != "" {
			w.Header().Set("ETag", tag)
		}
		files.ServeHTTP(w, r)
	})
}

// etags computes each file's ETag once: a strong tag from the SHA-256 of its bytes, kept by
// name, size and modification time (so a file that changes on disk gets a new one).
type etags struct {
	fsys fs.FS
	m    sync.Map // key → tag
}

// of returns name's ETag, or "" when it is not a regular file.
func (e *etags) of(name string) string {
	f, err := e.fsys.Open(name)
	if err != nil {
		return ""
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil || !st.Mode().IsRegular() {
		return ""
	}
	key := fmt.Sprintf("%s\x00%d\x00%d", name, st.Size(), st.ModTime().UnixNano())
	if tag, ok := e.m.Load(key); ok {
		return tag.(string)
	}
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return ""
	}
	tag := `"` + hex.EncodeToString(h.Sum(nil)[:16]) + `"`
	e.m.Store(key, tag)
	return tag
}

// acceptsEncoding reports whether an Accept-Encoding header allows `token` (q=0 refuses it).
func acceptsEncoding(header, token string) bool {
	for _, part := range strings.Split(header, ",") {
		name, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		if !strings.EqualFold(strings.TrimSpace(name), token) {
			continue
		}
		q := strings.ReplaceAll(strings.TrimSpace(params), " ", "")
		return q != "q=0" && q != "q=0.0" && q != "q=0.00" && q != "q=0.000"
	}
	return false
}
