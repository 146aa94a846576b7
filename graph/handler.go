package graph

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/handler"
	"github.com/99designs/gqlgen/graphql/handler/extension"
	"github.com/99designs/gqlgen/graphql/handler/lru"
	"github.com/99designs/gqlgen/graphql/handler/transport"
	"github.com/crumbs-dev/crumbs/graph/generated"
	"github.com/vektah/gqlparser/v2/ast"
	"gorm.io/gorm"
)

// HandlerOptions configure the GraphQL endpoint.
type HandlerOptions struct {
	// Development enables introspection and "did you mean" suggestions (and,
	// in the server, GraphiQL).
	Development bool
	// MaxDepth and MaxComplexity bound what one operation may ask for.
	MaxDepth      int
	MaxComplexity int
	Log           *slog.Logger
	// NoFastPath sends trigger mutations through gqlgen too (see fastpath.go).
	NoFastPath bool
}

// NewHandler returns the GraphQL endpoint: websocket subscriptions, POST and GET (queries only) with
// application/json and application/graphql-response+json, a parsed-query cache
// and automatic persisted queries, planned trigger mutations for the hot path
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
	// older graphql-ws protocol. Browsers may connect from the server's own
	// origin only (coder/websocket's default check); they cannot send headers,
	// so the access token may come in the connection_init payload instead.
	srv.AddTransport(transport.Websocket{KeepAlivePingInterval: 15 * time.Second, InitFunc: websocketInit(r.Tokens)})
	srv.AddTransport(transport.Options{})
	srv.AddTransport(transport.GET{})
	srv.AddTransport(transport.POST{})
	srv.SetQueryCache(lru.New[*ast.QueryDocument](1000))
	srv.Use(extension.AutomaticPersistedQuery{Cache: lru.New[string](1000)})
	if opts.Development {
		srv.Use(extension.Introspection{})
	} else {
		srv.SetDisableSuggestion(true)
	}
	if opts.MaxDepth > 0 {
		srv.Use(DepthLimit{Max: opts.MaxDepth})
	}
	if opts.MaxComplexity > 0 {
		srv.Use(extension.FixedComplexityLimit(opts.MaxComplexity))
	}
	srv.AroundResponses(freshLoadersPerEvent(r.DB))
	srv.SetErrorPresenter(presentError(log))
	srv.SetRecoverFunc(recoverPanic(log))
	h := LoaderMiddleware(r.DB, srv)
	if opts.NoFastPath {
		return h
	}
	return newFastPath(r, schema.Schema(), log, opts.MaxComplexity, opts.MaxDepth).middleware(h)
}

// freshLoadersPerEvent gives every event of a subscription its own
// dataloaders. A subscription lives as long as its websocket, and the
// loaders of the upgrade request would cache devices, leads and definitions
// for all that time: a device identified meanwhile would stay anonymous,
// and the cache would only grow.
func freshLoadersPerEvent(db *gorm.DB) graphql.ResponseMiddleware {
	return func(ctx context.Context, next graphql.ResponseHandler) *graphql.Response {
		if oc := graphql.GetOperationContext(ctx); oc != nil && oc.Operation != nil && oc.Operation.Operation == ast.Subscription {
			ctx = context.WithValue(ctx, loadersKey{}, newLoaders(db))
		}
		return next(ctx)
	}
}
