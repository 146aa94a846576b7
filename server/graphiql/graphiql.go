// Package graphiql serves GraphiQL with its scripts and styles from the
// binary, so the development IDE works without the internet. gqlgen's
// playground page loads them from a CDN; here the same files (GraphiQL 4.1.2,
// React 18.2.0: the versions and Subresource Integrity hashes gqlgen
// pins) are embedded and served under the page's own path.
//
// The assets are the npm packages' published files, unchanged:
// graphiql@4.1.2 graphiql.min.{js,css}, react@18.2.0 and react-dom@18.2.0
// umd/*.production.min.js (MIT licensed, see assets/LICENSE.*). To update,
// replace them with another version's files and the names below.
package graphiql

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"github.com/99designs/gqlgen/graphql/playground"
)

//go:embed assets/*.js assets/*.css
var files embed.FS

const (
	graphiqlJS  = "graphiql-4.1.2.min.js"
	graphiqlCSS = "graphiql-4.1.2.min.css"
	reactJS     = "react-18.2.0.production.min.js"
	reactDOMJS  = "react-dom-18.2.0.production.min.js"
)

// csp lets the page load nothing but what this server serves: its own
// scripts and styles (plus the page's inline bootstrap script and GraphiQL's
// inline styles), data: fonts and images, and requests to this origin.
const csp = "default-src 'none'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; " +
	"font-src 'self' data:; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// Register serves the GraphiQL page at path, talking to endpoint, and its
// assets under path + "/assets/".
func Register(mux *http.ServeMux, path, endpoint string) {
	assets := path + "/assets/"
	page := playground.Handler("Crumbs", endpoint,
		playground.WithGraphiqlVersion(assets+graphiqlJS, assets+graphiqlCSS, integrity(graphiqlJS), integrity(graphiqlCSS)),
		playground.WithGraphiqlReactVersion(assets+reactJS, assets+reactDOMJS, integrity(reactJS), integrity(reactDOMJS)),
		playground.WithStoragePrefix("crumbs:"),
	)
	mux.HandleFunc("GET "+path, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Security-Policy", csp)
		w.Header().Set("Cache-Control", "no-cache")
		page(w, r)
	})
	mux.HandleFunc("GET "+assets+"{name}", serveAsset)
}

// integrity is the Subresource Integrity value of an embedded asset.
func integrity(name string) string {
	sum := sha256.Sum256(read(name))
	return "sha256-" + base64.StdEncoding.EncodeToString(sum[:])
}

func read(name string) []byte {
	b, err := files.ReadFile("assets/" + name)
	if err != nil {
		panic("graphiql: missing embedded asset " + name)
	}
	return b
}

// gzipped holds each asset compressed, made on first request (production
// never serves GraphiQL, so it never pays for this).
var gzipped sync.Map // name → func() []byte

func compressed(name string) []byte {
	f, _ := gzipped.LoadOrStore(name, sync.OnceValue(func() []byte {
		var buf bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
		zw.Write(read(name))
		zw.Close()
		return buf.Bytes()
	}))
	return f.(func() []byte)()
}

// serveAsset answers an embedded file; names carry their version, so they
// are cached for good.
func serveAsset(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	var contentType string
	switch name {
	case graphiqlJS, reactJS, reactDOMJS:
		contentType = "text/javascript; charset=utf-8"
	case graphiqlCSS:
		contentType = "text/css; charset=utf-8"
	default:
		http.NotFound(w, r)
		return
	}
	h := w.Header()
	h.Set("Content-Type", contentType)
	h.Set("Cache-Control", "public, max-age=31536000, immutable")
	h.Set("Vary", "Accept-Encoding")
	h.Set("X-Content-Type-Options", "nosniff")
	body := read(name)
	if acceptsGzip(r.Header.Get("Accept-Encoding")) {
		h.Set("Content-Encoding", "gzip")
		body = compressed(name)
	}
	w.Write(body)
}

func acceptsGzip(header string) bool {
	for part := range strings.SplitSeq(header, ",") {
		coding, params, _ := strings.Cut(part, ";")
		if !strings.EqualFold(strings.TrimSpace(coding), "gzip") {
			continue
		}
		q := 1.0
		if k, v, ok := strings.Cut(strings.TrimSpace(params), "="); ok && strings.TrimSpace(k) == "q" {
			q, _ = strconv.ParseFloat(strings.TrimSpace(v), 64)
		}
		return q > 0
	}
	return false
}
