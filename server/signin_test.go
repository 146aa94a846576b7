package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/99designs/gqlgen/client"
	"github.com/crumbs-dev/crumbs/models"
	"github.com/crumbs-dev/crumbs/models/modelstest"
	"gorm.io/gorm"
)

const loginQuery = `mutation($e: String!, $p: String!) { login(email: $e, password: $p) { accessToken refreshToken } }`

// newUser creates a dashboard user with this password and returns its email.
func (a *api) newUser(password string) string {
	a.t.Helper()
	email := unique("signin") + "@example.com"
	if _, err := models.CreateUser(context.Background(), a.db, email, "", password); err != nil {
		a.t.Fatal(err)
	}
	return email
}

// login signs in and returns the session.
func (a *api) login(email, password string) sessionOut {
	a.t.Helper()
	var out struct{ Login sessionOut }
	a.ok(loginQuery, &out, client.Var("e", email), client.Var("p", password), anonymous())
	return out.Login
}

func (a *api) refresh(token string) sessionOut {
	a.t.Helper()
	var out struct{ RefreshToken sessionOut }
	a.ok(`mutation($r: String!) { refreshToken(refreshToken: $r) { accessToken refreshToken } }`, &out, client.Var("r", token), anonymous())
	return out.RefreshToken
}

func (a *api) refreshRefused(token string) {
	a.t.Helper()
	a.refused("UNAUTHENTICATED", "", `mutation($r: String!) { refreshToken(refreshToken: $r) { accessToken } }`, client.Var("r", token), anonymous())
}

func (a *api) tokenRefused(token string) {
	a.t.Helper()
	a.refused("UNAUTHENTICATED", "", `{ me { id } }`, as(token))
}

func (a *api) tokenWorks(token string) {
	a.t.Helper()
	if !a.acceptsToken(token) {
		a.t.Fatal("a live sign-in's access token was refused")
	}
}

// Ending a sign-in ends its access tokens at once on this replica, and on
// others within their cache time.
func TestEndedSignInsEndAccessTokens(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *gorm.DB) {
		a := newAPI(t, db)
		uncached := newAPI(t, db, func(c *config) { c.CacheTTL = 0 })
		cached := newAPI(t, db, func(c *config) { c.CacheTTL = time.Hour })
		email := a.newUser("correct horse battery")

		// logout
		s1, s2 := a.login(email, "correct horse battery"), a.login(email, "correct horse battery")
		cached.tokenWorks(s1.AccessToken)
		a.ok(`mutation($r: String!) { logout(refreshToken: $r) }`, &map[string]any{}, client.Var("r", s1.RefreshToken), anonymous())
		a.tokenRefused(s1.AccessToken)
		uncached.tokenRefused(s1.AccessToken)
		cached.tokenWorks(s1.AccessToken) // another replica notices within its CRUMBS_CACHE_TTL
		a.refreshRefused(s1.RefreshToken)
		a.tokenWorks(s2.AccessToken)

		// a refresh token used twice ends its whole sign-in, new tokens included
		next := a.refresh(s2.RefreshToken)
		a.tokenWorks(next.AccessToken)
		a.refreshRefused(s2.RefreshToken)
		for _, token := range []string{s2.AccessToken, next.AccessToken} {
			a.tokenRefused(token)
			uncached.tokenRefused(token)
		}
		a.refreshRefused(next.RefreshToken)

		// logoutEverywhere ends every sign-in of the user, this one included
		s3, s4 := a.login(email, "correct horse battery"), a.login(email, "correct horse battery")
		other := a.login(a.newUser("correct horse battery"), "correct horse battery")
		var out struct{ LogoutEverywhere bool }
		a.ok(`mutation { logoutEverywhere }`, &out, as(s3.AccessToken))
		if !out.LogoutEverywhere {
			t.Fatal("logoutEverywhere answered false")
		}
		for _, s := range []sessionOut{s3, s4} {
			a.tokenRefused(s.AccessToken)
			uncached.tokenRefused(s.AccessToken)
			a.refreshRefused(s.RefreshToken)
		}
		a.tokenWorks(other.AccessToken)
		a.refused("UNAUTHENTICATED", "", `mutation { logoutEverywhere }`, anonymous())
	})
}

func TestChangePassword(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *gorm.DB) {
		a := newAPI(t, db)
		email := a.newUser("correct horse battery")
		here, elsewhere := a.login(email, "correct horse battery"), a.login(email, "correct horse battery")
		change := `mutation($c: String!, $n: String!) { changePassword(currentPassword: $c, newPassword: $n) }`
		a.refused("BAD_USER_INPUT", "currentPassword", change, client.Var("c", "wrong password!"), client.Var("n", "a new good password"), as(here.AccessToken))
		a.refused("BAD_USER_INPUT", "newPassword", change, client.Var("c", "correct horse battery"), client.Var("n", "          "), as(here.AccessToken))
		a.refused("BAD_USER_INPUT", "newPassword", change, client.Var("c", "correct horse battery"), client.Var("n", "correct horse battery"), as(here.AccessToken))
		a.refused("UNAUTHENTICATED", "", change, client.Var("c", "correct horse battery"), client.Var("n", "a new good password"), anonymous())
		a.tokenWorks(elsewhere.AccessToken) // refusals change nothing

		var out struct{ ChangePassword bool }
		a.ok(change, &out, client.Var("c", "correct horse battery"), client.Var("n", "a new good password"), as(here.AccessToken))
		if !out.ChangePassword {
			t.Fatal("changePassword answered false")
		}
		a.tokenWorks(here.AccessToken)
		a.refresh(here.RefreshToken)
		a.tokenRefused(elsewhere.AccessToken)
		a.refreshRefused(elsewhere.RefreshToken)
		a.refused("UNAUTHENTICATED", "", loginQuery, client.Var("e", email), client.Var("p", "correct horse battery"), anonymous())
		a.login(email, "a new good password")
	})
}

// signInPost sends a sign-in mutation from a client address and returns the
// status, Retry-After and body.
func (a *api) signInPost(remote, query string, vars map[string]any) (int, string, string) {
	a.t.Helper()
	body, _ := json.Marshal(map[string]any{"query": query, "variables": vars})
	req := httptest.NewRequest(http.MethodPost, "/graphql", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.RemoteAddr = remote
	rec := httptest.NewRecorder()
	a.handler.ServeHTTP(rec, req)
	out, _ := io.ReadAll(rec.Body)
	return rec.Code, rec.Header().Get("Retry-After"), string(out)
}

func TestSignInThrottling(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *gorm.DB) {
		a := newAPI(t, db)
		known := a.newUser("correct horse battery")
		unknown := unique("nobody") + "@example.com"
		login := func(remote, email, password string) (int, string, string) {
			return a.signInPost(remote, loginQuery, map[string]any{"e": email, "p": password})
		}

		// A wrong password and an unknown email get the very same answer.
		for i := range 5 {
			s1, _, wrong := login("198.51.100.1:1", known, "wrong password!")
			s2, _, nobody := login("198.51.100.1:1", unknown, "wrong password!")
			if s1 != 200 || wrong != nobody || !bytes.Contains([]byte(wrong), []byte(`"UNAUTHENTICATED"`)) {
				t.Fatalf("failure %d: %d %s / %d %s", i+1, s1, wrong, s2, nobody)
			}
		}
		// Past 5 failures, each email must wait, right password or not.
		s1, retry1, lockedKnown := login("198.51.100.2:1", known, "correct horse battery")
		s2, retry2, lockedUnknown := login("198.51.100.2:1", unknown, "wrong password!")
		if s1 != http.StatusTooManyRequests || retry1 != "1" || lockedKnown != lockedUnknown || !bytes.Contains([]byte(lockedKnown), []byte(`"RATE_LIMITED"`)) {
			t.Fatalf("sixth attempt: %d %q %s / %d %q %s", s1, retry1, lockedKnown, s2, retry2, lockedUnknown)
		}
		// The wait passes, and the right password works again.
		wait, _ := strconv.Atoi(retry1)
		time.Sleep(time.Duration(wait)*time.Second + 100*time.Millisecond)
		if status, _, body := login("198.51.100.2:1", known, "correct horse battery"); status != 200 {
			t.Fatalf("after the wait: %d %s", status, body)
		}

		// Per client IP: 20 failures over any emails, then it waits.
		for i := range 20 {
			if status, _, body := login("203.0.113.5:1", unique("guess")+"@example.com", "x"); status != 200 {
				t.Fatalf("IP failure %d: %d %s", i+1, status, body)
			}
		}
		if status, retry, _ := login("203.0.113.5:1", unique("guess")+"@example.com", "x"); status != http.StatusTooManyRequests || retry == "" {
			t.Fatalf("21st failure of one IP: %d %q", status, retry)
		}
		if status, _, _ := login("203.0.113.6:1", unique("guess")+"@example.com", "x"); status != 200 {
			t.Fatalf("another IP was limited: %d", status)
		}
		// Refresh tokens and invitations are guessed per IP too.
		for range 20 {
			a.signInPost("203.0.113.7:1", `mutation { refreshToken(refreshToken: "rt_guess") { accessToken } }`, nil)
		}
		if status, _, body := a.signInPost("203.0.113.7:1", `mutation { acceptInvitation(token: "inv_guess", password: "a good password") { accessToken } }`, nil); status != http.StatusTooManyRequests {
			t.Fatalf("guessing tokens was not limited: %d %s", status, body)
		}
	})
}

// One request checks at most one password: aliases and fragments of the
// sign-in mutations are refused before any of them runs.
func TestOneSignInPerRequest(t *testing.T) {
	a := newAPI(t, modelstest.SQLite(t))
	email := a.newUser("correct horse battery")
	guesses := func(n int) string {
		var b bytes.Buffer
		b.WriteString("mutation {")
		for i := range n {
			fmt.Fprintf(&b, ` g%d: login(email: %q, password: "guess %d") { accessToken }`, i, email, i)
		}
		b.WriteString(" }")
		return b.String()
	}
	for name, query := range map[string]string{
		"aliases":           guesses(2),
		"many aliases":      guesses(200),
		"login and refresh": `mutation { login(email: "a@example.com", password: "x") { accessToken } refreshToken(refreshToken: "rt_x") { accessToken } }`,
		"through fragments": `mutation { ...A ...B } fragment A on Mutation { a: login(email: "a@example.com", password: "x") { accessToken } } ` +
			`fragment B on Mutation { b: login(email: "a@example.com", password: "y") { accessToken } }`,
		"inline fragment":       `mutation { a: login(email: "a@example.com", password: "x") { accessToken } ... on Mutation { b: acceptInvitation(token: "t", password: "y") { accessToken } } }`,
		"deleteAccount guesses": `mutation { a: deleteAccount(password: "x") b: deleteAccount(password: "y") }`,
		"deleteApp guesses":     `mutation { a: deleteApp(appId: "x", password: "x") b: deleteApp(appId: "x", password: "y") }`,
	} {
		t.Run(name, func(t *testing.T) {
			status, _, body := a.signInPost("198.51.100.9:1", query, nil)
			if status != http.StatusUnprocessableEntity || !bytes.Contains([]byte(body), []byte("COMPLEXITY_LIMIT_EXCEEDED")) || bytes.Contains([]byte(body), []byte("accessToken")) {
				t.Fatalf("%d %s", status, body)
			}
		})
	}
	// None of them counted as a failure.
	for i := range 5 {
		if status, _, body := a.signInPost("198.51.100.9:1", loginQuery, map[string]any{"e": email, "p": "wrong"}); status != 200 {
			t.Fatalf("failure %d after refused batches: %d %s", i+1, status, body)
		}
	}
}

// A refresh chain begun before sign-ins were recorded (or by an older
// replica during a rolling upgrade) gets its sign-in when refreshed.
func TestRefreshOfAChainWithoutSignIn(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *gorm.DB) {
		a := newAPI(t, db)
		email := a.newUser("correct horse battery")
		user, err := models.Authenticate(context.Background(), db, email, "correct horse battery")
		if err != nil {
			t.Fatal(err)
		}
		token := "rt_" + unique("legacychain") + "abcdefghijklmnopqrstuvwxyz"
		sum := sha256.Sum256([]byte(token))
		row := models.RefreshToken{UserID: user.ID, FamilyID: unique("legacy"), TokenHash: hex.EncodeToString(sum[:]), ExpiresAt: time.Now().Add(time.Hour)}
		if err := db.Create(&row).Error; err != nil {
			t.Fatal(err)
		}
		next := a.refresh(token)
		a.tokenWorks(next.AccessToken)
		a.ok(`mutation($r: String!) { logout(refreshToken: $r) }`, &map[string]any{}, client.Var("r", next.RefreshToken), anonymous())
		a.tokenRefused(next.AccessToken)
	})
}
