package graph

import (
	"context"
	"encoding/base64"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/handler/transport"
	"github.com/crumbs-dev/crumbs/models"
	"github.com/vektah/gqlparser/v2/ast"
	"gorm.io/gorm"
)

// liveRecheck is how long a websocket trusts its credential and the access
// decisions made with it: every second the credential is verified again
// (expiry, a rotated secret key) and roles are read afresh.
const liveRecheck = time.Second

// initTimeout is how long a websocket may stay open before its
// connection_init is acknowledged.
var initTimeout = 10 * time.Second

// wsSession is one websocket connection: the credential it presented, and
// the connection, to close it with a protocol code when access ends.
type wsSession struct {
	tokens *models.Tokens
	db     *gorm.DB
	log    *slog.Logger

	mu        sync.Mutex
	conn      *wsConn
	auth      string
	viewer    models.Viewer
	checkedAt time.Time
}

type wsSessionKey struct{}

func wsSessionFrom(ctx context.Context) *wsSession {
	s, _ := ctx.Value(wsSessionKey{}).(*wsSession)
	return s
}

// start records the credential of connection_init (or, without one, the
// upgrade request's Authorization header) and returns its viewer.
func (s *wsSession) start(auth string) models.Viewer {
	s.mu.Lock()
	defer s.mu.Unlock()
	if auth != "" {
		s.auth = auth
	}
	s.viewer, s.checkedAt = viewerFor(context.Background(), s.db, s.auth, s.tokens).Fresh(), time.Now()
	return s.viewer
}

// current returns the connection's viewer, verifying its credential again
// when the last verification is older than liveRecheck. The viewer comes
// with an empty cache of access decisions, so roles are read afresh too.
func (s *wsSession) current() models.Viewer {
	s.mu.Lock()
	defer s.mu.Unlock()
	if time.Since(s.checkedAt) >= liveRecheck {
		s.viewer, s.checkedAt = viewerFor(context.Background(), s.db, s.auth, s.tokens).Fresh(), time.Now()
	}
	return s.viewer
}

// refuse closes the connection because err ended its access: 4401 when the
// credential no longer holds (expired token, rotated key), 4403 when the
// viewer lost the app (removed from it). A store failure closes with 1011,
// so the client reconnects.
func (s *wsSession) refuse(ctx context.Context, err error) {
	code, reason := closeInternalError, "internal error"
	switch {
	case errors.Is(err, models.ErrUnauthenticated):
		code, reason = closeUnauthorized, "Unauthorized: "+err.Error()
	case errors.Is(err, models.ErrForbidden), errors.Is(err, models.ErrNotFound):
		code, reason = closeForbidden, "Forbidden: "+err.Error()
	case models.IsStoreFault(err):
		s.log.ErrorContext(ctx, models.MsgStoreUnavailable, "in", "subscription access check", "err", err)
	default:
		s.log.ErrorContext(ctx, "subscription access check failed", "err", err)
	}
	s.mu.Lock()
	conn := s.conn
	s.mu.Unlock()
	if conn != nil {
		conn.closeWith(code, closeReason(reason))
	}
}

// guardStream delivers a subscription's events only while the subscriber
// may read them: before each delivery the event goes through
// models.Authorize with the connection's current viewer. When access has
// ended the websocket is closed (4401/4403) and the stream stops.
func guardStream(ctx context.Context, db *gorm.DB, in <-chan *models.Event, fields func() []string) <-chan *models.Event {
	out := make(chan *models.Event)
	s := wsSessionFrom(ctx)
	go func() {
		defer close(out)
		for {
			var ev *models.Event
			select {
			case <-ctx.Done():
				return
			case e, ok := <-in:
				if !ok {
					return
				}
				ev = e
			}
			v := models.ViewerFrom(ctx)
			if s != nil {
				v = s.current()
			}
			if err := models.Authorize(ctx, db, v, ev, fields); err != nil {
				if s != nil {
					// The stream stays open until the connection is gone, so
					// no "complete" races ahead of the close frame.
					s.refuse(ctx, err)
					<-ctx.Done()
				}
				return
			}
			select {
			case out <- ev:
			case <-ctx.Done():
				return
			}
		}
	}()
	return out
}

// websocketInit reads the credential of connection_init: browsers cannot set
// headers on a websocket, so {"Authorization": "Bearer <token>"} comes in
// the payload. A credential that does not hold closes the connection with
// 4401. The acknowledgement carries no payload: the init payload holds the
// access token and is never echoed.
func websocketInit(tokens *models.Tokens, db *gorm.DB) transport.WebsocketInitFunc {
	return func(ctx context.Context, payload transport.InitPayload) (context.Context, *transport.InitPayload, error) {
		var v models.Viewer
		if s := wsSessionFrom(ctx); s != nil {
			v = s.start(payload.Authorization())
		} else {
			v = viewerFor(ctx, db, payload.Authorization(), tokens)
		}
		if v.Err != nil {
			ctx = transport.WithWebsocketCloseCode(ctx, closeUnauthorized)
			ctx = transport.AppendCloseReason(ctx, closeReason("Unauthorized: "+v.Err.Error()))
			return ctx, nil, v.Err
		}
		return models.WithViewer(ctx, v), nil, nil
	}
}

// freshPerEvent gives every operation on a websocket the connection's
// current viewer, and every event of a subscription its own dataloaders and
// a viewer verified within liveRecheck. A subscription lives as long as its
// websocket: the upgrade request's loaders would cache devices, leads and
// definitions for all that time, and its viewer would keep a removed
// member's role or an expired token.
func freshPerEvent(db *gorm.DB) graphql.ResponseMiddleware {
	return func(ctx context.Context, next graphql.ResponseHandler) *graphql.Response {
		// Errors found before an operation exists come without one.
		if !graphql.HasOperationContext(ctx) {
			return next(ctx)
		}
		if oc := graphql.GetOperationContext(ctx); oc.Operation != nil && oc.Operation.Operation == ast.Subscription {
			ctx = context.WithValue(ctx, loadersKey{}, newLoaders(db))
			if s := wsSessionFrom(ctx); s != nil {
				ctx = models.WithViewer(ctx, s.current())
			}
		}
		return next(ctx)
	}
}

// currentViewerPerOperation starts every operation sent over a websocket with
// the connection's current viewer; one whose credential no longer holds
// closes the connection with 4401, so the client signs in again.
func currentViewerPerOperation(ctx context.Context, next graphql.OperationHandler) graphql.ResponseHandler {
	s := wsSessionFrom(ctx)
	if s == nil {
		return next(ctx)
	}
	v := s.current()
	if v.Err != nil {
		s.refuse(ctx, v.Err)
		return graphql.OneShot(graphql.ErrorResponse(ctx, "%s", v.Err.Error()))
	}
	return next(models.WithViewer(ctx, v))
}

// websocketUpgrades admits a websocket handshake from the server's own
// origin, from the configured dashboard origins, and from clients that send
// no Origin (servers, tools); browsers on other sites get 403. It gives the
// connection its wsSession. Any other request is served as what it is, even
// if it carries an Upgrade header (RFC 9110 lets a server ignore one):
// gqlgen's websocket transport would take it for a handshake.
func websocketUpgrades(tokens *models.Tokens, db *gorm.DB, log *slog.Logger, origins []string, next http.Handler) http.Handler {
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
		s := &wsSession{tokens: tokens, db: db, log: log, auth: r.Header.Get("Authorization")}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), wsSessionKey{}, s)))
	})
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
