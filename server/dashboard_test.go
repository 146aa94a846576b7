package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/crumbs-dev/crumbs/models"
	"github.com/crumbs-dev/crumbs/models/modelstest"
	"github.com/crumbs-dev/crumbs/server/dashboard"
	"gorm.io/gorm"
)

// vaultCall posts body to a token vault endpoint with these cookies and
// headers, through the real handler stack.
func (a *api) vaultCall(op, body string, cookie *http.Cookie, header map[string]string) (*httptest.ResponseRecorder, map[string]any) {
	a.t.Helper()
	r := httptest.NewRequest(http.MethodPost, "http://crumbs.example.com"+dashboard.VaultPath+op, strings.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	r.Header.Set("Origin", "http://crumbs.example.com")
	for k, v := range header {
		r.Header.Set(k, v)
	}
	if cookie != nil {
		r.AddCookie(cookie)
	}
	w := httptest.NewRecorder()
	a.handler.ServeHTTP(w, r)
	var out map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &out); err != nil {
		a.t.Fatalf("%s: answer is not JSON: %v\n%s", op, err, w.Body)
	}
	return w, out
}

func refreshCookie(t *testing.T, w *httptest.ResponseRecorder) *http.Cookie {
	t.Helper()
	for _, c := range w.Result().Cookies() {
		if c.Name == dashboard.CookieName {
			return c
		}
	}
	return nil
}

// TestDashboardTokenVault checks that the dashboard's sign-in keeps the
// refresh token in an HttpOnly, SameSite=Strict cookie scoped to the vault,
// that the page gets only the access token, that refresh rotates the cookie
// (an old cookie is refused), that other origins and non-JSON posts are
// refused, and that logout ends the sign-in and clears the cookie.
func TestDashboardTokenVault(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *gorm.DB) {
		a := newAPI(t, db)
		email := unique("vault") + "@example.com"
		if _, err := models.CreateUser(context.Background(), db, email, "Vera", "correct horse battery"); err != nil {
			t.Fatal(err)
		}

		w, out := a.vaultCall("login", `{"email":"`+email+`","password":"wrong password!"}`, nil, nil)
		if w.Code != http.StatusUnauthorized || refreshCookie(t, w) != nil || !strings.Contains(w.Body.String(), "UNAUTHENTICATED") {
			t.Fatalf("wrong password: %d %s, cookie %v", w.Code, w.Body, refreshCookie(t, w))
		}

		w, out = a.vaultCall("login", `{"email":"`+email+`","password":"correct horse battery"}`, nil, nil)
		c := refreshCookie(t, w)
		if w.Code != http.StatusOK || c == nil {
			t.Fatalf("login: %d %s", w.Code, w.Body)
		}
		if !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.Path != dashboard.VaultPath || !c.Secure || !strings.HasPrefix(c.Value, "rt_") {
			t.Fatalf("cookie %+v: want HttpOnly, Secure, SameSite=Strict, Path=%s", c, dashboard.VaultPath)
		}
		if strings.Contains(w.Body.String(), c.Value) || strings.Contains(w.Body.String(), "refreshToken") {
			t.Fatalf("the page must never see the refresh token: %s", w.Body)
		}
		data := out["data"].(map[string]any)
		access := data["accessToken"].(string)
		if data["user"].(map[string]any)["email"] != email {
			t.Fatalf("login answer %v", data)
		}
		a.tokenWorks(access)

		// Another site's page, or a form post, cannot use the cookie.
		if w, _ := a.vaultCall("refresh", `{}`, c, map[string]string{"Origin": "https://evil.example"}); w.Code != http.StatusForbidden {
			t.Fatalf("cross-origin refresh: %d %s", w.Code, w.Body)
		}
		if w, _ := a.vaultCall("refresh", `{}`, c, map[string]string{"Content-Type": "text/plain"}); w.Code != http.StatusForbidden {
			t.Fatalf("text/plain refresh: %d %s", w.Code, w.Body)
		}

		w, out = a.vaultCall("refresh", `{}`, c, nil)
		c2 := refreshCookie(t, w)
		if w.Code != http.StatusOK || c2 == nil || c2.Value == c.Value {
			t.Fatalf("refresh: %d %s cookie %v", w.Code, w.Body, c2)
		}
		a.tokenWorks(out["data"].(map[string]any)["accessToken"].(string))

		// Logout ends the sign-in: the cookie is cleared and refused afterwards.
		w, _ = a.vaultCall("logout", `{}`, c2, nil)
		if cleared := refreshCookie(t, w); w.Code != http.StatusOK || cleared == nil || cleared.MaxAge >= 0 {
			t.Fatalf("logout: %d %s cookie %v", w.Code, w.Body, cleared)
		}
		if w, _ := a.vaultCall("refresh", `{}`, c2, nil); w.Code != http.StatusUnauthorized {
			t.Fatalf("refresh after logout: %d %s", w.Code, w.Body)
		}
		if w, _ := a.vaultCall("refresh", `{}`, nil, nil); w.Code != http.StatusUnauthorized {
			t.Fatalf("refresh without cookie: %d %s", w.Code, w.Body)
		}
	})
}

// Every dashboard response, a page, an asset or the token vault's, denies
// the browser features the dashboard does not use (it set no
// Permissions-Policy, so a script injected in it could ask for the camera,
// microphone or location under the server's origin).
func TestDashboardPermissionsPolicy(t *testing.T) {
	a := newAPI(t, modelstest.SQLite(t))
	for _, features := range []string{"camera=()", "microphone=()", "geolocation=()", "payment=()", "usb=()"} {
		if !strings.Contains(dashboard.PermissionsPolicy, features) {
			t.Errorf("the policy does not deny %s: %s", features, dashboard.PermissionsPolicy)
		}
	}
	index := httptest.NewRecorder()
	a.handler.ServeHTTP(index, httptest.NewRequest(http.MethodGet, "/", nil))
	rest := strings.SplitN(index.Body.String(), `"/assets/`, 2)
	if len(rest) != 2 {
		t.Fatalf("index.html loads no asset: %s", index.Body)
	}
	asset := "/assets/" + rest[1][:strings.IndexByte(rest[1], '"')]
	for _, r := range []*http.Request{
		httptest.NewRequest(http.MethodGet, "/", nil),
		httptest.NewRequest(http.MethodGet, "/apps/app_x/leads/1", nil),
		httptest.NewRequest(http.MethodGet, asset, nil),
		httptest.NewRequest(http.MethodPost, dashboard.VaultPath+"refresh", strings.NewReader(`{}`)),
	} {
		w := httptest.NewRecorder()
		a.handler.ServeHTTP(w, r)
		if got := w.Header().Get("Permissions-Policy"); got != dashboard.PermissionsPolicy {
			t.Errorf("%s %s: %d, Permissions-Policy %q", r.Method, r.URL.Path, w.Code, got)
		}
	}
}

// TestDashboardPages checks that every page URL serves the app with the
// strict CSP, that its assets are served, and that other paths stay 404.
func TestDashboardPages(t *testing.T) {
	a := newAPI(t, modelstest.SQLite(t))
	get := func(path string) *httptest.ResponseRecorder {
		w := httptest.NewRecorder()
		a.handler.ServeHTTP(w, httptest.NewRequest(http.MethodGet, path, nil))
		return w
	}
	var index string
	for _, path := range []string{"/", "/signin", "/invitation", "/account", "/new", "/apps/app_x", "/apps/app_x/leads/1"} {
		w := get(path)
		if w.Code != http.StatusOK || w.Header().Get("Content-Security-Policy") != dashboard.CSP || !strings.Contains(w.Body.String(), `<div id="root">`) {
			t.Fatalf("GET %s: %d %v", path, w.Code, w.Header())
		}
		index = w.Body.String()
	}
	if strings.Contains(dashboard.CSP, "unsafe") || strings.Contains(index, "<script>") || strings.Contains(index, "style=") {
		t.Fatalf("no inline script or style, and no unsafe CSP source: %s\n%s", dashboard.CSP, index)
	}
	assets := strings.Split(index, `"/assets/`)[1:]
	if len(assets) != 2 {
		t.Fatalf("index.html should load one script and one stylesheet: %s", index)
	}
	for _, rest := range assets {
		path := "/assets/" + rest[:strings.IndexByte(rest, '"')]
		if w := get(path); w.Code != http.StatusOK || !strings.Contains(w.Header().Get("Cache-Control"), "immutable") {
			t.Fatalf("GET %s: %d %v", path, w.Code, w.Header())
		}
	}
	for _, path := range []string{"/nope", "/assets/nope.js", "/apps-and-more"} {
		if w := get(path); w.Code != http.StatusNotFound {
			t.Fatalf("GET %s: %d, want 404", path, w.Code)
		}
	}
}
