package graph

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/handler/transport"
	"github.com/crumbs-dev/crumbs/models"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"
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
	places *websocketPlaces
	// budget bounds the events waiting for the connection's subscriptions.
	budget *models.LiveBudget

	mu        sync.Mutex
	conn      *wsConn
	auth      string
	viewer    models.Viewer
	checkedAt time.Time
	// placed is whether the connection holds one of places's places, for
	// the credential place ("" without one).
	placed bool
	place  string
	// pending is whether it holds a pending place for its client ip, which
	// it gives back at connection_init.
	pending bool
	ip      string
}

// enter takes a place for the connection's credential ("": none),
// reporting false when none is left, and gives back its pending place. A
// connection holds one place.
func (s *wsSession) enter(credential string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.pending {
		s.places.givePending(s.ip)
		s.pending = false
	}
	if s.placed {
		return true
	}
	if s.places == nil || !s.places.take(credential) {
		return s.places == nil
	}
	s.placed, s.place = true, credential
	return true
}

// end gives back the connection's places, once the connection has ended.
func (s *wsSession) end() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.pending {
		s.places.givePending(s.ip)
		s.pending = false
	}
	if s.placed {
		s.places.give(s.place)
		s.placed = false
	}
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

// refuse closes the connection because err ended its access (closeFor).
func (s *wsSession) refuse(ctx context.Context, err error) {
	code, reason := closeFor(ctx, s.log, "subscription access check", err)
	s.mu.Lock()
	conn := s.conn
	s.mu.Unlock()
	if conn != nil {
		conn.closeWith(code, closeReason(reason))
	}
}

// watch closes the connection (4401) within liveRecheck of its credential
// ending: an access token's sign-in ended (logout, logoutEverywhere, a
// changed password, a deleted account; on other replicas once
// CRUMBS_CACHE_TTL has passed) or its expiry, an app's secret key rotated.
// Events are checked as they come, but an idle subscription has none, and
// would hold its place and its subscriptions until the next. A check costs
// a token verification or a remembered key lookup; the store is read at
// most once per cache TTL per sign-in or key, not per connection. A lost
// role (a removed member) is not watched: that is a read of the store per
// connection and app, so it is found at the next event or operation. A
// check the store or a rate limit fails is not taken for the end of access.
func (s *wsSession) watch(ctx context.Context, writer *models.Writer) {
	t := time.NewTicker(liveRecheck)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		v := s.current()
		err := v.Err
		if err == nil && v.Secret != "" && writer != nil {
			// No client IP: the key was accepted at connection_init, so a
			// rotated one is no guess to count against the address (a
			// server's hundred sockets would rate-limit its new key).
			_, err = writer.AppForSecret(ctx, v.Secret, "")
		}
		if errors.Is(err, models.ErrUnauthenticated) {
			s.refuse(ctx, err)
			return
		}
	}
}

// closeFor is the close code and reason for err, which ended a websocket's
// access: 4401 when the credential does not hold (a bad or expired token, a
// rotated key), 4403 when the viewer lost the app (removed from it), 1013
// (try again later) when the client is rate limited, no place is left for
// its credential or the store failed (UNAVAILABLE, logged as a store
// fault). Anything else closes with 1011 and a generic reason, so the
// client reconnects; it is logged.
func closeFor(ctx context.Context, log *slog.Logger, in string, err error) (int, string) {
	switch {
	case errors.Is(err, models.ErrUnauthenticated):
		return closeUnauthorized, "Unauthorized: " + err.Error()
	case errors.Is(err, models.ErrForbidden), errors.Is(err, models.ErrNotFound):
		return closeForbidden, "Forbidden: " + err.Error()
	case errors.Is(err, models.ErrRateLimited), errors.Is(err, errAnonymousFull), errors.Is(err, errCredentialFull):
		return closeTryAgainLater, "Try again later: " + err.Error()
	case models.IsStoreFault(err):
		log.ErrorContext(ctx, models.MsgStoreUnavailable, "in", in, "err", err)
		return closeTryAgainLater, "Try again later: " + unavailableMessage
	default:
		log.ErrorContext(ctx, in+" failed", "err", err)
	}
	return closeInternalError, "internal error"
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
				e.Received()
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
// 4401: an access token must verify, a secret key must be an app's current
// key (writer.AppForSecret). A connection takes a place among those of
// its credential (a user, an app's key) or among those without one, or is
// closed with 1013 when none is left (websocketPlaces). The acknowledgement carries no payload: the init payload holds
// the access token and is never echoed.
func websocketInit(tokens *models.Tokens, db *gorm.DB, writer *models.Writer, log *slog.Logger) transport.WebsocketInitFunc {
	return func(ctx context.Context, payload transport.InitPayload) (context.Context, *transport.InitPayload, error) {
		s := wsSessionFrom(ctx)
		var v models.Viewer
		if s != nil {
			v = s.start(payload.Authorization())
		} else {
			v = viewerFor(ctx, db, payload.Authorization(), tokens)
		}
		err := v.Err
		credential := ""
		switch {
		case err != nil:
		case v.Secret != "" && writer != nil:
			var app string
			app, err = writer.AppForSecret(ctx, v.Secret, RequestInfoFrom(ctx).ClientIP)
			credential = "app:" + app
		case v.Secret != "":
			credential = "key:" + v.Secret
		case v.UserID != 0:
			credential = "user:" + models.FormatID(v.UserID)
		}
		if err == nil && s != nil && !s.enter(credential) {
			err = errAnonymousFull
			if credential != "" {
				err = errCredentialFull
			}
		}
		if err == nil && s != nil && credential != "" {
			go s.watch(ctx, writer)
		}
		if err != nil {
			code, reason := closeFor(ctx, log, "websocket connection_init", err)
			reason = closeReason(reason)
			ctx = transport.WithWebsocketCloseCode(ctx, code)
			ctx = transport.AppendCloseReason(ctx, reason)
			// gqlgen sends this text in the older protocol's connection_error.
			return ctx, nil, errors.New(reason)
		}
		if s != nil {
			ctx = models.WithLiveBudget(ctx, s.budget)
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
//
// An event whose fields the store failed to read (UNAVAILABLE) is not sent
// as an error in its place: the event would be lost to the subscriber,
// which has no way to ask for it again. The websocket closes with 1013
// (try again later) instead, so the client reconnects with its cursor and
// the event is sent again (the store-fault audit lost 32 live events so).
func freshPerEvent(db *gorm.DB) graphql.ResponseMiddleware {
	return func(ctx context.Context, next graphql.ResponseHandler) *graphql.Response {
		// Errors found before an operation exists come without one.
		if !graphql.HasOperationContext(ctx) {
			return next(ctx)
		}
		oc := graphql.GetOperationContext(ctx)
		if oc.Operation == nil || oc.Operation.Operation != ast.Subscription {
			return next(ctx)
		}
		ctx = context.WithValue(ctx, loadersKey{}, newLoaders(db))
		s := wsSessionFrom(ctx)
		if s != nil {
			ctx = models.WithViewer(ctx, s.current())
		}
		resp := next(ctx)
		if s != nil && resp != nil && storeFailed(resp.Errors) {
			s.refuse(ctx, models.ErrUnavailable)
			// The stream stays open until the connection is gone, so no
			// "complete" races ahead of the close frame.
			<-ctx.Done()
			return nil
		}
		return resp
	}
}

// storeFailed reports whether one of errs is the store's (UNAVAILABLE).
func storeFailed(errs gqlerror.List) bool {
	for _, e := range errs {
		if e.Extensions["code"] == models.CodeUnavailable {
			return true
		}
	}
	return false
}

// currentViewerPerOperation starts every operation sent over a websocket with
// the connection's current viewer and dataloaders of its own, as if it came
// in a request of its own: the upgrade request's loaders would serve what
// they read for as long as the connection lasts, and grow with every
// operation. One whose credential no longer holds closes the connection
// with 4401, so the client signs in again.
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
	ctx = context.WithValue(ctx, loadersKey{}, newLoaders(s.db))
	return next(models.WithViewer(ctx, v))
}
