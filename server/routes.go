package main

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/crumbs-dev/crumbs/graph"
	"github.com/crumbs-dev/crumbs/jsclient"
	"github.com/crumbs-dev/crumbs/models"
	"github.com/crumbs-dev/crumbs/server/dashboard"
	"github.com/crumbs-dev/crumbs/server/graphiql"
	"github.com/crumbs-dev/crumbs/server/ingest"
	"github.com/crumbs-dev/crumbs/server/metrics"
	"github.com/rs/cors"
)

// routes lists every endpoint of the server.
func routes(cfg *config, log *slog.Logger, resolver *graph.Resolver, m *metrics.Metrics) http.Handler {
	mux := http.NewServeMux()

	api := graph.NewHandler(resolver, graph.HandlerOptions{
		Development: cfg.Development, MaxDepth: cfg.MaxDepth, MaxComplexity: cfg.MaxComplexity,
		WebsocketOrigins: cfg.DashboardOrigins, Websockets: graph.WebsocketLimits{
			Anonymous: cfg.MaxAnonymousWebsockets, PerCredential: cfg.MaxWebsocketsPerCredential,
			Pending: cfg.MaxPendingWebsockets, PendingPerIP: cfg.MaxPendingWebsocketsPerIP,
		},
		Log: log, NoFastPath: cfg.noFastPath, WebsocketWriteTimeout: cfg.websocketWriteTimeout,
		WebsocketPingInterval: cfg.websocketPingInterval, MaxMessageBytes: cfg.MaxBodyBytes,
	})
	api = graph.RequestMiddleware(graph.RequestOptions{
		RequestID: requestID, Tokens: resolver.Tokens, DB: resolver.DB, TrustedProxies: cfg.TrustedProxies,
	}, api)
	api = graphqlRequests(api)
	api = limitBody(cfg.MaxBodyBytes, api)
	mux.Handle("/graphql", browserCORS(api))

	// The plain JSON ingestion API; its endpoints are listed in server/ingest.
	ingestAPI := ingest.New(ingest.Options{
		Writer: resolver.Writer, DB: resolver.DB, Log: log, RequestID: requestID, MaxBodyBytes: cfg.MaxBodyBytes, CheckBody: checkJSONBody,
		ClientIP: func(r *http.Request) string { return graph.ClientIP(r, cfg.TrustedProxies) },
	})
	apiMux := http.NewServeMux()
	ingestAPI.Register(apiMux, exportRoute(cfg, resolver, ingestAPI.Fail, log))
	mux.Handle("/api/v1/", browserCORS(apiMux))
	mux.Handle("/v1/", apiMux)       // Segment's HTTP tracking API: servers only, no CORS
	mux.Handle("/webhooks/", apiMux) // Bento-compatible webhooks: servers only, no CORS

	// The dashboard at / (its pages, assets and token vault), on the same
	// GraphQL handler as every other client.
	dashboard.Register(mux, &dashboard.Vault{API: api})

	// The browser library, so that sites need nothing but a script tag.
	jsclient.Register(mux)

	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if err := models.Ping(ctx, resolver.DB); err != nil {
			// Load balancers probe every few seconds: log it as a store
			// fault, which the log handler throttles to one line a second.
			log.Warn(models.MsgStoreUnavailable, "in", "readyz", "err", err)
			http.Error(w, "database unreachable", http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte("ready\n"))
	})
	if h := metricsOnMain(cfg, m); h != nil {
		mux.Handle("GET /metrics", h)
	}
	if cfg.Development {
		// Served from the binary: it works offline.
		graphiql.Register(mux, "/graphiql", "/graphql")
	}
	return withRequestID(recoverPanics(log, mux))
}

// browserCORS admits browsers from any origin: triggers come from the apps'
// own sites, which only the app knows, and the trigger path checks the
// app's allowed origins.
func browserCORS(h http.Handler) http.Handler {
	return cors.New(cors.Options{
		AllowOriginFunc: func(string) bool { return true },
		AllowedMethods:  []string{http.MethodGet, http.MethodPost},
		AllowedHeaders:  []string{"Content-Type", "Authorization", "X-App-Secret", "X-Request-Id"},
		ExposedHeaders:  []string{"Retry-After", "X-Request-Id"},
		MaxAge:          600,
	}).Handler(h)
}
