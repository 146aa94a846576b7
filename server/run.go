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
	"gorm.io/gorm"
)

// run starts the server and blocks until ctx ends, then shuts down gracefully:
// in-flight requests finish, the writer stores what it was given, and the
// database closes.
func run(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "admin" {
		return runAdmin(ctx, args[1:], getenv, stdin, stdout, stderr)
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
	resolver, closeResolver, err := newResolver(cfg, db, log)
	if err != nil {
		return err
	}
	defer closeResolver()
	srv := &http.Server{
		Handler:           routes(cfg, log, resolver),
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

// newResolver wires the store, the definition cache, the writer and tokens.
func newResolver(cfg *config, db *gorm.DB, log *slog.Logger) (*graph.Resolver, func(), error) {
	tokens, err := models.NewTokens(cfg.JWTSecrets, "crumbs", "crumbs-dashboard", cfg.CacheTTL)
	if err != nil {
		return nil, nil, err
	}
	catalog := models.NewCatalog(db, cfg.CacheTTL)
	writer := models.NewWriter(db, catalog, models.WriterOptions{
		MaxBatch: cfg.WriteBatch, Writers: cfg.Writers, Delay: cfg.WriteDelay, Log: log,
		Limits: models.NewRateLimits(cfg.RatePerIP, cfg.RatePerDevice),
	})
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
