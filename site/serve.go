package site

import (
	"bytes"
	"compress/gzip"
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

	"github.com/andybalholm/brotli"
)

func init() {
	// Not in Go's table: the web app manifest's registered type (so it is also compressed).
	_ = mime.AddExtensionType(".webmanifest", "application/manifest+json")
}

// Handler serves fsys like http.FileServerFS, but sends a file's precompressed copy
// (NAME.br, else NAME.gz, written beside it at build time) when the browser accepts that
// encoding: the wallet goes out as about 2 MB of brotli instead of 7.5 MB, with no
// compression work per request. The original Content-Type is kept (application/wasm, so the
// browser still compiles while downloading). Text (HTML, CSS, JavaScript, JSON, SVG) with
// no precompressed copy is compressed on its first request (brotli quality 5, else gzip)
// and kept in memory: the app's 400 KB of text goes out as about 85 KB.
//
// Every response carries an ETag (a hash of the bytes sent: each encoding has its own), so
// a browser that has the file gets 304 Not Modified: a repeat visit, whose service worker
// asks the network first, downloads headers, not the 2 MB wallet again.
func Handler(fsys fs.FS) http.Handler {
	files := http.FileServerFS(fsys)
	c := &fileCache{fsys: fsys}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name := strings.TrimPrefix(path.Clean(r.URL.Path), "/")
		file := name
		if name == "" || strings.HasSuffix(r.URL.Path, "/") {
			file = path.Join(name, "index.html")
		} else if path.Base(name) == "index.html" {
			// http.FileServer redirects …/index.html to …/: let it.
			files.ServeHTTP(w, r)
			return
		}
		w.Header().Add("Vary", "Accept-Encoding")
		ctype := mime.TypeByExtension(path.Ext(file))
		if ctype == "" {
			ctype = "application/octet-stream"
		}
		accept := r.Header.Get("Accept-Encoding")
		for _, enc := range []struct{ token, ext string }{{"br", ".br"}, {"gzip", ".gz"}} {
			if !acceptsEncoding(accept, enc.token) {
				continue
			}
			f, err := fsys.Open(file + enc.ext)
			if err != nil {
				continue
			}
			defer f.Close()
			rs, ok := f.(io.ReadSeeker)
			if !ok {
				continue
			}
			w.Header().Set("Content-Type", ctype)
			w.Header().Set("Content-Encoding", enc.token)
			if e := c.get(file+enc.ext, ""); e != nil {
				w.Header().Set("ETag", e.tag)
			}
			http.ServeContent(w, r, file, time.Time{}, rs)
			return
		}
		if compressible(ctype) {
			for _, token := range []string{"br", "gzip"} {
				if !acceptsEncoding(accept, token) {
					continue
				}
				if e := c.get(file, token); e != nil && e.data != nil {
					w.Header().Set("Content-Type", ctype)
					w.Header().Set("Content-Encoding", token)
					w.Header().Set("ETag", e.tag)
					http.ServeContent(w, r, file, time.Time{}, bytes.NewReader(e.data))
					return
				}
				break
			}
		}
		if e := c.get(file, ""); e != nil {
			w.Header().Set("ETag", e.tag)
		}
		files.ServeHTTP(w, r)
	})
}

// compressible reports whether a type is text worth compressing (images and the wasm are
// compressed already or have their precompressed copies).
func compressible(ctype string) bool {
	t, _, _ := strings.Cut(ctype, ";")
	switch t {
	case "text/html", "text/css", "text/javascript", "application/javascript", "application/json",
		"application/manifest+json", "image/svg+xml", "text/plain":
		return true
	}
	return false
}

// fileCache keeps, per file and encoding, its ETag (a strong tag from the SHA-256 of the
// bytes sent) and, for an encoding done here, the encoded bytes; keyed by name, size and
// modification time, so a file that changes on disk is read again.
type fileCache struct {
	fsys fs.FS
	m    sync.Map // key → *encoded
}

type encoded struct {
	tag  string
	data []byte // the encoded file; nil for the file as it is, or when encoding does not shrink it
}

// get returns name's entry in encoding ("" for the file as it is), or nil when it is not a
// regular file or cannot be read.
func (c *fileCache) get(name, encoding string) *encoded {
	f, err := c.fsys.Open(name)
	if err != nil {
		return nil
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil || !st.Mode().IsRegular() {
		return nil
	}
	key := fmt.Sprintf("%s\x00%d\x00%d\x00%s", name, st.Size(), st.ModTime().UnixNano(), encoding)
	if e, ok := c.m.Load(key); ok {
		return e.(*encoded)
	}
	raw, err := io.ReadAll(f)
	if err != nil {
		return nil
	}
	e := &encoded{}
	if encoding != "" {
		var buf bytes.Buffer
		var zw io.WriteCloser
		if encoding == "br" {
			zw = brotli.NewWriterLevel(&buf, 5)
		} else {
			zw, _ = gzip.NewWriterLevel(&buf, gzip.BestCompression)
		}
		if _, err := zw.Write(raw); err != nil {
			return nil
		}
		if err := zw.Close(); err != nil {
			return nil
		}
		if buf.Len() < len(raw) {
			e.data = buf.Bytes()
			raw = e.data
		}
	}
	sum := sha256.Sum256(raw)
	e.tag = `"` + hex.EncodeToString(sum[:16]) + `"`
	c.m.Store(key, e)
	return e
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
