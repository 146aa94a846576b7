package graph

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/handler/transport"
	"github.com/coder/websocket"
	"github.com/crumbs-dev/crumbs/models"
	"github.com/vektah/gqlparser/v2/ast"
	"gorm.io/gorm"
)

// Close codes of the graphql-transport-ws protocol
// (github.com/enisdenjo/graphql-ws, PROTOCOL.md).
const (
	closeInternalError      = 1011
	closeInvalidMessage     = 4400
	closeUnauthorized       = 4401
	closeForbidden          = 4403
	closeInitTimeout        = 4408
	closeSubscriberExists   = 4409
	closeTooManyInitRequest = 4429
)

// liveRecheck is how long a websocket trusts its credential and the access
// decisions made with it: every second the credential is verified again
// (expiry, a rotated secret key) and roles are read afresh.
const liveRecheck = time.Second

// initTimeout is how long a client may take to send connection_init.
var initTimeout = 10 * time.Second

// wsSession is one websocket connection: the credential it presented, and
// the connection, to close it with a protocol code when access ends.
type wsSession struct {
	tokens *models.Tokens
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
	s.viewer, s.checkedAt = viewerFor(s.auth, s.tokens).Fresh(), time.Now()
	return s.viewer
}

// current returns the connection's viewer, verifying its credential again
// when the last verification is older than liveRecheck. The viewer comes
// with an empty cache of access decisions, so roles are read afresh too.
func (s *wsSession) current() models.Viewer {
	s.mu.Lock()
	defer s.mu.Unlock()
	if time.Since(s.checkedAt) >= liveRecheck {
		s.viewer, s.checkedAt = viewerFor(s.auth, s.tokens).Fresh(), time.Now()
	}
	return s.viewer
}

// refuse closes the connection because err ended its access: 4401 when the
// credential no longer holds (expired token, rotated key), 4403 when the
// viewer lost the app (removed, or a lower role).
func (s *wsSession) refuse(ctx context.Context, err error) {
	code, reason := closeInternalError, "internal error"
	switch {
	case errors.Is(err, models.ErrUnauthenticated):
		code, reason = closeUnauthorized, "Unauthorized: "+err.Error()
	case errors.Is(err, models.ErrForbidden), errors.Is(err, models.ErrNotFound):
		code, reason = closeForbidden, "Forbidden: "+err.Error()
	default:
		s.log.ErrorContext(ctx, "subscription access check failed", "err", err)
	}
	s.mu.Lock()
	conn := s.conn
	s.mu.Unlock()
	if conn != nil {
		conn.closeWith(code, reason)
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
func websocketInit(tokens *models.Tokens) transport.WebsocketInitFunc {
	return func(ctx context.Context, payload transport.InitPayload) (context.Context, *transport.InitPayload, error) {
		var v models.Viewer
		if s := wsSessionFrom(ctx); s != nil {
			v = s.start(payload.Authorization())
		} else {
			v = viewerFor(payload.Authorization(), tokens)
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
		if oc := graphql.GetOperationContext(ctx); oc != nil && oc.Operation != nil && oc.Operation.Operation == ast.Subscription {
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

// websocketUpgrades admits a websocket upgrade from the server's own origin,
// from the configured dashboard origins, and from clients that send no
// Origin (servers, tools); browsers on other sites get 403. It gives the
// connection its wsSession.
func websocketUpgrades(tokens *models.Tokens, log *slog.Logger, origins []string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// The same test as gqlgen's websocket transport: any Upgrade header.
		if r.Header.Get("Upgrade") == "" {
			next.ServeHTTP(w, r)
			return
		}
		if !websocketOriginAllowed(r, origins) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusForbidden)
			w.Write([]byte(`{"errors":[{"message":"websocket connections from this origin are not allowed; see CRUMBS_DASHBOARD_ORIGINS","extensions":{"code":"FORBIDDEN"}}]}` + "\n"))
			return
		}
		s := &wsSession{tokens: tokens, log: log, auth: r.Header.Get("Authorization")}
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

// wsImplementation accepts websockets with coder/websocket (the origin was
// checked by websocketUpgrades) and wraps them in wsConn.
type wsImplementation struct{}

func (wsImplementation) Accept(w http.ResponseWriter, r *http.Request, opts transport.WebsocketAcceptOptions) (transport.WebsocketConn, error) {
	coder := transport.CoderWebsocketImplementation{AcceptOptions: websocket.AcceptOptions{InsecureSkipVerify: true}}
	inner, err := coder.Accept(w, r, opts)
	if err != nil {
		return nil, err
	}
	c := &wsConn{WebsocketConn: inner, transportWS: inner.Subprotocol() == "graphql-transport-ws", active: map[string]bool{}}
	if c.transportWS {
		c.mu.Lock()
		c.initTimer = time.AfterFunc(initTimeout, func() { c.closeWith(closeInitTimeout, "Connection initialisation timeout") })
		c.mu.Unlock()
	}
	if s := wsSessionFrom(r.Context()); s != nil {
		s.mu.Lock()
		s.conn = c
		s.mu.Unlock()
	}
	return c, nil
}

// wsConn enforces the graphql-transport-ws rules that gqlgen's transport
// leaves out, closing with the protocol's codes: a second connection_init
// (4429), a subscribe before connection_init (4401), a subscribe whose id is
// still active (4409), a message that is not one of the protocol's (4400),
// no connection_init in time (4408).
type wsConn struct {
	transport.WebsocketConn
	transportWS bool

	mu        sync.Mutex
	initTimer *time.Timer
	inited    bool
	closed    bool
	active    map[string]bool
}

type wsMessage struct {
	Type string `json:"type"`
	ID   string `json:"id"`
}

func (c *wsConn) NextReader() (int, io.Reader, error) {
	typ, r, err := c.WebsocketConn.NextReader()
	if err != nil || !c.transportWS {
		return typ, r, err
	}
	data, err := io.ReadAll(r)
	if err != nil {
		return typ, nil, err
	}
	var msg wsMessage
	if json.Unmarshal(data, &msg) != nil {
		return c.refuse(closeInvalidMessage, "Invalid message received")
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	switch msg.Type {
	case "connection_init":
		if c.inited {
			return c.refuseLocked(closeTooManyInitRequest, "Too many initialisation requests")
		}
		c.inited = true
		c.initTimer.Stop()
	case "subscribe":
		switch {
		case !c.inited:
			return c.refuseLocked(closeUnauthorized, "Unauthorized")
		case msg.ID == "":
			return c.refuseLocked(closeInvalidMessage, "Invalid message received: subscribe without id")
		case c.active[msg.ID]:
			return c.refuseLocked(closeSubscriberExists, closeReason("Subscriber for "+msg.ID+" already exists"))
		}
		c.active[msg.ID] = true
	case "complete":
		delete(c.active, msg.ID)
	case "ping", "pong":
	default:
		return c.refuseLocked(closeInvalidMessage, "Invalid message received")
	}
	return typ, bytes.NewReader(data), nil
}

// WriteJSON notes which subscriptions the server has ended, so their ids
// may be used again.
func (c *wsConn) WriteJSON(v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if c.transportWS {
		var msg wsMessage
		if json.Unmarshal(data, &msg) == nil && (msg.Type == "complete" || msg.Type == "error") {
			c.mu.Lock()
			delete(c.active, msg.ID)
			c.mu.Unlock()
		}
	}
	return c.WebsocketConn.WriteJSON(json.RawMessage(data))
}

// WriteClose closes with gqlgen's code unless the connection is already
// closing with one of ours.
func (c *wsConn) WriteClose(code int, reason string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil
	}
	c.closed = true
	return c.WebsocketConn.WriteClose(code, reason)
}

func (c *wsConn) closeWith(code int, reason string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closeLocked(code, reason)
}

func (c *wsConn) closeLocked(code int, reason string) {
	if c.closed {
		return
	}
	c.closed = true
	if c.initTimer != nil {
		c.initTimer.Stop()
	}
	c.WebsocketConn.WriteClose(code, reason)
}

func (c *wsConn) refuse(code int, reason string) (int, io.Reader, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.refuseLocked(code, reason)
}

// refuseLocked closes the connection and tells gqlgen's read loop it ended.
func (c *wsConn) refuseLocked(code int, reason string) (int, io.Reader, error) {
	c.closeLocked(code, reason)
	return 0, nil, transport.ErrWebsocketClosed
}

// SetReadLimit and SetReadDeadline pass gqlgen's limits to the connection.
func (c *wsConn) SetReadLimit(limit int64) {
	if l, ok := c.WebsocketConn.(transport.WebsocketReadLimiter); ok {
		l.SetReadLimit(limit)
	}
}

func (c *wsConn) SetReadDeadline(t time.Time) error {
	if d, ok := c.WebsocketConn.(transport.WebsocketReadDeadliner); ok {
		return d.SetReadDeadline(t)
	}
	return nil
}

// closeReason fits a close reason into a control frame (123 bytes).
func closeReason(s string) string {
	if len(s) <= 123 {
		return s
	}
	return strings.ToValidUTF8(s[:119], "") + "…"
}
