package graph

import (
	"cmp"
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/handler"
	"github.com/99designs/gqlgen/graphql/handler/extension"
	"github.com/99designs/gqlgen/graphql/handler/transport"
	"github.com/crumbs-dev/crumbs/graph/generated"
)

// HandlerOptions configure the GraphQL endpoint.
type HandlerOptions struct {
	// Development enables introspection and "did you mean" suggestions (and,
	// in the server, GraphiQL).
	Development bool
	// MaxDepth and MaxComplexity bound what one operation may ask for.
	MaxDepth      int
	MaxComplexity int
	// WebsocketOrigins are origins (https://dash.example.com) besides the
	// server's own whose browsers may open the subscription websocket.
	WebsocketOrigins []string
	// Websockets caps the websockets open at once (websocket_places.go).
	Websockets WebsocketLimits
	// WebsocketPingInterval is how often a graphql-transport-ws connection
	// is sent a ping; one that has not answered within twice that is
	// closed. 0 means DefaultWebsocketPingInterval.
	WebsocketPingInterval time.Duration
	// WebsocketWriteTimeout is how long a message may wait for a websocket's
	// client to take it before the connection is dropped; 0 means
	// DefaultWebsocketWriteTimeout.
	WebsocketWriteTimeout time.Duration
	// MaxMessageBytes bounds one websocket message as the server bounds a
	// request body (CRUMBS_MAX_BODY_BYTES); 0 leaves gqlgen's 1 MB.
	MaxMessageBytes int64
	// Documents bound the work of a document before it is sized; the zero
	// value means DefaultDocumentLimits.
	Documents DocumentLimits
	Log       *slog.Logger
	// NoFastPath sends trigger mutations through gqlgen too (see fastpath.go).
	NoFastPath bool
}

// NewHandler returns the GraphQL endpoint: websocket subscriptions, POST and GET (queries only) with
// application/json and application/graphql-response+json, a parsed-query cache
// and automatic persisted queries (bounded in bytes, cache.go), planned trigger mutations for the hot path
// (fastpath.go), and the error presenter.
func NewHandler(r *Resolver, opts HandlerOptions) http.Handler {
	log := opts.Log
	if log == nil {
		log = slog.Default()
	}
	cfg := generated.Config{Resolvers: r}
	complexity(&cfg.Complexity)
	schema := generated.NewExecutableSchema(cfg)
	srv := handler.New(schema)
	// Subscriptions (the live event stream) over graphql-transport-ws and the
	// older graphql-ws protocol (websocket.go). Browsers may connect from the
	// server's own origin and from opts.WebsocketOrigins; they cannot send
	// headers, so the access token may come in the connection_init payload.
	ws := transport.Websocket{
		Implementation: wsImplementation{writeTimeout: cmp.Or(opts.WebsocketWriteTimeout, DefaultWebsocketWriteTimeout)}, KeepAlivePingInterval: 15 * time.Second,
		PingPongInterval: cmp.Or(opts.WebsocketPingInterval, DefaultWebsocketPingInterval), InitFunc: websocketInit(r.Tokens, r.DB, r.Writer, log),
	}
	if opts.MaxMessageBytes > 0 {
		ws.PayloadReadLimit = &opts.MaxMessageBytes
	}
	srv.AddTransport(ws)
	srv.AddTransport(transport.Options{})
	srv.AddTransport(getTransport{})
	srv.AddTransport(transport.POST{})
	queries := newDocumentCache(documentCacheBytes)
	srv.SetQueryCache(queries)
	docs := opts.Documents
	if docs == (DocumentLimits{}) {
		docs = DefaultDocumentLimits
	}
	docs.Accepted = queries
	// Before APQ, which keeps the text of a query sent with its hash before
	// anything else looks at it: anonymous callers had it keep a thousand
	// documents of 2 MB that the limits refuse. So it keeps only documents
	// within them, and the text of a persisted hash was checked when kept.
	srv.Use(docs)
	srv.Use(extension.AutomaticPersistedQuery{Cache: newTextCache(persistedCacheBytes)})
	srv.SetParserTokenLimit(docs.Tokens)
	if opts.Development {
		srv.Use(extension.Introspection{})
	} else {
		srv.SetDisableSuggestion(true)
	}
	srv.Use(OperationRules{Introspection: opts.Development})
	if opts.MaxDepth > 0 {
		srv.Use(DepthLimit{Max: opts.MaxDepth})
	}
	if opts.MaxComplexity > 0 {
		srv.Use(extension.FixedComplexityLimit(opts.MaxComplexity))
	}
	srv.AroundOperations(currentViewerPerOperation)
	srv.AroundResponses(freshPerEvent(r.DB))
	srv.AroundFields(authorizeFields(r.DB))
	present := presentError(log, opts.Development)
	srv.SetErrorPresenter(present)
	srv.SetRecoverFunc(recoverPanic(log))
	h := LoaderMiddleware(r.DB, srv)
	if !opts.NoFastPath {
		h = newFastPath(r, schema.Schema(), log, present, docs, opts.MaxComplexity, opts.MaxDepth).middleware(h)
	}
	places := newWebsocketPlaces(opts.Websockets)
	return websocketUpgrades(r.Tokens, r.DB, log, opts.WebsocketOrigins, places, h)
}

// getTransport is gqlgen's GET transport, marking the request's context so
// that OperationRules can refuse a mutation the way GraphQL over HTTP asks
// (405 Method Not Allowed, Allow: POST) and with a code: gqlgen answers 406
// without extensions.code.
type getTransport struct{ transport.GET }

type overGETKey struct{}

// Do implements graphql.Transport.
func (t getTransport) Do(w http.ResponseWriter, r *http.Request, exec graphql.GraphExecutor) {
	t.GET.Do(w, r.WithContext(context.WithValue(r.Context(), overGETKey{}, true)), exec)
}
