package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"runtime"
	"sync"
	"time"

	"github.com/crumbs-dev/crumbs/graph"
	"github.com/crumbs-dev/crumbs/models"
	"github.com/crumbs-dev/crumbs/server/metrics"
	"gorm.io/gorm"
)

// run starts the server and blocks until ctx ends, then shuts down gracefully
// within the shutdown timeout (see shutdown): in-flight requests finish, the
// writer stores what it was given, and the database closes.
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
	defer flushLog(log)

	db, err := models.Open(ctx, cfg.DatabaseURL, models.DBOptions{MaxOpenConns: cfg.DBMaxConns, Timeout: cfg.DBTimeout})
	if err != nil {
		return err
	}
	sqlDB, _ := db.DB()
	if err := models.Migrate(ctx, db); err != nil {
		sqlDB.Close()
		return err
	}
	m := metrics.New()
	resolver, closeResolver, err := newResolver(cfg, db, log, m)
	if err != nil {
		sqlDB.Close()
		return err
	}
	// SQLite's planner statistics: refreshed at start and every hour; started after
	// newResolver, whose gorm callbacks must be registered before any
	// statement runs concurrently.
	statsCtx, stopStats := context.WithCancel(context.Background())
	defer stopStats()
	go models.KeepPlannerStatistics(statsCtx, db, log)
	// Before serving, a failure closes what is open; once serving, shutdown does.
	abandon := func() {
		closeResolver()
		sqlDB.Close()
	}
	// Every request's context derives from this one, so that shutdown can
	// end those still waiting on the store.
	requests, endRequests := context.WithCancel(context.Background())
	defer endRequests()
	// The timeouts bound every request, whatever headers it carries. A
	// websocket outlives them: net/http clears a connection's deadlines when
	// the websocket library hijacks it, which it does only once it has
	// accepted a handshake (TestWebsocketOutlivesServerTimeouts).
	srv := &http.Server{
		BaseContext:       func(net.Listener) context.Context { return requests },
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
		abandon()
		return err
	}
	fmt.Fprintf(stdout, "crumbs listening on http://%s\n", displayAddr(ln.Addr()))
	log.Info("listening", "addr", ln.Addr().String(), "database", db.Dialector.Name(), "development", cfg.Development)
	warnIfOthersRead(ctx, db, log)
	if cfg.Development {
		log.Warn("development mode: GraphiQL and introspection are on and sign-ins end at restart; set CRUMBS_ENV=production and CRUMBS_JWT_SECRET for deployments")
	}

	if cfg.PprofAddr != "" {
		go servePprof(cfg.PprofAddr, log)
	}
	if cfg.MetricsAddr != "" {
		mln, err := net.Listen("tcp", cfg.MetricsAddr)
		if err != nil {
			ln.Close()
			abandon()
			return fmt.Errorf("metrics listener: %w", err)
		}
		go serveMetrics(ctx, mln, m, log)
	} else if metricsOnMain(cfg, m) == nil {
		log.Info("metrics are off: set CRUMBS_METRICS_ADDR for a listener of their own, or CRUMBS_METRICS_TOKEN to serve /metrics here with a bearer token")
	}
	// Retention and tombstone expiry, one replica at a time (a lease).
	jobs, endJobs := context.WithCancel(context.Background())
	jobsDone := make(chan struct{})
	go func() {
		defer close(jobsDone)
		models.NewLifecycle(db, models.LifecycleOptions{Interval: cfg.LifecycleInterval, Log: log}).Run(jobs)
	}()
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	select {
	case err = <-serveErr:
	case <-ctx.Done():
	}
	log.Info("shutting down", "timeout", cfg.ShutdownTimeout)
	// Deliveries stop at once; attempts cut short are released (or, if the
	// store does not answer, their leases expire) and retried by another
	// replica or after the restart: receivers dedupe by webhook-id. Not
	// waited for: a frozen store must not hold the shutdown past its timeout.
	go resolver.Automations.Close()
	// The lifecycle job stops between chunks; a chunk stalled on a frozen
	// store is not waited for past a tenth of the timeout (its transaction
	// rolls back when the connection closes).
	// Erasures and deleted apps' removals stop between statements too and
	// release their leases, so the restart (or another replica) resumes
	// them at once.
	endJobs()
	erasuresDone := make(chan struct{})
	go func() {
		var wg sync.WaitGroup
		wg.Go(resolver.AppDeletions.Close)
		resolver.Erasures.Close()
		wg.Wait()
		close(erasuresDone)
	}()
	timeUp := time.After(cfg.ShutdownTimeout / 10)
	for jobs, erasures := jobsDone, erasuresDone; jobs != nil || erasures != nil; {
		select {
		case <-jobs:
			jobs = nil
		case <-erasures:
			erasures = nil
		case <-timeUp:
			jobs, erasures = nil, nil
		}
	}
	shutdown(log, cfg.ShutdownTimeout, srv, endRequests, resolver.Writer, sqlDB)
	if err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// shutdown stops the server within timeout, whatever the store does. In-flight
// requests get most of it to finish; those still running then (waiting on a
// stalled store) have their contexts ended and the writer aborted, so they
// are answered UNAVAILABLE in the time left. Nothing unanswered was
// acknowledged, so nothing acknowledged is lost.
func shutdown(log *slog.Logger, timeout time.Duration, srv *http.Server, endRequests func(), writer *models.Writer, sqlDB *sql.DB) {
	deadline := time.Now().Add(timeout)
	soft, cancel := context.WithDeadline(context.Background(), deadline.Add(-min(timeout/4, 3*time.Second)))
	defer cancel()
	if err := srv.Shutdown(soft); err != nil {
		log.Warn("shutdown: answering the requests still in flight UNAVAILABLE")
		endRequests()
		writer.Abort()
		hard, cancel := context.WithDeadline(context.Background(), deadline)
		defer cancel()
		if err := srv.Shutdown(hard); err != nil {
			srv.Close()
		}
	}
	endRequests() // websockets are not waited for by Shutdown
	// The writer has nothing left unless a request was cut off above.
	left, cancelLeft := context.WithDeadline(context.Background(), deadline)
	defer cancelLeft()
	writer.Shutdown(left)
	// Closing waits for statements still running on the server; a frozen
	// store must not hold the process past its deadline.
	closed := make(chan struct{})
	go func() {
		sqlDB.Close()
		close(closed)
	}()
	select {
	case <-closed:
	case <-left.Done():
		log.Warn("shutdown: the database did not close in time")
	}
}

// newResolver wires the store, the definition cache, the writer and tokens,
// and reports them to m.
func newResolver(cfg *config, db *gorm.DB, log *slog.Logger, m *metrics.Metrics) (*graph.Resolver, func(), error) {
	tokens, err := models.NewTokens(cfg.JWTSecrets, "crumbs", "crumbs-dashboard", cfg.CacheTTL)
	if err != nil {
		return nil, nil, err
	}
	// Before the writer: its event log consumers use db at once, and gorm's
	// callbacks (which WatchDB adds) must not change while statements run.
	if err := m.WatchDB("main", db); err != nil {
		return nil, nil, err
	}
	catalog := models.NewCatalog(db, cfg.CacheTTL)
	hooks := cfg.Webhooks
	hooks.Log = log
	dispatcher := models.NewDispatcher(db, hooks)
	writer := models.NewWriter(db, catalog, models.WriterOptions{
		MaxBatch: cfg.WriteBatch, Writers: cfg.Writers, Delay: cfg.WriteDelay, CommitTimeout: cfg.DBTimeout, Log: log,
		Limits:   models.NewRateLimits(cfg.RatePerIP, cfg.RatePerDevice),
		Observer: m, BotFilter: cfg.BotFilter,
		// This replica's dispatcher makes the first attempts of what the consumer matches.
		Consumers: []models.LogConsumer{dispatcher.AutomationsConsumer(models.AutomationsConsumerName)},
	})
	m.WatchWriter(writer)
	if events := writer.EventLog(); events != nil {
		for _, c := range events.Stats() {
			m.AddLag(c.Name, derivedLag(events, c.Name))
		}
	}
	m.AddCounts("crumbs_webhook_deliveries_total", "Automation delivery attempts by outcome: succeeded, failed (to be retried), dead (dead-lettered), disabled (410 Gone switched the action off).",
		"status", dispatcher.DeliveryCounts)
	// Erasures run detached from their requests and resume pending ones.
	erasures := models.NewEraser(db, models.EraserOptions{Wait: cfg.EraseWait, LeaseTTL: cfg.EraseLease, Log: log})
	// Deleted apps' rows go in the background, resumed after a restart.
	deletions := models.NewAppDeleter(db, models.AppDeleterOptions{LeaseTTL: cfg.EraseLease, Settle: models.AppDeleteSettle(cfg.CacheTTL, cfg.DBTimeout), Log: log})
	deletions.Start()
	closeAll := func() {
		deletions.Close()
		erasures.Close()
		dispatcher.Close()
		writer.Close()
	}
	return &graph.Resolver{DB: db, Catalog: catalog, Writer: writer, Tokens: tokens, Log: log, Automations: dispatcher, Erasures: erasures, AppDeletions: deletions}, closeAll, nil
}

// derivedLag reads how far the named event log consumer trails the stored
// events, for crumbs_derived_lag_*. The replica holding the consumer's lease
// reports it; the others report 0, so take the max over replicas.
func derivedLag(events *models.EventLog, name string) func() metrics.Lag {
	return func() metrics.Lag {
		s, ok := events.StatsOf(name)
		if !ok || !s.Holding {
			return metrics.Lag{}
		}
		return metrics.Lag{Seconds: s.Lag.Seconds(), Events: float64(s.Behind)}
	}
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

// warnIfOthersRead warns when other users of the machine may read a SQLite
// database: new ones are created readable by this user only, but one made by
// an earlier release, or copied in, keeps the mode it has.
func warnIfOthersRead(ctx context.Context, db *gorm.DB, log *slog.Logger) {
	if runtime.GOOS == "windows" { // no Unix modes there
		return
	}
	path, err := models.SQLiteFile(ctx, db)
	if err != nil || path == "" {
		return
	}
	info, err := os.Stat(path)
	if err != nil || info.Mode().Perm()&0o077 == 0 {
		return
	}
	log.Warn("the database file can be read by other users of this machine; it holds personal data: chmod 600 it (with its -wal and -shm files) while the server is stopped",
		"file", path, "mode", info.Mode().Perm().String())
}
