// Package jsclient embeds the built browser library (dist/crumbs.js, built
// from src/ by build.mjs) and serves it, so a Crumbs server hosts its own
// tracking script.
package jsclient

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"net/http"
	"strings"
	"time"
)

//go:embed dist/crumbs.js
var script []byte

// Version is a short hash of the embedded library. It names the immutable
// URL /crumbs.<Version>.js, so a new build gets a new URL.
var Version = hash(script)

// VersionedPath is the URL path of the library that may be cached forever.
var VersionedPath = "/crumbs." + Version + ".js"

var gzipped = compress(script)

// ImmutablePathHeader names the response header of /crumbs.js that gives
// the path of the same library at its immutable URL, VersionedPath, so that
// sites and tools can find it (curl -sI https://crumbs.example.com/crumbs.js).
const ImmutablePathHeader = "Crumbs-Immutable-Path"

// Register serves the library at GET /crumbs.js (cached for five minutes,
// revalidated by ETag, naming VersionedPath in ImmutablePathHeader) and at
// GET VersionedPath (cached for a year, immutable), gzipped for clients that
// accept it.
func Register(mux *http.ServeMux) {
	mux.Handle("GET /crumbs.js", handler("public, max-age=300", true))
	mux.Handle("GET "+VersionedPath, handler("public, max-age=31536000, immutable", false))
}

func handler(cacheControl string, namesImmutable bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, etag := script, `"`+Version+`"`
		h := w.Header()
		if acceptsGzip(r.Header.Get("Accept-Encoding")) {
			body, etag = gzipped, `"`+Version+`-gzip"`
			h.Set("Content-Encoding", "gzip")
		}
		h.Set("Content-Type", "text/javascript; charset=utf-8")
		h.Set("Cache-Control", cacheControl)
		h.Set("ETag", etag)
		h.Set("Vary", "Accept-Encoding")
		h.Set("X-Content-Type-Options", "nosniff")
		// Lets pages load it with crossorigin (for Subresource Integrity).
		h.Set("Access-Control-Allow-Origin", "*")
		// Lets cross-origin isolated pages (Cross-Origin-Embedder-Policy:
		// require-corp) load it with a plain script tag, without crossorigin.
		h.Set("Cross-Origin-Resource-Policy", "cross-origin")
		if namesImmutable {
			h.Set(ImmutablePathHeader, VersionedPath)
			h.Set("Access-Control-Expose-Headers", ImmutablePathHeader)
		}
		// ServeContent answers If-None-Match (against the ETag above), HEAD
		// and Range requests.
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(body))
	})
}

// acceptsGzip reports whether an Accept-Encoding header admits gzip.
func acceptsGzip(header string) bool {
	for _, part := range strings.Split(header, ",") {
		coding, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		if coding != "gzip" && coding != "*" {
			continue
		}
		q := strings.ReplaceAll(strings.TrimSpace(params), " ", "")
		return q != "q=0" && q != "q=0.0" && q != "q=0.00" && q != "q=0.000"
	}
	return false
}

func hash(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:6])
}

func compress(b []byte) []byte {
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	zw.Write(b)
	zw.Close()
	return buf.Bytes()
}
