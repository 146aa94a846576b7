package graphiql

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/base64"
	stdhtml "html"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
)

// The page loads only this server's assets, each with a matching integrity
// hash, and the assets are the published npm files gqlgen pins.
func TestPageAndAssets(t *testing.T) {
	mux := http.NewServeMux()
	Register(mux, "/graphiql", "/graphql")
	get := func(path, encoding string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodGet, path, nil)
		if encoding != "" {
			req.Header.Set("Accept-Encoding", encoding)
		}
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, req)
		return rec
	}
	page := get("/graphiql", "")
	if page.Code != 200 || !strings.Contains(page.Header().Get("Content-Security-Policy"), "default-src 'none'") {
		t.Fatalf("page: %d %v", page.Code, page.Header())
	}
	html := page.Body.String()
	if strings.Contains(html, "https://") || strings.Contains(html, "http://") {
		t.Fatalf("the page names an external URL:\n%s", html)
	}
	// gqlgen's pinned hashes of graphiql@4.1.2 and react(-dom)@18.2.0 on the CDN.
	published := map[string]string{
		graphiqlJS:  "sha256-hnImuor1znlJkD/FOTL3jayfS/xsyNoP04abi8bFJWs=",
		graphiqlCSS: "sha256-MEh+B2NdMSpj9kexQNN3QKc8UzMrCXW/Sx/phcpuyIU=",
		reactJS:     "sha256-S0lp+k7zWUMk2ixteM6HZvu8L9Eh//OVrt+ZfbCpmgY=",
		reactDOMJS:  "sha256-IXWO0ITNDjfnNXIu5POVfqlgYoop36bDzhodR6LW5Pc=",
	}
	refs := regexp.MustCompile(`(?:src|href)="(/graphiql/assets/[^"]+)"\s+integrity="([^"]+)"`).FindAllStringSubmatch(html, -1)
	if len(refs) != 4 {
		t.Fatalf("the page loads %d assets, want 4:\n%s", len(refs), html)
	}
	for _, ref := range refs {
		ref[2] = stdhtml.UnescapeString(ref[2]) // html/template writes + as &#43;
		name := strings.TrimPrefix(ref[1], "/graphiql/assets/")
		if ref[2] != published[name] {
			t.Errorf("%s: integrity %s, want the published %s", name, ref[2], published[name])
		}
		plain := get(ref[1], "")
		sum := sha256.Sum256(plain.Body.Bytes())
		if got := "sha256-" + base64.StdEncoding.EncodeToString(sum[:]); plain.Code != 200 || got != ref[2] {
			t.Errorf("%s: %d, body hash %s, page says %s", ref[1], plain.Code, got, ref[2])
		}
		if cc := plain.Header().Get("Cache-Control"); !strings.Contains(cc, "immutable") {
			t.Errorf("%s: Cache-Control %q", ref[1], cc)
		}
		zipped := get(ref[1], "br, gzip")
		if zipped.Header().Get("Content-Encoding") != "gzip" || zipped.Body.Len() >= plain.Body.Len() {
			t.Errorf("%s: gzip %q, %d of %d bytes", ref[1], zipped.Header().Get("Content-Encoding"), zipped.Body.Len(), plain.Body.Len())
			continue
		}
		zr, err := gzip.NewReader(zipped.Body)
		if err != nil {
			t.Fatal(err)
		}
		if unzipped, _ := io.ReadAll(zr); !bytes.Equal(unzipped, plain.Body.Bytes()) {
			t.Errorf("%s: gunzipped body differs", ref[1])
		}
	}
	if rec := get("/graphiql/assets/LICENSE.react", ""); rec.Code != http.StatusNotFound {
		t.Errorf("unknown asset: %d", rec.Code)
	}
	if get("/graphiql/assets/"+reactJS, "gzip;q=0").Header().Get("Content-Encoding") != "" {
		t.Error("gzip;q=0 was gzipped")
	}
}
