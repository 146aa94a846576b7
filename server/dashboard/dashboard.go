// Package dashboard serves the first-party dashboard: a single-page app
// (Preact + htm + uPlot, built by build.mjs from src/ into dist/, committed
// and embedded) that speaks only the public GraphQL API, plus a small token
// vault (vault.go) that keeps the refresh token in an HttpOnly cookie.
package dashboard

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"time"
)

//go:embed dist
var dist embed.FS

// CSP lets the dashboard run nothing but its own script and style: no
// inline script or style, no other origin, no frames, no plugins. connect-src
// 'self' covers fetch to /graphql and the same-origin websocket.
const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; font-src 'self'; manifest-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// PermissionsPolicy denies the powerful browser features the app never uses,
// to it and to anything that might run in it: no camera, microphone or
// location, no payment, USB or other device APIs.
const PermissionsPolicy = "accelerometer=(), autoplay=(), camera=(), display-capture=(), encrypted-media=(), " +
	"fullscreen=(), geolocation=(), gyroscope=(), hid=(), idle-detection=(), magnetometer=(), microphone=(), " +
	"midi=(), payment=(), picture-in-picture=(), publickey-credentials-get=(), screen-wake-lock=(), serial=(), " +
	"usb=(), xr-spatial-tracking=()"

// Pages are the URL paths the app answers (client-side routing); every one
// serves index.html so that reload and shared links work.
var Pages = []string{"/{$}", "/signin", "/invitation", "/account", "/new", "/apps/"}

// asset is one embedded file with its gzipped form.
type asset struct {
	body, gz []byte
	etag     string
	ctype    string
}

func load(name string) asset {
	b, err := fs.ReadFile(dist, "dist/"+name)
	if err != nil {
		panic("dashboard: missing embedded file dist/" + name + " (run npm run build in server/dashboard)")
	}
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	zw.Write(b)
	zw.Close()
	sum := sha256.Sum256(b)
	ctype := "text/html; charset=utf-8"
	switch path.Ext(name) {
	case ".js":
		ctype = "text/javascript; charset=utf-8"
	case ".css":
		ctype = "text/css; charset=utf-8"
	case ".svg":
		ctype = "image/svg+xml"
	}
	return asset{body: b, gz: buf.Bytes(), etag: `"` + hex.EncodeToString(sum[:8]) + `"`, ctype: ctype}
}

// Register serves the app's pages (index.html, never cached without
// revalidation), its content-hashed assets under /assets/ (immutable), and
// the token vault under /dashboard/auth/ (see Vault).
func Register(mux *http.ServeMux, vault *Vault) {
	index := load("index.html")
	for _, p := range Pages {
		mux.Handle("GET "+p, serve(index, "no-cache"))
	}
	assets, _ := fs.ReadDir(dist, "dist/assets")
	for _, e := range assets {
		mux.Handle("GET /assets/"+e.Name(), serve(load("assets/"+e.Name()), "public, max-age=31536000, immutable"))
	}
	vault.register(mux)
}

func serve(a asset, cacheControl string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		body, etag := a.body, a.etag
		if strings.Contains(r.Header.Get("Accept-Encoding"), "gzip") {
			body, etag = a.gz, strings.TrimSuffix(a.etag, `"`)+`-gzip"`
			h.Set("Content-Encoding", "gzip")
		}
		h.Set("Content-Type", a.ctype)
		h.Set("Cache-Control", cacheControl)
		h.Set("ETag", etag)
		h.Set("Vary", "Accept-Encoding")
		securityHeaders(h)
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(body))
	})
}

// securityHeaders are set on every dashboard response.
func securityHeaders(h http.Header) {
	h.Set("Content-Security-Policy", CSP)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	h.Set("Permissions-Policy", PermissionsPolicy)
}
