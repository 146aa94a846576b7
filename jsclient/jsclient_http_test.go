package jsclient

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
)

func serve(t *testing.T, method, path string, header map[string]string) *http.Response {
	t.Helper()
	mux := http.NewServeMux()
	Register(mux)
	req := httptest.NewRequest(method, path, nil)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, req)
	return rec.Result()
}

func body(t *testing.T, res *http.Response) []byte {
	t.Helper()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestServesLibrary(t *testing.T) {
	if len(script) == 0 || !bytes.Contains(script, []byte("api/v1/apps/")) {
		t.Fatalf("embedded dist/crumbs.js looks wrong (%d bytes)", len(script))
	}
	if len(Version) != 12 || VersionedPath != "/crumbs."+Version+".js" {
		t.Fatalf("Version %q, VersionedPath %q", Version, VersionedPath)
	}
	for _, tc := range []struct{ path, cacheControl string }{
		{"/crumbs.js", "public, max-age=300"},
		{VersionedPath, "public, max-age=31536000, immutable"},
	} {
		t.Run(tc.path, func(t *testing.T) {
			res := serve(t, "GET", tc.path, nil)
			want := map[string]string{
				"Content-Type":     "text/javascript; charset=utf-8",
				"Cache-Control":    tc.cacheControl,
				"ETag":             `"` + Version + `"`,
				"Vary":             "Accept-Encoding",
				"Content-Encoding": "",
				// Cross-origin isolated pages load it with a plain script tag.
				"Cross-Origin-Resource-Policy": "cross-origin",
			}
			if res.StatusCode != 200 {
				t.Fatalf("status %d", res.StatusCode)
			}
			for k, v := range want {
				if got := res.Header.Get(k); got != v {
					t.Errorf("%s: %q, want %q", k, got, v)
				}
			}
			if b := body(t, res); !bytes.Equal(b, script) {
				t.Errorf("body is %d bytes, want the %d of dist/crumbs.js", len(b), len(script))
			}
		})
	}
}

func TestGzip(t *testing.T) {
	res := serve(t, "GET", "/crumbs.js", map[string]string{"Accept-Encoding": "br, gzip;q=0.8"})
	if res.Header.Get("Content-Encoding") != "gzip" || res.Header.Get("ETag") != `"`+Version+`-gzip"` {
		t.Fatalf("headers %v", res.Header)
	}
	zr, err := gzip.NewReader(bytes.NewReader(body(t, res)))
	if err != nil {
		t.Fatal(err)
	}
	plain, err := io.ReadAll(zr)
	if err != nil || !bytes.Equal(plain, script) {
		t.Fatalf("gunzipped body differs from dist/crumbs.js (err %v)", err)
	}
	if len(gzipped) > 2750 {
		t.Errorf("gzipped library is %d bytes, over the 2750 budget", len(gzipped))
	}

	res = serve(t, "GET", "/crumbs.js", map[string]string{"Accept-Encoding": "gzip;q=0, deflate"})
	if res.Header.Get("Content-Encoding") != "" {
		t.Errorf("gzip;q=0 must not be gzipped")
	}
}

func TestAcceptsGzip(t *testing.T) {
	for header, want := range map[string]bool{
		"":                     false,
		"gzip":                 true,
		"gzip, deflate, br":    true,
		"br;q=1.0, gzip;q=0.5": true,
		"*":                    true,
		"gzip;q=0":             false,
		"deflate":              false,
		"x-gzip":               false,
	} {
		if got := acceptsGzip(header); got != want {
			t.Errorf("acceptsGzip(%q) = %v, want %v", header, got, want)
		}
	}
}

func TestConditionalAndOtherRequests(t *testing.T) {
	res := serve(t, "GET", "/crumbs.js", map[string]string{"If-None-Match": `"` + Version + `"`})
	if res.StatusCode != http.StatusNotModified || len(body(t, res)) != 0 {
		t.Errorf("If-None-Match: status %d, want 304 with no body", res.StatusCode)
	}
	res = serve(t, "GET", "/crumbs.js", map[string]string{"If-None-Match": `"stale"`})
	if res.StatusCode != 200 {
		t.Errorf("stale If-None-Match: status %d, want 200", res.StatusCode)
	}
	if res := serve(t, "HEAD", VersionedPath, nil); res.StatusCode != 200 || len(body(t, res)) != 0 {
		t.Errorf("HEAD: status %d", res.StatusCode)
	}
	if res := serve(t, "POST", "/crumbs.js", nil); res.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST: status %d, want 405", res.StatusCode)
	}
	if res := serve(t, "GET", "/crumbs.0123456789ab.js", nil); res.StatusCode != http.StatusNotFound {
		t.Errorf("another version: status %d, want 404", res.StatusCode)
	}
	if !strings.HasPrefix(VersionedPath, "/crumbs.") {
		t.Errorf("VersionedPath %q", VersionedPath)
	}
}

// TestImmutableURLIsDiscoverable checks that /crumbs.js names the immutable
// URL of the same build in a header (readable cross-origin too), and that
// the README prints the current one.
func TestImmutableURLIsDiscoverable(t *testing.T) {
	for _, method := range []string{"GET", "HEAD"} {
		res := serve(t, method, "/crumbs.js", nil)
		if got := res.Header.Get(ImmutablePathHeader); got != VersionedPath {
			t.Errorf("%s /crumbs.js: %s %q, want %q", method, ImmutablePathHeader, got, VersionedPath)
		}
		if got := res.Header.Get("Access-Control-Expose-Headers"); got != ImmutablePathHeader {
			t.Errorf("%s /crumbs.js: Access-Control-Expose-Headers %q", method, got)
		}
	}
	if got := serve(t, "GET", VersionedPath, nil).Header.Get(ImmutablePathHeader); got != "" {
		t.Errorf("the immutable URL names itself: %q", got)
	}
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(readme, []byte("`"+VersionedPath+"`")) {
		t.Errorf("README.md does not print this build's immutable URL `%s` (update it after `npm run build`)", VersionedPath)
	}
}
