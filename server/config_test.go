package main

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// A bad CRUMBS_* value stops the real server before it opens the store,
// with exit status 1 and a message naming the variable. Negative
// durations, zero or negative shutdown grace, and non-finite rates used to
// be taken as they were: CRUMBS_SHUTDOWN_TIMEOUT=-1s started a server that
// cut off every request in flight at SIGTERM.
func TestBadSettingsStopTheServer(t *testing.T) {
	bin := buildServer(t)
	for _, c := range []struct{ name, value string }{
		{"CRUMBS_WRITE_DELAY", "-5ms"},
		{"CRUMBS_WRITE_DELAY", "1h"},
		{"CRUMBS_WRITE_DELAY", "1001ms"},
		{"CRUMBS_CACHE_TTL", "-1s"},
		{"CRUMBS_SHUTDOWN_TIMEOUT", "-1s"},
		{"CRUMBS_SHUTDOWN_TIMEOUT", "0s"},
		{"CRUMBS_SHUTDOWN_TIMEOUT", "soon"},
		{"CRUMBS_RATE_IP", "NaN"},
		{"CRUMBS_RATE_DEVICE", "Inf/10"},
		{"CRUMBS_RATE_DEVICE", "-1"},
		{"CRUMBS_DB_TIMEOUT", "garbage"},
		{"CRUMBS_DB_TIMEOUT", "-10s"},
		{"CRUMBS_WRITE_BATCH", "99999999999999999999"},
		{"CRUMBS_WRITERS", "0"},
		{"CRUMBS_WRITERS", "1000000000"},
		{"CRUMBS_WRITERS", "65"},
		{"CRUMBS_WRITE_BATCH", "1000000000"},
		{"CRUMBS_WRITE_BATCH", "20001"},
		{"CRUMBS_WEBHOOK_WORKERS", "1000000000"},
		{"CRUMBS_WEBHOOK_WORKERS", "1025"},
		{"CRUMBS_LIFECYCLE_INTERVAL", "1ns"},
		{"CRUMBS_LIFECYCLE_INTERVAL", "59s"},
		{"CRUMBS_ERASE_LEASE", "1ns"},
		{"CRUMBS_ERASE_LEASE", "500ms"},
		{"CRUMBS_WEBHOOK_TIMEOUT", "2000000h"},
		{"CRUMBS_DB_TIMEOUT", "300h"},
		{"CRUMBS_DB_TIMEOUT", "10ms"},
		{"CRUMBS_CACHE_TTL", "2562047h"},
		{"CRUMBS_MAX_BODY_BYTES", "10000000000"},
		{"CRUMBS_MAX_BODY_BYTES", "10GB"},
		{"CRUMBS_MAX_BODY_BYTES", "2"},
		{"CRUMBS_SHUTDOWN_TIMEOUT", "100h"},
		{"CRUMBS_LIFECYCLE_INTERVAL", "720h"},
		{"CRUMBS_ERASE_LEASE", "2h"},
		{"CRUMBS_ERASE_WAIT", "1ms"},
		{"CRUMBS_WEBHOOK_BACKOFF", "9h"},
		{"CRUMBS_WEBHOOK_TIMEOUT", "10ms"},
		{"CRUMBS_WEBHOOK_LOG_RETENTION", "2000000h"},
		{"CRUMBS_WEBHOOK_LOG_RETENTION", "1m"},
		{"CRUMBS_LOG_LEVEL", "loud"},
		{"CRUMBS_LOG_FORMAT", "xml"},
		{"CRUMBS_ENV", "prod"},
		{"CRUMBS_WEBHOOK_RATE", "-1"},
		{"CRUMBS_METRICS_TOKEN", "short"},
		{"CRUMBS_MAX_DEPTH", "0"},
		{"CRUMBS_MAX_DEPTH", "65"},
		{"CRUMBS_MAX_COMPLEXITY", "100001"},
		{"CRUMBS_MAX_COMPLEXITY", "1000000000"},
		{"CRUMBS_DB_MAX_CONNS", "1001"},
		{"CRUMBS_WEBHOOK_PER_RULE", "1025"},
		{"CRUMBS_WEBHOOK_PER_RULE", "4611686018427387904"},
		{"CRUMBS_WEBHOOK_RATE", "10001"},
		{"CRUMBS_WEBHOOK_RATE", "1e-300"},
		{"CRUMBS_WEBHOOK_ATTEMPTS", "101"},
		{"CRUMBS_WEBHOOK_ATTEMPTS", "1000000000"},
		{"CRUMBS_MAX_ANONYMOUS_WEBSOCKETS", "1000001"},
		{"CRUMBS_MAX_PENDING_WEBSOCKETS_PER_IP", "-1"},
		{"CRUMBS_RATE_IP", "50/500000000000"},
		{"CRUMBS_RATE_DEVICE", "1e-300"},
	} {
		t.Run(c.name+"="+c.value, func(t *testing.T) {
			dir := t.TempDir()
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, bin) // killed, by its pid, if it serves
			cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"),
				"CRUMBS_ADDR=127.0.0.1:0", "CRUMBS_DATABASE_URL=sqlite:" + filepath.Join(dir, "crumbs.db"),
				c.name + "=" + c.value}
			out, err := cmd.CombinedOutput()
			if ctx.Err() != nil {
				t.Fatalf("the server started with %s=%s:\n%s", c.name, c.value, out)
			}
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.ExitCode() != 1 {
				t.Fatalf("exit %v, want status 1; output:\n%s", err, out)
			}
			if !strings.Contains(string(out), c.name) {
				t.Errorf("the message does not name %s:\n%s", c.name, out)
			}
			if _, err := os.Stat(filepath.Join(dir, "crumbs.db")); err == nil {
				t.Errorf("the store was opened before the settings were checked")
			}
		})
	}
}

// The bounds themselves are accepted: only values past them stop the
// server (TestBadSettingsStopTheServer).
func TestSettingsAtTheirBoundsAccepted(t *testing.T) {
	for _, env := range []map[string]string{
		{"CRUMBS_WRITERS": "64", "CRUMBS_WRITE_BATCH": "20000", "CRUMBS_WEBHOOK_WORKERS": "1024", "CRUMBS_LIFECYCLE_INTERVAL": "1m", "CRUMBS_WRITE_DELAY": "1s",
			"CRUMBS_DB_TIMEOUT": "10m", "CRUMBS_CACHE_TTL": "10m", "CRUMBS_MAX_BODY_BYTES": "67108864", "CRUMBS_SHUTDOWN_TIMEOUT": "1h", "CRUMBS_ERASE_LEASE": "1h",
			"CRUMBS_ERASE_WAIT": "45s", "CRUMBS_WEBHOOK_BACKOFF": "8h", "CRUMBS_WEBHOOK_TIMEOUT": "1h", "CRUMBS_WEBHOOK_LOG_RETENTION": "8760h",
			"CRUMBS_MAX_DEPTH": "64", "CRUMBS_MAX_COMPLEXITY": "100000", "CRUMBS_DB_MAX_CONNS": "1000", "CRUMBS_WEBHOOK_PER_RULE": "1024", "CRUMBS_WEBHOOK_RATE": "10000",
			"CRUMBS_WEBHOOK_ATTEMPTS": "100", "CRUMBS_MAX_ANONYMOUS_WEBSOCKETS": "1000000", "CRUMBS_MAX_WEBSOCKETS_PER_CREDENTIAL": "1000000",
			"CRUMBS_MAX_PENDING_WEBSOCKETS": "1000000", "CRUMBS_MAX_PENDING_WEBSOCKETS_PER_IP": "1000000", "CRUMBS_RATE_IP": "1000000/1000000", "CRUMBS_RATE_DEVICE": "1000000/1000000"},
		{"CRUMBS_LIFECYCLE_INTERVAL": "24h", "CRUMBS_DB_TIMEOUT": "1s", "CRUMBS_MAX_BODY_BYTES": "1024", "CRUMBS_SHUTDOWN_TIMEOUT": "1s", "CRUMBS_ERASE_LEASE": "1s",
			"CRUMBS_ERASE_WAIT": "100ms", "CRUMBS_WEBHOOK_BACKOFF": "100ms", "CRUMBS_WEBHOOK_TIMEOUT": "1s", "CRUMBS_WEBHOOK_LOG_RETENTION": "1h",
			"CRUMBS_MAX_DEPTH": "1", "CRUMBS_MAX_COMPLEXITY": "1", "CRUMBS_DB_MAX_CONNS": "1", "CRUMBS_WEBHOOK_PER_RULE": "1", "CRUMBS_WEBHOOK_RATE": "0.001",
			"CRUMBS_WEBHOOK_ATTEMPTS": "1", "CRUMBS_MAX_ANONYMOUS_WEBSOCKETS": "0", "CRUMBS_MAX_WEBSOCKETS_PER_CREDENTIAL": "0",
			"CRUMBS_MAX_PENDING_WEBSOCKETS": "0", "CRUMBS_MAX_PENDING_WEBSOCKETS_PER_IP": "0", "CRUMBS_RATE_IP": "0.001/1", "CRUMBS_RATE_DEVICE": "0.001/1"},
	} {
		cfg, err := parseConfig(nil, func(k string) string { return env[k] }, &strings.Builder{})
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]string{
			"CRUMBS_WRITERS": strconv.Itoa(cfg.Writers), "CRUMBS_WRITE_BATCH": strconv.Itoa(cfg.WriteBatch), "CRUMBS_WEBHOOK_WORKERS": strconv.Itoa(cfg.Webhooks.Workers),
			"CRUMBS_MAX_BODY_BYTES": strconv.FormatInt(cfg.MaxBodyBytes, 10),
			"CRUMBS_MAX_DEPTH":      strconv.Itoa(cfg.MaxDepth), "CRUMBS_MAX_COMPLEXITY": strconv.Itoa(cfg.MaxComplexity), "CRUMBS_DB_MAX_CONNS": strconv.Itoa(cfg.DBMaxConns),
			"CRUMBS_WEBHOOK_PER_RULE": strconv.Itoa(cfg.Webhooks.PerRule), "CRUMBS_WEBHOOK_RATE": strconv.FormatFloat(cfg.Webhooks.Rate, 'f', -1, 64),
			"CRUMBS_WEBHOOK_ATTEMPTS": strconv.Itoa(cfg.Webhooks.MaxAttempts), "CRUMBS_MAX_ANONYMOUS_WEBSOCKETS": strconv.Itoa(cfg.MaxAnonymousWebsockets),
			"CRUMBS_MAX_WEBSOCKETS_PER_CREDENTIAL": strconv.Itoa(cfg.MaxWebsocketsPerCredential), "CRUMBS_MAX_PENDING_WEBSOCKETS": strconv.Itoa(cfg.MaxPendingWebsockets),
			"CRUMBS_MAX_PENDING_WEBSOCKETS_PER_IP": strconv.Itoa(cfg.MaxPendingWebsocketsPerIP),
			"CRUMBS_RATE_IP":                       strconv.FormatFloat(cfg.RatePerIP.PerSecond, 'f', -1, 64) + "/" + strconv.Itoa(cfg.RatePerIP.Burst),
			"CRUMBS_RATE_DEVICE":                   strconv.FormatFloat(cfg.RatePerDevice.PerSecond, 'f', -1, 64) + "/" + strconv.Itoa(cfg.RatePerDevice.Burst),
		}
		for name, d := range map[string]time.Duration{
			"CRUMBS_LIFECYCLE_INTERVAL": cfg.LifecycleInterval, "CRUMBS_WRITE_DELAY": cfg.WriteDelay, "CRUMBS_DB_TIMEOUT": cfg.DBTimeout,
			"CRUMBS_CACHE_TTL": cfg.CacheTTL, "CRUMBS_SHUTDOWN_TIMEOUT": cfg.ShutdownTimeout, "CRUMBS_ERASE_LEASE": cfg.EraseLease, "CRUMBS_ERASE_WAIT": cfg.EraseWait,
			"CRUMBS_WEBHOOK_BACKOFF": cfg.Webhooks.Backoff, "CRUMBS_WEBHOOK_TIMEOUT": cfg.Webhooks.Timeout, "CRUMBS_WEBHOOK_LOG_RETENTION": cfg.Webhooks.Retention,
		} {
			got[name] = d.String()
			if value, ok := env[name]; ok {
				d, _ := time.ParseDuration(value)
				env[name] = d.String()
			}
		}
		for name, want := range env {
			if got[name] != want {
				t.Errorf("%s=%s: got %s", name, want, got[name])
			}
		}
	}
}

// A value past its range is refused with the variable, the value and the
// range, so that the operator sees what to type instead.
func TestOutOfRangeSettingsNameTheRange(t *testing.T) {
	for _, c := range []struct{ name, value, want string }{
		{"CRUMBS_DB_TIMEOUT", "300h", `db-timeout (CRUMBS_DB_TIMEOUT): "300h" is not a duration from 1s to 10m`},
		{"CRUMBS_CACHE_TTL", "2h", `cache-ttl (CRUMBS_CACHE_TTL): "2h" is not a duration from 0s to 10m`},
		{"CRUMBS_MAX_BODY_BYTES", "10000000000", `max-body-bytes (CRUMBS_MAX_BODY_BYTES): "10000000000" is not a number of bytes from 1024 to 67108864`},
		{"CRUMBS_MAX_BODY_BYTES", "10GB", `max-body-bytes (CRUMBS_MAX_BODY_BYTES): "10GB" is not a number of bytes from 1024 to 67108864`},
		{"CRUMBS_SHUTDOWN_TIMEOUT", "-1s", `shutdown-timeout (CRUMBS_SHUTDOWN_TIMEOUT): "-1s" is not a duration from 1s to 1h`},
		{"CRUMBS_LIFECYCLE_INTERVAL", "59s", `lifecycle-interval (CRUMBS_LIFECYCLE_INTERVAL): "59s" is not a duration from 1m to 24h`},
		{"CRUMBS_ERASE_WAIT", "46s", `erase-wait (CRUMBS_ERASE_WAIT): "46s" is not a duration from 100ms to 45s`},
		{"CRUMBS_ERASE_LEASE", "61m", `erase-lease (CRUMBS_ERASE_LEASE): "61m" is not a duration from 1s to 1h`},
		{"CRUMBS_WRITE_DELAY", "2s", `write-delay (CRUMBS_WRITE_DELAY): "2s" is not a duration from 0s to 1s`},
		{"CRUMBS_WEBHOOK_BACKOFF", "1ms", `webhook-backoff (CRUMBS_WEBHOOK_BACKOFF): "1ms" is not a duration from 100ms to 8h`},
		{"CRUMBS_WEBHOOK_TIMEOUT", "2h", `webhook-timeout (CRUMBS_WEBHOOK_TIMEOUT): "2h" is not a duration from 1s to 1h`},
		{"CRUMBS_WEBHOOK_LOG_RETENTION", "8761h", `webhook-log-retention (CRUMBS_WEBHOOK_LOG_RETENTION): "8761h" is not a duration from 1h to 8760h`},
		{"CRUMBS_MAX_DEPTH", "65", `max-depth (CRUMBS_MAX_DEPTH): "65" is not a whole number from 1 to 64`},
		{"CRUMBS_MAX_COMPLEXITY", "100001", `max-complexity (CRUMBS_MAX_COMPLEXITY): "100001" is not a whole number from 1 to 100000`},
		{"CRUMBS_DB_MAX_CONNS", "1001", `db-max-conns (CRUMBS_DB_MAX_CONNS): "1001" is not a whole number from 1 to 1000`},
		{"CRUMBS_WRITERS", "65", `writers (CRUMBS_WRITERS): "65" is not a whole number from 1 to 64`},
		{"CRUMBS_WRITE_BATCH", "20001", `write-batch (CRUMBS_WRITE_BATCH): "20001" is not a whole number from 1 to 20000`},
		{"CRUMBS_WEBHOOK_WORKERS", "1025", `webhook-workers (CRUMBS_WEBHOOK_WORKERS): "1025" is not a whole number from 1 to 1024`},
		{"CRUMBS_WEBHOOK_PER_RULE", "1025", `webhook-per-rule (CRUMBS_WEBHOOK_PER_RULE): "1025" is not a whole number from 1 to 1024`},
		{"CRUMBS_WEBHOOK_ATTEMPTS", "101", `webhook-attempts (CRUMBS_WEBHOOK_ATTEMPTS): "101" is not a whole number from 1 to 100`},
		{"CRUMBS_WEBHOOK_RATE", "10001", `webhook-rate (CRUMBS_WEBHOOK_RATE): "10001" is not a number of attempts a second from 0.001 to 10000, or 0 for no cap`},
		{"CRUMBS_WEBHOOK_RATE", "NaN", `webhook-rate (CRUMBS_WEBHOOK_RATE): "NaN" is not a number of attempts a second from 0.001 to 10000, or 0 for no cap`},
		{"CRUMBS_WEBHOOK_RATE", "0.0009", `webhook-rate (CRUMBS_WEBHOOK_RATE): "0.0009" is not a number of attempts a second from 0.001 to 10000, or 0 for no cap`},
		{"CRUMBS_MAX_ANONYMOUS_WEBSOCKETS", "1000001", `max-anonymous-websockets (CRUMBS_MAX_ANONYMOUS_WEBSOCKETS): "1000001" is not a whole number from 0 to 1000000`},
		{"CRUMBS_MAX_WEBSOCKETS_PER_CREDENTIAL", "1000001", `max-websockets-per-credential (CRUMBS_MAX_WEBSOCKETS_PER_CREDENTIAL): "1000001" is not a whole number from 0 to 1000000`},
		{"CRUMBS_MAX_PENDING_WEBSOCKETS", "1000001", `max-pending-websockets (CRUMBS_MAX_PENDING_WEBSOCKETS): "1000001" is not a whole number from 0 to 1000000`},
		{"CRUMBS_MAX_PENDING_WEBSOCKETS_PER_IP", "1000001", `max-pending-websockets-per-ip (CRUMBS_MAX_PENDING_WEBSOCKETS_PER_IP): "1000001" is not a whole number from 0 to 1000000`},
		{"CRUMBS_RATE_IP", "1000001", `rate-ip (CRUMBS_RATE_IP): "1000001" is not rate/burst, e.g. 10/40, with a rate from 0.001 to 1000000 a second and a burst from 1 to 1000000, or 0`},
		{"CRUMBS_RATE_IP", "50/1000001", `rate-ip (CRUMBS_RATE_IP): "50/1000001" is not rate/burst`},
		{"CRUMBS_RATE_DEVICE", "0.0009/1", `rate-device (CRUMBS_RATE_DEVICE): "0.0009/1" is not rate/burst`},
	} {
		_, err := parseConfig(nil, func(k string) string {
			if k == c.name {
				return c.value
			}
			return ""
		}, &strings.Builder{})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s=%s: %v, want %q", c.name, c.value, err, c.want)
		}
	}
}

// An empty variable is unset, as a docker-compose "CRUMBS_DB_TIMEOUT="
// line leaves it: the default applies (README says so).
func TestEmptySettingsTakeTheirDefaults(t *testing.T) {
	cfg, err := parseConfig(nil, func(string) string { return "" }, &strings.Builder{})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.DBTimeout != 10*time.Second || cfg.CacheTTL != 2*time.Second || cfg.MaxBodyBytes != 2<<20 || cfg.ShutdownTimeout != 15*time.Second {
		t.Errorf("got db timeout %v, cache ttl %v, body %d, shutdown %v", cfg.DBTimeout, cfg.CacheTTL, cfg.MaxBodyBytes, cfg.ShutdownTimeout)
	}
}

// Zero is a setting of its own where it means "none": no extra wait to
// grow a group commit, no cache between replicas.
func TestZeroSettingsAccepted(t *testing.T) {
	env := map[string]string{"CRUMBS_WRITE_DELAY": "0s", "CRUMBS_CACHE_TTL": "0", "CRUMBS_RATE_IP": "0"}
	cfg, err := parseConfig(nil, func(k string) string { return env[k] }, &strings.Builder{})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.WriteDelay != 0 || cfg.CacheTTL != 0 || cfg.RatePerIP.PerSecond != 0 {
		t.Errorf("got delay %v, ttl %v, rate %v; want all 0", cfg.WriteDelay, cfg.CacheTTL, cfg.RatePerIP)
	}
}

// Asking for help is not a failure: the real binary prints the usage and
// exits 0. -h used to end with "crumbs: flag: help requested" and status 1,
// and "admin -h" with "unknown command".
func TestHelpExitsZero(t *testing.T) {
	bin := buildServer(t)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"-h"}, "CRUMBS_SHUTDOWN_TIMEOUT"},
		{[]string{"-h"}, "crumbs admin COMMAND"},
		{[]string{"admin", "-h"}, "usage: crumbs admin COMMAND"},
		{[]string{"admin", "help"}, "usage: crumbs admin COMMAND"},
		{[]string{"admin", "backup", "-h"}, "-to"},
	} {
		cmd := exec.Command(bin, c.args...)
		cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"), "CRUMBS_DATABASE_URL=sqlite:" + filepath.Join(t.TempDir(), "crumbs.db")}
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), c.want) || strings.Contains(string(out), "crumbs: ") {
			t.Errorf("crumbs %s: %v, want exit 0 and the usage (%q):\n%s", strings.Join(c.args, " "), err, c.want, out)
		}
	}
	// Wrong arguments stay failures.
	for _, args := range [][]string{{"admin"}, {"admin", "frobnicate"}, {"admin", "list-users", "extra"}, {"-no-such-flag"}, {"stray"}} {
		cmd := exec.Command(bin, args...)
		cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"), "CRUMBS_ADDR=127.0.0.1:0", "CRUMBS_DATABASE_URL=sqlite:" + filepath.Join(t.TempDir(), "crumbs.db")}
		if out, err := cmd.CombinedOutput(); err == nil {
			t.Errorf("crumbs %s: exit 0, want a failure:\n%s", strings.Join(args, " "), out)
		}
	}
}

// A mistyped flag makes the flag package print every flag with its
// default to stderr, which is the server's log. The defaults came from the
// environment, so the usage carried the token signing secret, the metrics
// token and the database password. Secrets are now read from the
// environment after parsing and never shown.
func TestUsageShowsNoSecrets(t *testing.T) {
	bin := buildServer(t)
	secrets := []string{"jwt-signing-secret-c0ffee-0123456789abcdef", "old-signing-secret-c0ffee-0123456789abcdef", "metrics-token-c0ffee-0123", "dbpass-c0ffee"}
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"),
		"CRUMBS_JWT_SECRET=" + secrets[0], "CRUMBS_JWT_PREVIOUS_SECRETS=" + secrets[1], "CRUMBS_METRICS_TOKEN=" + secrets[2],
		"CRUMBS_DATABASE_URL=mysql://crumbs:" + secrets[3] + "@127.0.0.1:1/crumbs"}
	for _, args := range [][]string{{"-adr", ":1"}, {"-h"}, {"admin", "list-users", "-databse-url", "x"}, {"admin", "create", "-h"}} {
		cmd := exec.Command(bin, args...)
		cmd.Env = env
		out, _ := cmd.CombinedOutput()
		if !strings.Contains(string(out), "-database-url") {
			t.Fatalf("crumbs %s printed no usage:\n%s", strings.Join(args, " "), out)
		}
		for _, s := range secrets {
			if strings.Contains(string(out), s) {
				t.Errorf("crumbs %s printed the secret %s:\n%s", strings.Join(args, " "), s, out)
			}
		}
	}
	// The environment still sets them, and a flag still wins.
	vars := map[string]string{"CRUMBS_ENV": "production", "CRUMBS_JWT_SECRET": secrets[0], "CRUMBS_METRICS_TOKEN": secrets[2], "CRUMBS_DATABASE_URL": "sqlite:env.db"}
	cfg, err := parseConfig([]string{"-database-url", "sqlite:flag.db"}, func(k string) string { return vars[k] }, &strings.Builder{})
	if err != nil {
		t.Fatal(err)
	}
	if string(cfg.JWTSecrets[0]) != secrets[0] || cfg.MetricsToken != secrets[2] || cfg.DatabaseURL != "sqlite:flag.db" {
		t.Errorf("got secret %q, token %q, database %q", cfg.JWTSecrets[0], cfg.MetricsToken, cfg.DatabaseURL)
	}
	cfg, err = parseConfig(nil, func(k string) string { return vars[k] }, &strings.Builder{})
	if err != nil || cfg.DatabaseURL != "sqlite:env.db" {
		t.Errorf("database from the environment: %v %v", cfg, err)
	}
}

// A database URL the server cannot use is refused without its password:
// the refusal is the last line of the server's log. url.Parse's errors
// repeated the whole URL, so "invalid port" printed mysql://u:pw@...
func TestDatabaseURLErrorsHideThePassword(t *testing.T) {
	bin := buildServer(t)
	const pw = "s3cret-pw-c0ffee"
	for _, u := range []string{
		"mysql://crumbs:" + pw + "@127.0.0.1:badport/crumbs",
		"mysql://crumbs:" + pw + "%zz@127.0.0.1/crumbs",
		"postgres://crumbs:" + pw + "%zz@127.0.0.1/crumbs",
		"postgres://crumbs:" + pw + "@127.0.0.1/crumbs",
	} {
		cmd := exec.Command(bin)
		cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"), "CRUMBS_ADDR=127.0.0.1:0", "CRUMBS_DATABASE_URL=" + u}
		out, err := cmd.CombinedOutput()
		if err == nil || !strings.Contains(string(out), "database url") {
			t.Errorf("%s: %v, want a refusal of the database url:\n%s", u, err, out)
		}
		if strings.Contains(string(out), pw) {
			t.Errorf("the refusal of %s shows the password:\n%s", u, out)
		}
	}
}
