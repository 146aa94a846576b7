package main

import (
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"time"
)

// config is every setting of the server. Each has a flag and a CRUMBS_*
// environment variable; the flag wins.
type config struct {
	Addr            string
	DatabaseURL     string
	Development     bool
	MaxBodyBytes    int64
	DBMaxConns      int
	WriteBatch      int
	Writers         int
	WriteDelay      time.Duration
	CacheTTL        time.Duration
	ShutdownTimeout time.Duration
	LogLevel        slog.Level
	LogFormat       string
	PprofAddr       string
}

func parseConfig(args []string, getenv func(string) string, stderr io.Writer) (*config, error) {
	fs := flag.NewFlagSet("crumbs", flag.ContinueOnError)
	fs.SetOutput(stderr)
	env := func(name, fallback string) string {
		if v := getenv(name); v != "" {
			return v
		}
		return fallback
	}
	var cfg config
	var maxBody, dbConns, batch, writers, logLevel string
	var writeDelay, cacheTTL, shutdown, dev string
	fs.StringVar(&cfg.Addr, "addr", env("CRUMBS_ADDR", ":8080"), "listen address (CRUMBS_ADDR)")
	fs.StringVar(&cfg.DatabaseURL, "database-url", env("CRUMBS_DATABASE_URL", "sqlite:crumbs.db"), "mysql://user:pass@host:3306/db or sqlite:path (CRUMBS_DATABASE_URL)")
	fs.StringVar(&dev, "dev", env("CRUMBS_DEV", "false"), "development mode: GraphiQL and introspection (CRUMBS_DEV)")
	fs.StringVar(&maxBody, "max-body-bytes", env("CRUMBS_MAX_BODY_BYTES", "2097152"), "largest accepted request body (CRUMBS_MAX_BODY_BYTES)")
	fs.StringVar(&dbConns, "db-max-conns", env("CRUMBS_DB_MAX_CONNS", "16"), "MySQL connection pool size (CRUMBS_DB_MAX_CONNS)")
	fs.StringVar(&batch, "write-batch", env("CRUMBS_WRITE_BATCH", "2000"), "most events in one group commit (CRUMBS_WRITE_BATCH)")
	fs.StringVar(&writers, "writers", env("CRUMBS_WRITERS", "1"), "group commits in flight at once on MySQL; SQLite always uses 1 (CRUMBS_WRITERS)")
	fs.StringVar(&writeDelay, "write-delay", env("CRUMBS_WRITE_DELAY", "0s"), "extra wait to grow a group commit (CRUMBS_WRITE_DELAY)")
	fs.StringVar(&cacheTTL, "cache-ttl", env("CRUMBS_CACHE_TTL", "2s"), "how long another replica's definition changes may go unseen (CRUMBS_CACHE_TTL)")
	fs.StringVar(&shutdown, "shutdown-timeout", env("CRUMBS_SHUTDOWN_TIMEOUT", "15s"), "grace period for in-flight requests on SIGTERM (CRUMBS_SHUTDOWN_TIMEOUT)")
	fs.StringVar(&logLevel, "log-level", env("CRUMBS_LOG_LEVEL", "info"), "debug, info, warn or error (CRUMBS_LOG_LEVEL)")
	fs.StringVar(&cfg.LogFormat, "log-format", env("CRUMBS_LOG_FORMAT", "json"), "json or text (CRUMBS_LOG_FORMAT)")
	fs.StringVar(&cfg.PprofAddr, "pprof-addr", env("CRUMBS_PPROF_ADDR", ""), "serve net/http/pprof on this address, e.g. 127.0.0.1:6060; off when empty (CRUMBS_PPROF_ADDR)")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	var errs []string
	check := func(name string, err error) {
		if err != nil {
			errs = append(errs, fmt.Sprintf("%s: %v", name, err))
		}
	}
	var err error
	cfg.Development, err = strconv.ParseBool(dev)
	check("dev", err)
	cfg.MaxBodyBytes, err = positiveInt[int64](maxBody)
	check("max-body-bytes", err)
	cfg.DBMaxConns, err = positiveInt[int](dbConns)
	check("db-max-conns", err)
	cfg.WriteBatch, err = positiveInt[int](batch)
	check("write-batch", err)
	cfg.Writers, err = positiveInt[int](writers)
	check("writers", err)
	cfg.WriteDelay, err = time.ParseDuration(writeDelay)
	check("write-delay", err)
	cfg.CacheTTL, err = time.ParseDuration(cacheTTL)
	check("cache-ttl", err)
	cfg.ShutdownTimeout, err = time.ParseDuration(shutdown)
	check("shutdown-timeout", err)
	check("log-level", cfg.LogLevel.UnmarshalText([]byte(logLevel)))
	if cfg.LogFormat != "json" && cfg.LogFormat != "text" {
		errs = append(errs, "log-format: must be json or text")
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("invalid settings: %s", strings.Join(errs, "; "))
	}
	return &cfg, nil
}

func positiveInt[T int | int64](s string) (T, error) {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("%q is not a positive integer", s)
	}
	return T(n), nil
}

func (c *config) logger(w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: c.LogLevel}
	if c.LogFormat == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}
