package main

import (
	"context"
	"crypto/subtle"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/crumbs-dev/crumbs/server/metrics"
)

// metricsOnMain returns the /metrics handler for the public listener, or nil
// when it is not served there: with CRUMBS_METRICS_ADDR it has a listener of
// its own; in production it needs CRUMBS_METRICS_TOKEN, since an endpoint
// without credentials must tell the caller nothing it did not send.
func metricsOnMain(cfg *config, m *metrics.Metrics) http.Handler {
	switch {
	case cfg.MetricsAddr != "":
		return nil
	case cfg.MetricsToken != "":
		return requireBearer(cfg.MetricsToken, m.Handler())
	case cfg.Development:
		return m.Handler()
	}
	return nil
}

// requireBearer answers 401 unless the request carries the token.
func requireBearer(token string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || subtle.ConstantTimeCompare([]byte(got), []byte(token)) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="metrics"`)
			http.Error(w, "metrics need the bearer token set in CRUMBS_METRICS_TOKEN", http.StatusUnauthorized)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// serveMetrics serves /metrics on its own listener until ctx ends.
func serveMetrics(ctx context.Context, ln net.Listener, m *metrics.Metrics, log *slog.Logger) {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", m.Handler())
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, WriteTimeout: 30 * time.Second}
	go func() {
		<-ctx.Done()
		shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(shutdownCtx)
	}()
	log.Info("metrics listening", "addr", ln.Addr().String())
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Error("metrics", "err", err)
	}
}
