package dashboard

import (
	"bytes"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// CookieName is the HttpOnly cookie that holds the dashboard's refresh token.
// Its path is VaultPath, so the browser sends it nowhere else (not even to
// /graphql), and script on the page can never read it.
const CookieName = "crumbs_refresh"

// VaultPath is where the token vault's endpoints live.
const VaultPath = "/dashboard/auth/"

// Vault keeps the refresh token out of reach of the page's script. It is a
// thin relay to the public GraphQL API: each endpoint runs one mutation
// (login, refreshToken, logout, acceptInvitation) through the same handler
// that serves /graphql, so rate limits, the client IP and errors are the
// API's own, then moves the refresh token between the answer and the cookie.
// The page receives only the user and the access token, which it keeps in
// memory.
//
//	POST /dashboard/auth/login       {"email","password"}
//	POST /dashboard/auth/accept      {"token","name","password"}   (invitation)
//	POST /dashboard/auth/refresh     {}   cookie → new session, new cookie
//	POST /dashboard/auth/logout      {}   ends the sign-in, clears the cookie
//
// Each answers {"data":{"user","accessToken","accessTokenExpiresAt"}} or the
// API's {"errors":[...]} with its status. Requests must be JSON and, when the
// browser sends an Origin, from the server's own origin (the cookie is also
// SameSite=Strict).
type Vault struct {
	// API is the /graphql handler with its middleware.
	API http.Handler
}

const sessionFields = `{ user { id email name } accessToken accessTokenExpiresAt refreshToken refreshTokenExpiresAt }`

func (v *Vault) register(mux *http.ServeMux) {
	mux.HandleFunc("POST "+VaultPath+"login", v.relay("login",
		`mutation($email: String!, $password: String!) { s: login(email: $email, password: $password) `+sessionFields+` }`))
	mux.HandleFunc("POST "+VaultPath+"accept", v.relay("accept",
		`mutation($token: String!, $name: String, $password: String!) { s: acceptInvitation(token: $token, name: $name, password: $password) `+sessionFields+` }`))
	mux.HandleFunc("POST "+VaultPath+"refresh", v.relay("refresh",
		`mutation($refreshToken: String!) { s: refreshToken(refreshToken: $refreshToken) `+sessionFields+` }`))
	mux.HandleFunc("POST "+VaultPath+"logout", v.relay("logout",
		`mutation($refreshToken: String!) { s: logout(refreshToken: $refreshToken) }`))
}

type gqlAnswer struct {
	Data struct {
		S json.RawMessage `json:"s"`
	} `json:"data"`
	Errors json.RawMessage `json:"errors"`
}

type session struct {
	User                  json.RawMessage `json:"user"`
	AccessToken           string          `json:"accessToken"`
	AccessTokenExpiresAt  string          `json:"accessTokenExpiresAt"`
	RefreshToken          string          `json:"refreshToken"`
	RefreshTokenExpiresAt time.Time       `json:"refreshTokenExpiresAt"`
}

func (v *Vault) relay(op, query string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		securityHeaders(w.Header())
		w.Header().Set("Cache-Control", "no-store")
		if msg := sameOrigin(r); msg != "" {
			writeError(w, http.StatusForbidden, "FORBIDDEN", msg)
			return
		}
		vars := map[string]any{}
		if err := json.NewDecoder(io.LimitReader(r.Body, 64<<10)).Decode(&vars); err != nil && err != io.EOF {
			writeError(w, http.StatusBadRequest, "BAD_REQUEST", "the body must be a JSON object")
			return
		}
		if op == "refresh" || op == "logout" {
			c, err := r.Cookie(CookieName)
			if err != nil || c.Value == "" {
				if op == "logout" {
					writeJSON(w, http.StatusOK, map[string]any{"data": nil})
					return
				}
				writeError(w, http.StatusUnauthorized, "UNAUTHENTICATED", "not signed in")
				return
			}
			vars = map[string]any{"refreshToken": c.Value}
		}
		status, header, ans := v.call(r, query, vars)
		if op == "logout" && len(ans.Errors) == 0 {
			// Ended now, or already (the mutation takes an unknown token).
			clearCookie(w, r)
			writeJSON(w, http.StatusOK, map[string]any{"data": nil})
			return
		}
		// A logout the store failed keeps the cookie and answers the error
		// (503, Retry-After): the sign-in still holds on the server, and
		// the page sends the sign-out again instead of forgetting it.
		var s session
		if op == "logout" || len(ans.Errors) > 0 || json.Unmarshal(ans.Data.S, &s) != nil || s.RefreshToken == "" {
			if op == "refresh" {
				clearCookie(w, r)
			}
			if ra := header.Get("Retry-After"); ra != "" {
				w.Header().Set("Retry-After", ra)
			}
			if status < 400 {
				status = statusOf(ans.Errors)
			}
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(status)
			json.NewEncoder(w).Encode(map[string]any{"errors": ans.Errors})
			return
		}
		http.SetCookie(w, &http.Cookie{
			Name: CookieName, Value: s.RefreshToken, Path: VaultPath, Expires: s.RefreshTokenExpiresAt,
			HttpOnly: true, Secure: secure(r), SameSite: http.SameSiteStrictMode,
		})
		writeJSON(w, http.StatusOK, map[string]any{"data": map[string]any{
			"user": s.User, "accessToken": s.AccessToken, "accessTokenExpiresAt": s.AccessTokenExpiresAt,
		}})
	}
}

// call runs one GraphQL operation through the API handler as part of r: the
// same remote address and forwarding headers, none of r's credentials.
func (v *Vault) call(r *http.Request, query string, vars map[string]any) (int, http.Header, gqlAnswer) {
	body, _ := json.Marshal(map[string]any{"query": query, "variables": vars})
	in := r.Clone(r.Context())
	in.URL = &url.URL{Path: "/graphql"}
	in.RequestURI = "/graphql"
	in.Body = io.NopCloser(bytes.NewReader(body))
	in.ContentLength = int64(len(body))
	in.Header = r.Header.Clone()
	in.Header.Del("Cookie")
	in.Header.Del("Authorization")
	in.Header.Del("Origin")
	in.Header.Del("Accept-Encoding") // the answer is read here, not passed on
	in.Header.Set("Content-Type", "application/json")
	in.Header.Set("Accept", "application/json")
	rec := &recorder{header: http.Header{}, status: http.StatusOK}
	v.API.ServeHTTP(rec, in)
	var ans gqlAnswer
	if err := json.Unmarshal(rec.body.Bytes(), &ans); err != nil {
		ans.Errors = json.RawMessage(`[{"message":"the API gave no answer","extensions":{"code":"INTERNAL_SERVER_ERROR"}}]`)
		if rec.status < 500 {
			rec.status = http.StatusBadGateway
		}
	}
	return rec.status, rec.header, ans
}

// sameOrigin refuses cross-site calls: a JSON content type (so a plain HTML
// form cannot post here) and, when the browser names one, the server's own
// origin.
func sameOrigin(r *http.Request) string {
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		return "send Content-Type: application/json"
	}
	origin := r.Header.Get("Origin")
	if origin == "" {
		return ""
	}
	u, err := url.Parse(origin)
	if err != nil || !strings.EqualFold(u.Host, r.Host) {
		return "the token vault answers only the dashboard's own origin"
	}
	return ""
}

// secure is true unless the request came over plain HTTP to a loopback
// address (go run ./server on a laptop), where a Secure cookie would not be
// stored by every browser. Behind a TLS proxy, X-Forwarded-Proto says https.
func secure(r *http.Request) bool {
	if r.TLS != nil || strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https") {
		return true
	}
	host, _, err := net.SplitHostPort(r.Host)
	if err != nil {
		host = r.Host
	}
	if host == "localhost" {
		return false
	}
	ip := net.ParseIP(strings.Trim(host, "[]"))
	return ip == nil || !ip.IsLoopback()
}

// statusOf gives a failed relay the HTTP status of its error's code, which
// GraphQL answers with 200.
func statusOf(errors json.RawMessage) int {
	var errs []struct {
		Extensions struct{ Code string } `json:"extensions"`
	}
	json.Unmarshal(errors, &errs)
	if len(errs) == 0 {
		return http.StatusBadGateway
	}
	switch errs[0].Extensions.Code {
	case "UNAUTHENTICATED":
		return http.StatusUnauthorized
	case "FORBIDDEN":
		return http.StatusForbidden
	case "RATE_LIMITED":
		return http.StatusTooManyRequests
	case "UNAVAILABLE":
		return http.StatusServiceUnavailable
	case "INTERNAL_SERVER_ERROR":
		return http.StatusInternalServerError
	}
	return http.StatusUnprocessableEntity
}

func clearCookie(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, &http.Cookie{
		Name: CookieName, Value: "", Path: VaultPath, MaxAge: -1,
		HttpOnly: true, Secure: secure(r), SameSite: http.SameSiteStrictMode,
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, map[string]any{"errors": []any{map[string]any{
		"message": msg, "extensions": map[string]string{"code": code},
	}}})
}

// recorder collects the API's answer to a relayed call.
type recorder struct {
	header http.Header
	status int
	body   bytes.Buffer
	wrote  bool
}

func (r *recorder) Header() http.Header { return r.header }
func (r *recorder) Write(b []byte) (int, error) {
	r.wrote = true
	return r.body.Write(b)
}
func (r *recorder) WriteHeader(status int) {
	if !r.wrote {
		r.status, r.wrote = status, true
	}
}
