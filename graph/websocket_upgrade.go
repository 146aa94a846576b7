package graph

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/crumbs-dev/crumbs/models"
	"github.com/vektah/gqlparser/v2/gqlerror"
	"gorm.io/gorm"
)

// websocketUpgrades admits a websocket handshake from the server's own
// origin, from the configured dashboard origins, and from clients that send
// no Origin (servers, tools); browsers on other sites get 403. It gives the
// connection its wsSession, once it has taken a pending place for its
// client IP (websocketPlaces): without one it is answered 429 with
// Retry-After, as a rate-limited request is, and never upgraded. Any other
// request is served as what it is, even if it carries an Upgrade header
// (RFC 9110 lets a server ignore one): gqlgen's websocket transport would
// take it for a handshake.
func websocketUpgrades(tokens *models.Tokens, db *gorm.DB, log *slog.Logger, origins []string, places *websocketPlaces, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !IsWebsocketHandshake(r) {
			if r.Header.Get("Upgrade") != "" {
				r = r.Clone(r.Context())
				r.Header.Del("Upgrade")
			}
			next.ServeHTTP(w, r)
			return
		}
		if !websocketOriginAllowed(r, origins) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusForbidden)
			w.Write([]byte(`{"errors":[{"message":"websocket connections from this origin are not allowed; see CRUMBS_DASHBOARD_ORIGINS","extensions":{"code":"FORBIDDEN"}}]}` + "\n"))
			return
		}
		ip := RequestInfoFrom(r.Context()).ClientIP
		if ip == "" {
			ip = ClientIP(r, nil)
		}
		if err := places.takePending(ip); err != nil {
			refusePending(w, err)
			return
		}
		s := &wsSession{tokens: tokens, db: db, log: log, places: places, auth: r.Header.Get("Authorization"), pending: true, ip: ip,
			budget: models.NewLiveBudget(WebsocketBufferBytes)}
		// gqlgen serves the websocket until it ends.
		defer s.end()
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), wsSessionKey{}, s)))
	})
}

// pendingRetryAfter is what a client refused a pending place is told to
// wait: places come free as other sockets are acknowledged (within
// milliseconds for a real client) or time out.
const pendingRetryAfter = time.Second

// refusePending answers an upgrade that found no pending place with 429 and
// RATE_LIMITED, as GraphQL answers a rate limit.
func refusePending(w http.ResponseWriter, err error) {
	body, _ := json.Marshal(map[string]any{"errors": gqlerror.List{{
		Message: err.Error(), Extensions: map[string]any{"code": models.CodeRateLimited},
	}}})
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Retry-After", strconv.Itoa(int(pendingRetryAfter/time.Second)))
	w.WriteHeader(http.StatusTooManyRequests)
	w.Write(append(body, '\n'))
}

func websocketOriginAllowed(r *http.Request, origins []string) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" {
		return false
	}
	if strings.EqualFold(u.Host, r.Host) {
		return true
	}
	return slices.Contains(origins, strings.ToLower(u.Scheme+"://"+u.Host))
}

// IsWebsocketHandshake reports whether r opens a websocket (RFC 6455 4.1): a
// GET over HTTP/1.1 with Connection: Upgrade, Upgrade: websocket, version 13
// and one key of 16 bytes, which is what the websocket library accepts.
// Only such a request is served as a websocket; any other request with an
// Upgrade header gets the checks and timeouts of every request.
func IsWebsocketHandshake(r *http.Request) bool {
	if r.Method != http.MethodGet || !r.ProtoAtLeast(1, 1) || r.Header.Get("Sec-WebSocket-Version") != "13" ||
		!headerHasToken(r.Header, "Connection", "upgrade") || !headerHasToken(r.Header, "Upgrade", "websocket") {
		return false
	}
	keys := r.Header.Values("Sec-WebSocket-Key")
	if len(keys) != 1 {
		return false
	}
	key, err := base64.StdEncoding.DecodeString(strings.TrimSpace(keys[0]))
	return err == nil && len(key) == 16
}

// headerHasToken reports whether one of the comma-separated values of the
// header is token, in any case.
func headerHasToken(h http.Header, name, token string) bool {
	for _, v := range h.Values(name) {
		for t := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}
