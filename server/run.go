package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/crumbs-dev/crumbs/graph"
	"github.com/crumbs-dev/crumbs/models"
	"github.com/crumbs-dev/crumbs/server/metrics"
	"gorm.io/gorm"
)

// run starts the server and blocks until ctx ends, then shuts down gracefully:
// in-flight requests finish, the writer stores what it was given, and the
// database closes.
func run(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) > 0 {
		switch args[0] {
		case "admin":
			return runAdmin(ctx, args[1:], getenv, stdin, stdout, stderr)
		case "version", "-version", "--version":
			return printVersion(stdout)
		}
	}
	cfg, err := parseConfig(args, getenv, stderr)
	if err != nil {
		return err
	}
	log := cfg.logger(stderr)

	db, err := models.Open(ctx, cfg.DatabaseURL, models.DBOptions{MaxOpenConns: cfg.DBMaxConns})
	if err != nil {
		return err
	}
	sqlDB, _ := db.DB()
	defer sqlDB.Close()
	if err := models.Migrate(ctx, db); err != nil {
		return err
	}
	m := metrics.New()
	resolver, closeResolver, err := newResolver(cfg, db, log, m)
	if err != nil {
		return err
	}
	defer closeResolver()
	srv := &http.Server{
		Handler:           routes(cfg, log, resolver, m),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          nil,
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "crumbs listening on http://%s\n", displayAddr(ln.Addr()))
	log.Info("listening", "addr", ln.Addr().String(), "database", db.Dialector.Name(), "development", cfg.Development)
	if cfg.Development {
		log.Warn("development mode: GraphiQL and introspection are on and sign-ins end at restart; set CRUMBS_ENV=production and CRUMBS_JWT_SECRET for deployments")
	}

	if cfg.PprofAddr != "" {
		go servePprof(cfg.PprofAddr, log)
	}
	if cfg.MetricsAddr != "" {
		mln, err := net.Listen("tcp", cfg.MetricsAddr)
		if err != nil {
			return fmt.Errorf("metrics listener: %w", err)
		}
		go serveMetrics(ctx, mln, m, log)
	} else if metricsOnMain(cfg, m) == nil {
		log.Info("metrics are off: set CRUMBS_METRICS_ADDR for a listener of their own, or CRUMBS_METRICS_TOKEN to serve /metrics here with a bearer token")
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	select {
	case err := <-serveErr:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("shutdown: %w", err)
	}
	return nil
}

// newResolver wires the store, the definition cache, the writer and tokens,
// and reports them to m.
func newResolver(cfg *config, db *gorm.DB, log *slog.Logger, m *metrics.Metrics) (*graph.Resolver, func(), error) {
	tokens, err := models.NewTokens(cfg.JWTSecrets, "crumbs", "crumbs-dashboard", cfg.CacheTTL)
	if err != nil {
		return nil, nil, err
	}
	catalog := models.NewCatalog(db, cfg.CacheTTL)
	writer := models.NewWriter(db, catalog, models.WriterOptions{
		MaxBatch: cfg.WriteBatch, Writers: cfg.Writers, Delay: cfg.WriteDelay, Log: log,
		Limits:   models.NewRateLimits(cfg.RatePerIP, cfg.RatePerDevice),
		Observer: m,
	})
	m.WatchWriter(writer)
	if err := m.WatchDB("main", db); err != nil {
		writer.Close()
		return nil, nil, err
	}
	return &graph.Resolver{DB: db, Catalog: catalog, Writer: writer, Tokens: tokens, Log: log}, writer.Close, nil
}

// displayAddr turns a wildcard listen address into one a browser can open.
func displayAddr(addr net.Addr) string {
	tcp, ok := addr.(*net.TCPAddr)
	if !ok || !tcp.IP.IsUnspecified() {
		return addr.String()
	}
	return fmt.Sprintf("localhost:%d", tcp.Port)
}

// servePprof serves the profiler on its own listener, never on the public one.
func servePprof(addr string, log *slog.Logger) {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	log.Info("pprof listening", "addr", addr)
	if err := http.ListenAndServe(addr, mux); err != nil {
		log.Error("pprof", "err", err)
	}
}
