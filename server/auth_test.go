package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/99designs/gqlgen/client"
	"github.com/crumbs-dev/crumbs/models"
	"github.com/crumbs-dev/crumbs/models/modelstest"
	"github.com/golang-jwt/jwt/v5"
	"gorm.io/gorm"
)

func TestJWTRejections(t *testing.T) {
	a := newAPI(t, modelstest.SQLite(t))
	userID, err := a.tokenUser(a.ownerToken)
	if err != nil {
		t.Fatal(err)
	}
	sub := models.FormatID(userID)
	secret := []byte(testJWTSecret)
	owner, _, _ := jwt.NewParser().ParseUnverified(a.ownerToken, jwt.MapClaims{})
	kid, sid := owner.Header["kid"].(string), owner.Claims.(jwt.MapClaims)["sid"].(string)
	now := time.Now()
	claims := func(edit func(jwt.MapClaims)) jwt.MapClaims {
		c := jwt.MapClaims{"iss": "crumbs", "aud": "crumbs-dashboard", "sub": sub, "sid": sid, "iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(time.Minute).Unix()}
		if edit != nil {
			edit(c)
		}
		return c
	}
	sign := func(method jwt.SigningMethod, key any, kidHeader string, c jwt.MapClaims) string {
		tok := jwt.NewWithClaims(method, c)
		if kidHeader != "" {
			tok.Header["kid"] = kidHeader
		}
		s, err := tok.SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	if got := sign(jwt.SigningMethodHS256, secret, kid, claims(nil)); !a.acceptsToken(got) {
		t.Fatal("a well-formed token was refused; the cases below would prove nothing")
	}
	cases := map[string]string{
		"alg none":            sign(jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, kid, claims(nil)),
		"other algorithm":     sign(jwt.SigningMethodHS512, secret, kid, claims(nil)),
		"missing exp":         sign(jwt.SigningMethodHS256, secret, kid, claims(func(c jwt.MapClaims) { delete(c, "exp") })),
		"expired":             sign(jwt.SigningMethodHS256, secret, kid, claims(func(c jwt.MapClaims) { c["exp"] = now.Add(-time.Minute).Unix() })),
		"nbf in the future":   sign(jwt.SigningMethodHS256, secret, kid, claims(func(c jwt.MapClaims) { c["nbf"] = now.Add(time.Hour).Unix() })),
		"wrong issuer":        sign(jwt.SigningMethodHS256, secret, kid, claims(func(c jwt.MapClaims) { c["iss"] = "someone-else" })),
		"wrong audience":      sign(jwt.SigningMethodHS256, secret, kid, claims(func(c jwt.MapClaims) { c["aud"] = "another-app" })),
		"unknown kid":         sign(jwt.SigningMethodHS256, secret, "not-a-key", claims(nil)),
		"no kid":              sign(jwt.SigningMethodHS256, secret, "", claims(nil)),
		"other signing key":   sign(jwt.SigningMethodHS256, []byte("another-secret-that-is-32-bytes-long!!"), kid, claims(nil)),
		"garbage":             "not.a.jwt",
		"user does not exist": sign(jwt.SigningMethodHS256, secret, kid, claims(func(c jwt.MapClaims) { c["sub"] = "999999999" })),
		"no sign-in":          sign(jwt.SigningMethodHS256, secret, kid, claims(func(c jwt.MapClaims) { delete(c, "sid") })),
		"unknown sign-in":     sign(jwt.SigningMethodHS256, secret, kid, claims(func(c jwt.MapClaims) { c["sid"] = "made-up-sign-in" })),
	}
	// Mutations a browser may call without a credential refuse one that
	// was refused: taken for a browser's call, a trigger with an expired
	// token was accepted (or refused for its origin or its occurredAt),
	// which hid the caller's mistake.
	appID, _ := a.createApp("Credentials")
	var created any
	a.ok(`mutation($a: ID!) { createEventDefinition(input: {appId: $a, code: "signup", name: "Signup"}) { id } }`, &created, client.Var("a", appID))
	const (
		trigger  = `mutation($a: ID!) { trigger(input: {appId: $a, deviceId: "d-1", code: "signup"}) { accepted } }`
		batch    = `mutation($a: ID!) { triggerBatch(inputs: [{appId: $a, deviceId: "d-1", code: "signup"}]) { accepted error { code } } }`
		identify = `mutation($a: ID!) { identify(input: {appId: $a, deviceId: "d-1", email: "ann@example.com"}) { moved } }`
	)
	browser := client.AddHeader("Origin", "https://site.example")
	a.ok(trigger, &created, client.Var("a", appID), browser, anonymous())
	a.ok(identify, &created, client.Var("a", appID), browser, anonymous())
	for name, token := range cases {
		t.Run(name, func(t *testing.T) {
			a.refused("UNAUTHENTICATED", "", `{ me { id } }`, as(token))
			a.refused("UNAUTHENTICATED", "", trigger, client.Var("a", appID), browser, as(token))
			a.refused("UNAUTHENTICATED", "", identify, client.Var("a", appID), browser, as(token))
			var out struct {
				TriggerBatch []struct {
					Accepted bool
					Error    *struct{ Code string }
				}
			}
			a.ok(batch, &out, client.Var("a", appID), browser, as(token))
			if len(out.TriggerBatch) != 1 || out.TriggerBatch[0].Accepted || out.TriggerBatch[0].Error == nil || out.TriggerBatch[0].Error.Code != "UNAUTHENTICATED" {
				t.Fatalf("triggerBatch with a refused token: %+v", out.TriggerBatch)
			}
		})
	}
}

func (a *api) acceptsToken(token string) bool {
	_, errs := a.do(`{ me { id } }`, as(token))
	return len(errs) == 0
}

func TestSigningKeyRotation(t *testing.T) {
	db := modelstest.SQLite(t)
	oldSecret := "old-signing-secret-of-at-least-32-bytes!"
	old := newAPI(t, db, func(c *config) { c.JWTSecrets = [][]byte{[]byte(oldSecret)} })
	token := old.ownerToken
	rotated := newAPI(t, db, func(c *config) {
		c.JWTSecrets = [][]byte{[]byte("new-signing-secret-of-at-least-32-bytes!"), []byte(oldSecret)}
	})
	if !rotated.acceptsToken(token) {
		t.Fatal("a token of the previous key stopped working after rotation")
	}
	retired := newAPI(t, db, func(c *config) { c.JWTSecrets = [][]byte{[]byte("new-signing-secret-of-at-least-32-bytes!")} })
	retired.refused("UNAUTHENTICATED", "", `{ me { id } }`, as(token))
}

type sessionOut struct {
	AccessToken, RefreshToken string
}

func TestRefreshRotationAndRevocation(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *gorm.DB) {
		a := newAPI(t, db)
		email := unique("refresh") + "@example.com"
		models.CreateUser(context.Background(), db, email, "", "correct horse battery")
		var login struct{ Login sessionOut }
		a.ok(`mutation($e: String!) { login(email: $e, password: "correct horse battery") { accessToken refreshToken } }`, &login, client.Var("e", email), anonymous())
		a.refused("UNAUTHENTICATED", "", `mutation($e: String!) { login(email: $e, password: "wrong password!") { accessToken } }`, client.Var("e", email), anonymous())
		a.refused("UNAUTHENTICATED", "", `mutation { login(email: "nobody@example.com", password: "whatever123") { accessToken } }`, anonymous())

		refresh := `mutation($r: String!) { refreshToken(refreshToken: $r) { accessToken refreshToken } }`
		var next struct{ RefreshToken sessionOut }
		a.ok(refresh, &next, client.Var("r", login.Login.RefreshToken), anonymous())
		if !a.acceptsToken(next.RefreshToken.AccessToken) || next.RefreshToken.RefreshToken == login.Login.RefreshToken {
			t.Fatal("refresh did not hand out a working new session")
		}
		// Reusing the replaced token is theft: it is refused and the family revoked.
		a.refused("UNAUTHENTICATED", "", refresh, client.Var("r", login.Login.RefreshToken), anonymous())
		a.refused("UNAUTHENTICATED", "", refresh, client.Var("r", next.RefreshToken.RefreshToken), anonymous())

		var again struct{ Login sessionOut }
		a.ok(`mutation($e: String!) { login(email: $e, password: "correct horse battery") { refreshToken } }`, &again, client.Var("e", email), anonymous())
		a.ok(`mutation($r: String!) { logout(refreshToken: $r) }`, &map[string]any{}, client.Var("r", again.Login.RefreshToken), anonymous())
		a.refused("UNAUTHENTICATED", "", refresh, client.Var("r", again.Login.RefreshToken), anonymous())
		a.refused("UNAUTHENTICATED", "", refresh, client.Var("r", "rt_made_up"), anonymous())
	})
}

func TestMembersAndLastOwner(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *gorm.DB) {
		a := newAPI(t, db)
		appID, _ := a.createApp("Team")
		ownerID, _ := a.tokenUser(a.ownerToken)
		a.refused("CONFLICT", "", `mutation($a: ID!, $u: ID!) { removeMember(appId: $a, userId: $u) }`, client.Var("a", appID), client.Var("u", models.FormatID(ownerID)))
		a.refused("CONFLICT", "", `mutation($a: ID!, $u: ID!) { setMemberRole(appId: $a, userId: $u, role: viewer) { role } }`, client.Var("a", appID), client.Var("u", models.FormatID(ownerID)))

		var invite struct {
			AddMember struct{ InvitationToken string }
		}
		a.ok(`mutation($a: ID!) { addMember(appId: $a, email: "new.owner@example.com", role: owner) { invitationToken } }`, &invite, client.Var("a", appID))
		var accepted struct{ AcceptInvitation sessionOut }
		a.ok(`mutation($t: String!) { acceptInvitation(token: $t, name: "New", password: "another good password") { accessToken } }`, &accepted, client.Var("t", invite.AddMember.InvitationToken), anonymous())
		a.refused("UNAUTHENTICATED", "", `mutation($t: String!) { acceptInvitation(token: $t, password: "another good password") { accessToken } }`, client.Var("t", invite.AddMember.InvitationToken), anonymous())
		var members struct{ Members []struct{ Role string } }
		a.ok(`query($a: ID!) { members(appId: $a) { role } }`, &members, client.Var("a", appID), as(accepted.AcceptInvitation.AccessToken))
		if len(members.Members) != 2 {
			t.Fatalf("members %+v", members)
		}
		// With a second owner, the first may leave.
		var removed struct{ RemoveMember bool }
		a.ok(`mutation($a: ID!, $u: ID!) { removeMember(appId: $a, userId: $u) }`, &removed, client.Var("a", appID), client.Var("u", models.FormatID(ownerID)))
		a.refused("NOT_FOUND", "", `query($a: ID!) { app(id: $a) { id } }`, client.Var("a", appID))
		a.refused("BAD_USER_INPUT", "email", `mutation($a: ID!) { addMember(appId: $a, email: "bad", role: viewer) { invitationToken } }`, client.Var("a", appID), as(accepted.AcceptInvitation.AccessToken))
	})
}

func TestSecretKeyAccess(t *testing.T) {
	a := newAPI(t, modelstest.SQLite(t))
	appID, secret := a.createApp("Keyed")
	key := as(secret)
	var defs struct {
		App struct{ EventDefinitions []struct{ Code string } }
	}
	a.ok(`query($a: ID!) { app(id: $a) { eventDefinitions(enabled: true) { code } } }`, &defs, client.Var("a", appID), key)
	if len(defs.App.EventDefinitions) != 3 {
		t.Fatalf("definitions with the secret key: %+v", defs)
	}
	var check struct{ CheckAppKey struct{ AppName string } }
	a.ok(`query($a: ID!) { checkAppKey(appId: $a) { appName } }`, &check, client.Var("a", appID), key)
	if check.CheckAppKey.AppName != "Keyed" {
		t.Fatalf("checkAppKey %+v", check)
	}
	a.refused("FORBIDDEN", "", `query($a: ID!) { members(appId: $a) { role } }`, client.Var("a", appID), key)
	a.refused("UNAUTHENTICATED", "", `mutation($a: ID!) { rotateAppSecret(id: $a) { secretKey } }`, client.Var("a", appID), key)
	a.refused("UNAUTHENTICATED", "", `{ apps { id } }`, key)
	otherApp, _ := a.createApp("Other")
	a.refused("UNAUTHENTICATED", "", `query($a: ID!) { app(id: $a) { id } }`, client.Var("a", otherApp), key)

	items := make([]map[string]any, 21)
	for i := range items {
		items[i] = map[string]any{"appId": appID, "deviceId": "d", "code": "view"}
	}
	batch := `mutation($in: [TriggerInput!]!) { triggerBatch(inputs: $in) { accepted error { code field } } }`
	var out struct {
		TriggerBatch []struct {
			Accepted bool
			Error    *struct{ Code, Field string }
		}
	}
	// A limit that only the key lifts is bad input, like a backdated occurredAt.
	a.ok(batch, &out, client.Var("in", items), anonymous())
	if out.TriggerBatch[0].Accepted || out.TriggerBatch[0].Error.Code != "BAD_USER_INPUT" || out.TriggerBatch[0].Error.Field != "inputs" {
		t.Fatalf("a large browser batch was not refused: %+v", out.TriggerBatch[0])
	}
	a.ok(batch, &out, client.Var("in", items), key)
	if !out.TriggerBatch[20].Accepted {
		t.Fatalf("a large server batch was refused: %+v", out.TriggerBatch[20])
	}
}

func TestRateLimits(t *testing.T) {
	a := newAPI(t, modelstest.SQLite(t), func(c *config) {
		c.RatePerIP = models.Rate{PerSecond: 1, Burst: 3}
		c.RatePerDevice = models.Rate{PerSecond: 1, Burst: 2}
		c.TrustedProxies, _ = parseProxies("192.0.2.0/24")
	})
	appID, secret := a.createApp("Limited")
	post := func(device, remote, forwarded string, bearer string) *http.Response {
		body, _ := json.Marshal(map[string]any{
			"query":     `mutation($in: TriggerInput!) { trigger(input: $in) { accepted } }`,
			"variables": map[string]any{"in": map[string]any{"appId": appID, "deviceId": device, "code": "view"}},
		})
		req := httptest.NewRequest(http.MethodPost, "/graphql", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.RemoteAddr = remote
		if forwarded != "" {
			req.Header.Set("X-Forwarded-For", forwarded)
		}
		if bearer != "" {
			req.Header.Set("Authorization", "Bearer "+bearer)
		}
		rec := httptest.NewRecorder()
		a.handler.ServeHTTP(rec, req)
		return rec.Result()
	}
	code := func(r *http.Response) string {
		var out struct {
			Errors []gqlError
		}
		json.NewDecoder(r.Body).Decode(&out)
		if len(out.Errors) == 0 {
			return ""
		}
		return out.Errors[0].Extensions.Code
	}
	// Per device: a burst of 2.
	for i := range 2 {
		if r := post("phone", "198.51.100.1:1000", "", ""); r.StatusCode != 200 {
			t.Fatalf("trigger %d refused: %d", i, r.StatusCode)
		}
	}
	r := post("phone", "198.51.100.1:1000", "", "")
	if r.StatusCode != http.StatusTooManyRequests || r.Header.Get("Retry-After") == "" || code(r) != "RATE_LIMITED" {
		t.Fatalf("third trigger of one device: %d %q", r.StatusCode, r.Header.Get("Retry-After"))
	}
	// Per IP: a burst of 3 over devices; the first IP has used 3 tokens already.
	if r := post("laptop", "198.51.100.1:1000", "", ""); r.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("fourth trigger of one IP: %d", r.StatusCode)
	}
	// X-Forwarded-For counts only from a trusted proxy.
	if r := post("tablet", "198.51.100.1:1000", "203.0.113.9", ""); r.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("an untrusted peer escaped its limit with X-Forwarded-For: %d", r.StatusCode)
	}
	if r := post("tablet", "192.0.2.10:1000", "203.0.113.9", ""); r.StatusCode != 200 {
		t.Fatalf("a client behind the trusted proxy was limited: %d", r.StatusCode)
	}
	// Servers with the secret key are not limited per IP.
	if r := post("server-device", "198.51.100.1:1000", "", secret); r.StatusCode != 200 {
		t.Fatalf("a server trigger was limited per IP: %d", r.StatusCode)
	}
}

func TestQueryLimits(t *testing.T) {
	a := newAPI(t, modelstest.SQLite(t), func(c *config) { c.MaxDepth = 6; c.MaxComplexity = 300 })
	srv := httptest.NewServer(a.handler)
	defer srv.Close()
	post := func(query string) (int, string) {
		body, _ := json.Marshal(map[string]any{"query": query})
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/graphql", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+a.ownerToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	deep := `{ apps { eventDefinitions { id } } lead(id: "1") { devices { lead { devices { lead { devices { id } } } } } } }`
	if status, body := post(deep); status/100 != 4 || !strings.Contains(body, "COMPLEXITY_LIMIT_EXCEEDED") {
		t.Fatalf("deep query: %d %s", status, body)
	}
	var aliases strings.Builder
	aliases.WriteString("{")
	for i := range 400 {
		fmt.Fprintf(&aliases, " a%d: me { id }", i)
	}
	aliases.WriteString(" }")
	if status, body := post(aliases.String()); status/100 != 4 || !strings.Contains(body, "COMPLEXITY_LIMIT_EXCEEDED") {
		t.Fatalf("aliased query: %d %.200s", status, body)
	}
	if status, body := post(`{ lead(id: "1") { timeline(first: 500) { edges { node { id code url } } } } }`); status/100 != 4 || !strings.Contains(body, "COMPLEXITY_LIMIT_EXCEEDED") {
		t.Fatalf("large page: %d %.200s", status, body)
	}
	if _, body := post(`{ apps { nam } }`); strings.Contains(body, "Did you mean") {
		t.Fatalf("suggestions in production: %s", body)
	}
	if status, body := post(`{ apps { id } }`); status != 200 || strings.Contains(body, "errors") {
		t.Fatalf("small query: %d %s", status, body)
	}
}

func TestProductionNeedsSigningSecret(t *testing.T) {
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	base := map[string]string{"CRUMBS_ENV": "production", "CRUMBS_ADDR": "127.0.0.1:0", "CRUMBS_DATABASE_URL": "sqlite:" + filepath.Join(t.TempDir(), "c.db")}
	err := run(context.Background(), nil, env(base), strings.NewReader(""), io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "CRUMBS_JWT_SECRET") {
		t.Fatalf("production without a secret: %v", err)
	}
	base["CRUMBS_JWT_SECRET"] = "too-short"
	if err := run(context.Background(), nil, env(base), strings.NewReader(""), io.Discard, io.Discard); err == nil || !strings.Contains(err.Error(), "256") {
		t.Fatalf("production with a short secret: %v", err)
	}
}

func TestAdminCreate(t *testing.T) {
	dbURL := "sqlite:" + filepath.Join(t.TempDir(), "admin.db")
	env := func(k string) string { return map[string]string{"CRUMBS_DATABASE_URL": dbURL}[k] }
	var out bytes.Buffer
	err := run(context.Background(), []string{"admin", "create", "-email", "Admin@Example.com", "-name", "Admin"}, env, strings.NewReader("a long enough password\n"), &out, io.Discard)
	if err != nil || !strings.Contains(out.String(), "created user Admin@Example.com") {
		t.Fatalf("admin create: %v %q", err, out.String())
	}
	err = run(context.Background(), []string{"admin", "create", "-email", "admin@example.com"}, env, strings.NewReader("a long enough password\n"), io.Discard, io.Discard)
	if err == nil {
		t.Fatal("a second user with the same email was created")
	}
	err = run(context.Background(), []string{"admin", "create", "-email", "short@example.com"}, env, strings.NewReader("short\n"), io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "password") {
		t.Fatalf("a short password: %v", err)
	}
	db, _ := models.Open(context.Background(), dbURL, models.DBOptions{})
	if _, err := models.Authenticate(context.Background(), db, "admin@example.com", "a long enough password"); err != nil {
		t.Fatalf("the created admin cannot sign in: %v", err)
	}
}
