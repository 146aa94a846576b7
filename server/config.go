package main

import (
	"crypto/rand"
	"errors"
	"flag"
	"net/netip"

	"fmt"
	"github.com/crumbs-dev/crumbs/models"
	"io"
	"log/slog"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// config is every setting of the server. Each has a flag and a CRUMBS_*
// environment variable; the flag wins.
type config struct {
	Addr           string
	DatabaseURL    string
	Development    bool
	JWTSecrets     [][]byte
	TrustedProxies []netip.Prefix
	RatePerIP      models.Rate
	RatePerDevice  models.Rate
	// BotFilter refuses browser triggers from bot User-Agents.
	BotFilter     models.BotFilter
	MaxDepth      int
	MaxComplexity int
	MaxBodyBytes  int64
	DBMaxConns    int
	DBTimeout     time.Duration
	// LifecycleInterval is how often the retention and tombstone expiry
	// job runs (one replica at a time).
	LifecycleInterval time.Duration
	WriteBatch        int
	Writers           int
	WriteDelay        time.Duration
	CacheTTL          time.Duration
	ShutdownTimeout   time.Duration
	LogLevel          slog.Level
	LogFormat         string
	PprofAddr         string
	// DashboardOrigins may open the subscription websocket from a browser,
	// besides the server's own origin.
	DashboardOrigins []string
	MetricsAddr      string
	MetricsToken     string
	// Erasures: how long a request waits for its erasure before it is
	// answered with the counts so far (well under the 60 s write timeout),
	// and how long a replica holds one without renewing it.
	EraseWait, EraseLease time.Duration
	// Webhooks configure automation deliveries (models.DispatcherOptions).
	Webhooks models.DispatcherOptions
	// MaxAnonymousWebsockets caps the websockets open at once without a
	// credential; 0 lifts the cap.
	MaxAnonymousWebsockets int
	// MaxWebsocketsPerCredential caps the websockets open at once with one
	// user's sign-ins, or one app's secret key; 0 lifts the cap.
	MaxWebsocketsPerCredential int
	// MaxPendingWebsockets caps the websockets open at once whose
	// connection_init is not acknowledged yet, MaxPendingWebsocketsPerIP
	// those of one client IP; 0 lifts a cap.
	MaxPendingWebsockets, MaxPendingWebsocketsPerIP int
	// noFastPath sends trigger mutations through gqlgen too (tests compare).
	noFastPath bool
	// websocketWriteTimeout replaces graph.DefaultWebsocketWriteTimeout
	// (tests shorten it).
	websocketWriteTimeout time.Duration
	// websocketPingInterval replaces graph.DefaultWebsocketPingInterval
	// (tests shorten it).
	websocketPingInterval time.Duration
}

func parseConfig(args []string, getenv func(string) string, stderr io.Writer) (*config, error) {
	fs := flag.NewFlagSet("crumbs", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, `usage: crumbs [flags]            run the server
       crumbs admin COMMAND     manage users and back up (crumbs admin help)
       crumbs version           the version and what the binary was built from

Every flag is also read from the CRUMBS_ variable named after it; a flag wins.

`)
		fs.PrintDefaults()
	}
	env := func(name, fallback string) string {
		if v := getenv(name); v != "" {
			return v
		}
		return fallback
	}
	var cfg config
	setFlags := map[string]bool{}
	var maxBody, dbConns, dbTimeout, batch, writers, logLevel string
	var lifecycleInterval, eraseWait, eraseLease string
	var writeDelay, cacheTTL, shutdown, mode string
	var dashboardOrigins, maxAnonymousWS, maxCredentialWS, maxPendingWS, maxPendingWSPerIP string
	var hookPrivate, hookWorkers, hookPerRule, hookRate, hookBackoff, hookAttempts, hookRetention, hookTimeout string
	var jwtSecret, jwtPrevious, proxies, rateIP, rateDevice, botFilter, maxDepth, maxComplexity string
	fs.StringVar(&cfg.Addr, "addr", env("CRUMBS_ADDR", ":8080"), "listen address (CRUMBS_ADDR)")
	// Secrets take no default from the environment: flag prints defaults in
	// its usage, which a mistyped flag writes to stderr, the server's log.
	// They are read from the environment after parsing instead.
	var secrets []func()
	secretVar := func(p *string, name, variable, fallback, usage string) {
		fs.StringVar(p, name, "", usage)
		secrets = append(secrets, func() {
			if !setFlags[name] {
				*p = env(variable, fallback)
			}
		})
	}
	secretVar(&cfg.DatabaseURL, "database-url", "CRUMBS_DATABASE_URL", "sqlite:crumbs.db", "mysql://user:pass@host:3306/db or sqlite:path; default sqlite:crumbs.db (CRUMBS_DATABASE_URL)")
	fs.StringVar(&mode, "env", env("CRUMBS_ENV", "development"), "development (GraphiQL, introspection, a throwaway token key) or production (CRUMBS_ENV)")
	secretVar(&jwtSecret, "jwt-secret", "CRUMBS_JWT_SECRET", "", "secret that signs access tokens, at least 32 bytes; required in production (CRUMBS_JWT_SECRET)")
	secretVar(&jwtPrevious, "jwt-previous-secrets", "CRUMBS_JWT_PREVIOUS_SECRETS", "", "comma-separated retired signing secrets that still verify (CRUMBS_JWT_PREVIOUS_SECRETS)")
	fs.StringVar(&proxies, "trusted-proxies", env("CRUMBS_TRUSTED_PROXIES", ""), "comma-separated IPs/CIDRs allowed to set X-Forwarded-For (CRUMBS_TRUSTED_PROXIES)")
	fs.StringVar(&rateIP, "rate-ip", env("CRUMBS_RATE_IP", "50/100"), "browser triggers per second per client IP, 0.001 to 1000000, /burst, 1 to 1000000; 0 disables (CRUMBS_RATE_IP)")
	fs.StringVar(&rateDevice, "rate-device", env("CRUMBS_RATE_DEVICE", "10/40"), "triggers per second per device, 0.001 to 1000000, /burst, 1 to 1000000; 0 disables (CRUMBS_RATE_DEVICE)")
	fs.StringVar(&botFilter, "bot-filter", env("CRUMBS_BOT_FILTER", "crawlers"), "browser (keyless) triggers refused BOT_FILTERED by User-Agent: off, crawlers (self-declared crawlers, bots, spiders, link previews) or all (also headless and automated browsers) (CRUMBS_BOT_FILTER)")
	fs.StringVar(&maxDepth, "max-depth", env("CRUMBS_MAX_DEPTH", "12"), "deepest GraphQL selection accepted, 1 to 64 (CRUMBS_MAX_DEPTH)")
	fs.StringVar(&maxComplexity, "max-complexity", env("CRUMBS_MAX_COMPLEXITY", "5000"), "highest GraphQL complexity accepted, 1 to 100000; lists count page size x fields (CRUMBS_MAX_COMPLEXITY)")
	fs.StringVar(&maxBody, "max-body-bytes", env("CRUMBS_MAX_BODY_BYTES", "2097152"), "largest accepted request body and websocket message, 1024 to 67108864 (64 MiB) (CRUMBS_MAX_BODY_BYTES)")
	fs.StringVar(&dbConns, "db-max-conns", env("CRUMBS_DB_MAX_CONNS", "16"), "MySQL connection pool size, 1 to 1000 (CRUMBS_DB_MAX_CONNS)")
	fs.StringVar(&lifecycleInterval, "lifecycle-interval", env("CRUMBS_LIFECYCLE_INTERVAL", "1h"), "how often one replica deletes events past each app's retention and expired tombstones, 1m to 24h (CRUMBS_LIFECYCLE_INTERVAL)")
	fs.StringVar(&eraseWait, "erase-wait", env("CRUMBS_ERASE_WAIT", "20s"), "longest an erasure request waits for its erasure, 100ms to 45s; a longer one is answered done: false with its counts so far and goes on in the server (CRUMBS_ERASE_WAIT)")
	fs.StringVar(&eraseLease, "erase-lease", env("CRUMBS_ERASE_LEASE", "1m"), "how long a replica holds a running erasure (or a deleted app's removal) without renewing it; one whose replica died is resumed by another (or after the restart) this long after its last transaction; 1s to 1h (CRUMBS_ERASE_LEASE)")
	fs.StringVar(&dbTimeout, "db-timeout", env("CRUMBS_DB_TIMEOUT", "10s"), "longest a database call or group commit may take before the request is answered UNAVAILABLE, 1s to 10m (CRUMBS_DB_TIMEOUT)")
	fs.StringVar(&batch, "write-batch", env("CRUMBS_WRITE_BATCH", "2000"), "most events in one group commit, 1 to 20000 (CRUMBS_WRITE_BATCH)")
	fs.StringVar(&writers, "writers", env("CRUMBS_WRITERS", "1"), "group commits in flight at once, 1 to 64; more than 1 pipelines them (CRUMBS_WRITERS)")
	fs.StringVar(&writeDelay, "write-delay", env("CRUMBS_WRITE_DELAY", "0s"), "extra wait to grow a group commit, 0s to 1s (CRUMBS_WRITE_DELAY)")
	fs.StringVar(&cacheTTL, "cache-ttl", env("CRUMBS_CACHE_TTL", "2s"), "how long another replica's changes (definitions, ended sign-ins, rotated keys, revoked tokens, origins) may go unseen, 0s to 10m (CRUMBS_CACHE_TTL)")
	fs.StringVar(&shutdown, "shutdown-timeout", env("CRUMBS_SHUTDOWN_TIMEOUT", "15s"), "grace period for in-flight requests on SIGTERM, 1s to 1h (CRUMBS_SHUTDOWN_TIMEOUT)")
	fs.StringVar(&logLevel, "log-level", env("CRUMBS_LOG_LEVEL", "info"), "debug, info, warn or error (CRUMBS_LOG_LEVEL)")
	fs.StringVar(&cfg.LogFormat, "log-format", env("CRUMBS_LOG_FORMAT", "json"), "json or text (CRUMBS_LOG_FORMAT)")
	fs.StringVar(&cfg.MetricsAddr, "metrics-addr", env("CRUMBS_METRICS_ADDR", ""), "serve /metrics on this address only, e.g. 127.0.0.1:9090, instead of on the main listener (CRUMBS_METRICS_ADDR)")
	secretVar(&cfg.MetricsToken, "metrics-token", "CRUMBS_METRICS_TOKEN", "", "bearer token that /metrics on the main listener requires; without one it is served there only in development (CRUMBS_METRICS_TOKEN)")
	fs.StringVar(&cfg.PprofAddr, "pprof-addr", env("CRUMBS_PPROF_ADDR", ""), "serve net/http/pprof on this address, e.g. 127.0.0.1:6060; off when empty (CRUMBS_PPROF_ADDR)")
	fs.StringVar(&dashboardOrigins, "dashboard-origins", env("CRUMBS_DASHBOARD_ORIGINS", ""), "comma-separated origins of dashboards hosted elsewhere whose browsers may open the subscription websocket, e.g. https://dash.example.com (CRUMBS_DASHBOARD_ORIGINS)")
	fs.StringVar(&maxAnonymousWS, "max-anonymous-websockets", env("CRUMBS_MAX_ANONYMOUS_WEBSOCKETS", "1000"), "websockets open at once on one replica without a credential in connection_init or the upgrade request; more are closed with 1013 (try again later); 0 lifts the cap, else at most 1000000 (CRUMBS_MAX_ANONYMOUS_WEBSOCKETS)")
	fs.StringVar(&maxCredentialWS, "max-websockets-per-credential", env("CRUMBS_MAX_WEBSOCKETS_PER_CREDENTIAL", "100"), "websockets open at once on one replica with one credential: a user's sign-ins together, or an app's secret key; more are closed with 1013 (try again later); 0 lifts the cap, else at most 1000000 (CRUMBS_MAX_WEBSOCKETS_PER_CREDENTIAL)")
	fs.StringVar(&maxPendingWS, "max-pending-websockets", env("CRUMBS_MAX_PENDING_WEBSOCKETS", "1000"), "websockets open at once on one replica whose connection_init is not acknowledged yet (each is closed 10s after the upgrade without one); more upgrades are answered 429 with Retry-After; 0 lifts the cap, else at most 1000000 (CRUMBS_MAX_PENDING_WEBSOCKETS)")
	fs.StringVar(&maxPendingWSPerIP, "max-pending-websockets-per-ip", env("CRUMBS_MAX_PENDING_WEBSOCKETS_PER_IP", "10"), "the same, from one client IP (see trusted-proxies); more upgrades from it are answered 429 with Retry-After; 0 lifts the cap, else at most 1000000 (CRUMBS_MAX_PENDING_WEBSOCKETS_PER_IP)")
	fs.StringVar(&hookPrivate, "webhook-allow-private", env("CRUMBS_WEBHOOK_ALLOW_PRIVATE", ""), "true lets automation webhooks reach loopback, private and link-local addresses; default true in development, false in production (CRUMBS_WEBHOOK_ALLOW_PRIVATE)")
	fs.StringVar(&hookWorkers, "webhook-workers", env("CRUMBS_WEBHOOK_WORKERS", "16"), "automation deliveries attempted at once per replica, 1 to 1024 (CRUMBS_WEBHOOK_WORKERS)")
	fs.StringVar(&hookPerRule, "webhook-per-rule", env("CRUMBS_WEBHOOK_PER_RULE", "4"), "automation delivery attempts in flight at once per rule per replica, shared by the rule's actions, 1 to 1024 (CRUMBS_WEBHOOK_PER_RULE)")
	fs.StringVar(&hookRate, "webhook-rate", env("CRUMBS_WEBHOOK_RATE", "10"), "automation delivery attempts started per second per rule per replica, shared by the rule's actions; more wait pending; 0.001 to 10000, or 0 to lift the cap (CRUMBS_WEBHOOK_RATE)")
	fs.StringVar(&hookBackoff, "webhook-backoff", env("CRUMBS_WEBHOOK_BACKOFF", "30s"), "wait after a delivery's first failed attempt, doubled after each further one up to 8h, each wait ±25%; 100ms to 8h (CRUMBS_WEBHOOK_BACKOFF)")
	fs.StringVar(&hookAttempts, "webhook-attempts", env("CRUMBS_WEBHOOK_ATTEMPTS", "13"), "attempts before a delivery is dead-lettered, 1 to 100 (CRUMBS_WEBHOOK_ATTEMPTS)")
	fs.StringVar(&hookTimeout, "webhook-timeout", env("CRUMBS_WEBHOOK_TIMEOUT", "10s"), "longest one delivery attempt may take, 1s to 1h; a replica that dies mid-attempt leaves it to another after twice this plus 5s (CRUMBS_WEBHOOK_TIMEOUT)")
	fs.StringVar(&hookRetention, "webhook-log-retention", env("CRUMBS_WEBHOOK_LOG_RETENTION", "720h"), "how long finished deliveries stay in the delivery log, 1h to 8760h (a year); pruned hourly (CRUMBS_WEBHOOK_LOG_RETENTION)")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	fs.Visit(func(f *flag.Flag) { setFlags[f.Name] = true })
	for _, read := range secrets {
		read()
	}
	// A bad value stops the server with the setting named both ways: the
	// operator set one of them and must find it (CRUMBS_X=garbage is
	// never replaced by its default).
	var errs []string
	check := func(name string, err error) {
		if err != nil {
			errs = append(errs, fmt.Sprintf("%s (%s): %v", name, envName(name), err))
		}
	}
	var err error
	switch mode {
	case "development":
		cfg.Development = true
	case "production":
	default:
		check("env", errors.New("must be development or production"))
	}
	cfg.JWTSecrets, err = signingSecrets(jwtSecret, jwtPrevious, cfg.Development)
	check("jwt-secret", err)
	cfg.TrustedProxies, err = parseProxies(proxies)
	check("trusted-proxies", err)
	cfg.DashboardOrigins, err = parseOrigins(dashboardOrigins)
	check("dashboard-origins", err)
	cfg.MaxAnonymousWebsockets, err = intIn(maxAnonymousWS, 0, maxWebsocketCap)
	check("max-anonymous-websockets", err)
	cfg.MaxWebsocketsPerCredential, err = intIn(maxCredentialWS, 0, maxWebsocketCap)
	check("max-websockets-per-credential", err)
	cfg.MaxPendingWebsockets, err = intIn(maxPendingWS, 0, maxWebsocketCap)
	check("max-pending-websockets", err)
	cfg.MaxPendingWebsocketsPerIP, err = intIn(maxPendingWSPerIP, 0, maxWebsocketCap)
	check("max-pending-websockets-per-ip", err)
	cfg.RatePerIP, err = parseRate(rateIP)
	check("rate-ip", err)
	cfg.BotFilter, err = models.ParseBotFilter(botFilter)
	check("bot-filter", err)
	cfg.RatePerDevice, err = parseRate(rateDevice)
	check("rate-device", err)
	cfg.MaxDepth, err = intIn(maxDepth, 1, maxQueryDepth)
	check("max-depth", err)
	cfg.MaxComplexity, err = intIn(maxComplexity, 1, maxQueryComplexity)
	check("max-complexity", err)
	cfg.MaxBodyBytes, err = sizeIn(maxBody, minBodyBytes, maxBodyBytes)
	check("max-body-bytes", err)
	cfg.DBMaxConns, err = intIn(dbConns, 1, maxDBConns)
	check("db-max-conns", err)
	cfg.WriteBatch, err = intIn(batch, 1, maxWriteBatch)
	check("write-batch", err)
	cfg.Writers, err = intIn(writers, 1, maxWriters)
	check("writers", err)
	// Every duration has a range: a typo such as 300h for 300s, or 10ms
	// for 10s, stops the server instead of running it with a setting that
	// hangs requests, keeps credentials alive for days or spins a job.
	for _, d := range []struct {
		flag, value string
		min, max    time.Duration
		to          *time.Duration
	}{
		// Each run reads every app: 1ns ran it back to back, a busy loop on
		// the store; past a day events outlive their retention by as much.
		{"lifecycle-interval", lifecycleInterval, time.Minute, 24 * time.Hour, &cfg.LifecycleInterval},
		// MySQL's lock waits count whole seconds, so under 1s a call gives
		// up while the server still waits; past 10m a stuck store holds
		// requests, commits and connections that long instead of answering
		// UNAVAILABLE.
		{"db-timeout", dbTimeout, time.Second, 10 * time.Minute, &cfg.DBTimeout},
		// Under the 60 s write timeout.
		{"erase-wait", eraseWait, 100 * time.Millisecond, 45 * time.Second, &cfg.EraseWait},
		// Renewed every half lease: 1ns made a zero ticker and a panic, and
		// anything under a transaction's length lets replicas take the same
		// erasure from each other; past an hour a dead replica's erasure or
		// app removal waits that long.
		{"erase-lease", eraseLease, time.Second, time.Hour, &cfg.EraseLease},
		// Every event waits it when traffic is light: 1h held each trigger
		// an hour, past its commit deadline and the write timeout.
		{"write-delay", writeDelay, 0, time.Second, &cfg.WriteDelay},
		// How long a revoked credential keeps working on other replicas,
		// under the 15 minutes of an access token.
		{"cache-ttl", cacheTTL, 0, 10 * time.Minute, &cfg.CacheTTL},
		// Under 1s every request in flight is cut off at SIGTERM.
		{"shutdown-timeout", shutdown, time.Second, time.Hour, &cfg.ShutdownTimeout},
		// Doubled up to 8h: a longer first wait would be 8h anyway.
		{"webhook-backoff", hookBackoff, 100 * time.Millisecond, 8 * time.Hour, &cfg.Webhooks.Backoff},
		// An attempt's lease is twice this plus 5s: 2000000h overflowed it
		// to a negative lease, which any replica would take at once.
		{"webhook-timeout", hookTimeout, time.Second, time.Hour, &cfg.Webhooks.Timeout},
		// Pruned hourly; the log keeps every delivery this long, so a
		// typo such as 720000h for 720h kept it forever.
		{"webhook-log-retention", hookRetention, time.Hour, 365 * 24 * time.Hour, &cfg.Webhooks.Retention},
	} {
		*d.to, err = durationIn(d.value, d.min, d.max)
		check(d.flag, err)
	}
	check("log-level", cfg.LogLevel.UnmarshalText([]byte(logLevel)))
	cfg.Webhooks.Guard.AllowPrivate = cfg.Development
	if hookPrivate != "" {
		cfg.Webhooks.Guard.AllowPrivate, err = strconv.ParseBool(hookPrivate)
		check("webhook-allow-private", err)
	}
	cfg.Webhooks.Workers, err = intIn(hookWorkers, 1, maxWebhookWorkers)
	check("webhook-workers", err)
	// No rule has more attempts in flight than there are workers; 2^62
	// doubled, as the per-rule queue cap is (Dispatcher.queueCap), to a
	// negative number.
	cfg.Webhooks.PerRule, err = intIn(hookPerRule, 1, maxWebhookWorkers)
	check("webhook-per-rule", err)
	if rate, err := strconv.ParseFloat(hookRate, 64); err != nil || rate != 0 && !(rate >= minRate && rate <= maxWebhookRate) { // NaN is neither
		check("webhook-rate", fmt.Errorf("%q is not a number of attempts a second from %s to %s, or 0 for no cap", hookRate, number(minRate), number(maxWebhookRate)))
	} else if rate == 0 {
		cfg.Webhooks.Rate = -1
	} else {
		cfg.Webhooks.Rate = rate
	}
	cfg.Webhooks.MaxAttempts, err = intIn(hookAttempts, 1, maxWebhookAttempts)
	check("webhook-attempts", err)
	if cfg.MetricsToken != "" && len(cfg.MetricsToken) < 16 {
		check("metrics-token", errors.New("must be at least 16 characters"))
	}
	if cfg.LogFormat != "json" && cfg.LogFormat != "text" {
		check("log-format", errors.New("must be json or text"))
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("invalid settings: %s", strings.Join(errs, "; "))
	}
	return &cfg, nil
}

// signingSecrets returns the token signing secrets, current first. Without
// one, development mode makes a throwaway key and production refuses to start.
func signingSecrets(current, previous string, development bool) ([][]byte, error) {
	if current == "" {
		if !development {
			return nil, fmt.Errorf("production mode needs CRUMBS_JWT_SECRET of at least %d bytes (e.g. openssl rand -hex 32)", models.MinSigningKeyBytes)
		}
		key := make([]byte, 32)
		rand.Read(key)
		return [][]byte{key}, nil
	}
	secrets := [][]byte{[]byte(current)}
	for p := range strings.SplitSeq(previous, ",") {
		if p = strings.TrimSpace(p); p != "" {
			secrets = append(secrets, []byte(p))
		}
	}
	for i, s := range secrets {
		if len(s) < models.MinSigningKeyBytes {
			return nil, fmt.Errorf("signing secret %d has %d bits; at least 256 are needed", i+1, len(s)*8)
		}
	}
	return secrets, nil
}

func parseProxies(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for p := range strings.SplitSeq(s, ",") {
		if p = strings.TrimSpace(p); p == "" {
			continue
		}
		if !strings.Contains(p, "/") {
			addr, err := netip.ParseAddr(p)
			if err != nil {
				return nil, err
			}
			out = append(out, netip.PrefixFrom(addr, addr.BitLen()))
			continue
		}
		prefix, err := netip.ParsePrefix(p)
		if err != nil {
			return nil, err
		}
		out = append(out, prefix.Masked())
	}
	return out, nil
}

// parseOrigins reads comma-separated origins (scheme://host[:port]) and
// returns them lowercased, as browsers send them in the Origin header.
func parseOrigins(s string) ([]string, error) {
	var out []string
	for o := range strings.SplitSeq(s, ",") {
		if o = strings.TrimSpace(o); o == "" {
			continue
		}
		u, err := url.Parse(o)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || !validHost(u.Hostname()) || u.User != nil ||
			(u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
			return nil, fmt.Errorf("%q is not an origin such as https://dash.example.com", o)
		}
		out = append(out, strings.ToLower(u.Scheme+"://"+u.Host))
	}
	return out, nil
}

// validHost accepts a DNS name or an IP address.
func validHost(h string) bool {
	if _, err := netip.ParseAddr(h); err == nil {
		return true
	}
	return h != "" && strings.Trim(h, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-") == ""
}

// parseRate reads "rate/burst" ("10/40"), or "0" for no limit.
func parseRate(s string) (models.Rate, error) {
	bad := fmt.Errorf("%q is not rate/burst, e.g. 10/40, with a rate from %s to %s a second and a burst from 1 to %d, or 0", s, number(minRate), number(maxRate), maxBurst)
	perSecond, burst, _ := strings.Cut(s, "/")
	r, err := strconv.ParseFloat(perSecond, 64)
	if err != nil || r != 0 && !(r >= minRate && r <= maxRate) { // NaN is neither
		return models.Rate{}, bad
	}
	if r == 0 {
		return models.Rate{}, nil
	}
	b := min(int(2*r), maxBurst)
	if burst != "" {
		if b, err = strconv.Atoi(burst); err != nil || b < 1 || b > maxBurst {
			return models.Rate{}, bad
		}
	}
	return models.Rate{PerSecond: r, Burst: max(b, 1)}, nil
}

// Upper bounds of settings that size goroutines, connections or buffers:
// 10^9 writers or webhook workers started as many goroutines (the writers
// as many connections), or made channels as long, and took the host down
// instead of refusing to start.
const (
	maxWriters        = 64
	maxWriteBatch     = 20000
	maxWebhookWorkers = 1024
	// The pool is also MySQL's: each connection is a thread on the
	// database (whose max_connections is 151 by default) and a socket here.
	maxDBConns = 1000
)

// Bounds of the GraphQL limits, the cost one request may ask of the
// server. A document nests its brackets at most 64 deep
// (graph.DefaultDocumentLimits): a deeper limit bounds only what fragments
// nest. The dashboard's deepest query (a lead's timeline) is 6 fields deep.
// Complexity bounds the rows one request reads: 100,000 is 200 full pages
// of 500 events with one field, or about six with thirty fields.
const (
	maxQueryDepth      = 64
	maxQueryComplexity = 100000
)

// Caps whose 0 means none: past a million sockets (some 37 KB each, 37 GB)
// a cap no longer bounds anything, and a larger value is a typo.
const maxWebsocketCap = 1000000

// Rates, per second. The limiter counts the interval between two tokens,
// and a burst of them, in int64 nanoseconds: a rate of 1e-300 made the
// interval negative, which lifted the limit, and 50/500000000000 overflowed
// the burst to a negative allowance that refused every trigger. Under a
// thousandth (one every 17 minutes) a rate is hardly a rate; past a million
// triggers a second from one IP, or 10,000 webhook attempts a second per
// rule, it is no cap, which 0 says.
const (
	minRate        = 0.001
	maxRate        = 1e6
	maxBurst       = 1000000
	maxWebhookRate = 1e4
)

// Attempts of a webhook delivery: each failure waits up to 8h, so 100
// attempts already span up to 33 days (99 waits of 8h); 10^9 never
// dead-lettered a delivery whose receiver is gone, and kept an attempt row
// of it every 8 hours.
const maxWebhookAttempts = 100

// number writes 1000000 rather than fmt's 1e+06.
func number(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }

// intIn parses a whole number from min to max, both included.
func intIn(s string, min, max int) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil || n < min || n > max {
		return 0, fmt.Errorf("%q is not a whole number from %d to %d", s, min, max)
	}
	return n, nil
}

// durationIn parses a duration from min to max, both included.
func durationIn(s string, min, max time.Duration) (time.Duration, error) {
	d, err := time.ParseDuration(s)
	if err != nil || d < min || d > max {
		return 0, fmt.Errorf("%q is not a duration from %s to %s", s, shortDuration(min), shortDuration(max))
	}
	return d, nil
}

// shortDuration writes 10m rather than time's 10m0s.
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// Request bodies and websocket messages: under 1 KiB a dashboard query or
// a connection_init with its token no longer fits; past 64 MiB (32 times
// the default) a body held in memory, or inflated from a gzipped one, is
// no longer a request but a way to exhaust the server.
const (
	minBodyBytes = 1 << 10
	maxBodyBytes = 64 << 20
)

// sizeIn parses a number of bytes from min to max, both included.
func sizeIn(s string, min, max int64) (int64, error) {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < min || n > max {
		return 0, fmt.Errorf("%q is not a number of bytes from %d to %d", s, min, max)
	}
	return n, nil
}

// envName is the CRUMBS_* variable of a flag: write-delay is CRUMBS_WRITE_DELAY.
func envName(flag string) string {
	return "CRUMBS_" + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

// logErrorText writes errors by models.LogText, which leaves out the values
// the database quotes in its messages.
func logErrorText(_ []string, a slog.Attr) slog.Attr {
	if err, ok := a.Value.Any().(error); ok && a.Value.Kind() == slog.KindAny {
		return slog.String(a.Key, models.LogText(err))
	}
	return a
}

func (c *config) logger(w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: c.LogLevel, ReplaceAttr: logErrorText}
	var h slog.Handler = slog.NewJSONHandler(w, opts)
	if c.LogFormat == "text" {
		h = slog.NewTextHandler(w, opts)
	}
	return slog.New(throttleStoreFaults(h, time.Second))
}
