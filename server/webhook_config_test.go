package main

import (
	"context"
	"io"
	"log/slog"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/crumbs-dev/crumbs/models"
	"github.com/crumbs-dev/crumbs/models/modelstest"
	"github.com/crumbs-dev/crumbs/server/metrics"
)

// The automation caps are set per rule (CRUMBS_WEBHOOK_PER_RULE,
// CRUMBS_WEBHOOK_RATE), by flag or environment, the flag winning.
func TestWebhookCapsPerRuleConfig(t *testing.T) {
	for _, c := range []struct {
		args    []string
		env     map[string]string
		perRule int
		rate    float64
	}{
		{nil, nil, 4, 10},
		{nil, map[string]string{"CRUMBS_WEBHOOK_PER_RULE": "2", "CRUMBS_WEBHOOK_RATE": "0.5"}, 2, 0.5},
		{[]string{"-webhook-per-rule", "7", "-webhook-rate", "0"}, map[string]string{"CRUMBS_WEBHOOK_PER_RULE": "2"}, 7, -1},
	} {
		cfg, err := parseConfig(c.args, func(k string) string { return c.env[k] }, io.Discard)
		if err != nil {
			t.Fatalf("%v %v: %v", c.args, c.env, err)
		}
		if cfg.Webhooks.PerRule != c.perRule || cfg.Webhooks.Rate != c.rate {
			t.Errorf("%v %v: per rule %d, rate %v; want %d, %v", c.args, c.env, cfg.Webhooks.PerRule, cfg.Webhooks.Rate, c.perRule, c.rate)
		}
	}
	for _, bad := range []string{"0", "-1", "x"} {
		if _, err := parseConfig([]string{"-webhook-per-rule", bad}, func(string) string { return "" }, io.Discard); err == nil {
			t.Errorf("-webhook-per-rule %s accepted", bad)
		}
	}
}

// CRUMBS_WEBHOOK_ALLOW_PRIVATE defaults by mode: production refuses
// delivery URLs on loopback, private and link-local networks unless it is
// true; development (the default mode, and what tests run) allows them
// unless it is false; the flag wins over the environment. The setting
// reaches the guard the server's resolvers save URLs under and its
// dispatcher sends under. The other webhook settings default to the
// dispatcher's defaults, the attempt timeout to 10 s.
func TestWebhookDefaultsByMode(t *testing.T) {
	production := map[string]string{"CRUMBS_ENV": "production", "CRUMBS_JWT_SECRET": testJWTSecret}
	with := func(env map[string]string, k, v string) map[string]string {
		out := maps.Clone(env)
		if out == nil {
			out = map[string]string{}
		}
		out[k] = v
		return out
	}
	db := modelstest.SQLite(t)
	for _, c := range []struct {
		env   map[string]string
		args  []string
		allow bool
	}{
		{production, nil, false},
		{with(production, "CRUMBS_WEBHOOK_ALLOW_PRIVATE", "true"), nil, true},
		{with(production, "CRUMBS_WEBHOOK_ALLOW_PRIVATE", "false"), nil, false},
		{production, []string{"-webhook-allow-private=true"}, true},
		{with(production, "CRUMBS_WEBHOOK_ALLOW_PRIVATE", "true"), []string{"-webhook-allow-private=false"}, false},
		{nil, nil, true},
		{map[string]string{"CRUMBS_ENV": "development"}, nil, true},
		{map[string]string{"CRUMBS_ENV": "development", "CRUMBS_WEBHOOK_ALLOW_PRIVATE": "false"}, nil, false},
	} {
		cfg, err := parseConfig(c.args, func(k string) string { return c.env[k] }, io.Discard)
		if err != nil {
			t.Fatalf("%v %v: %v", c.env, c.args, err)
		}
		if cfg.Webhooks.Guard.AllowPrivate != c.allow {
			t.Errorf("%v %v: AllowPrivate %v, want %v", c.env, c.args, cfg.Webhooks.Guard.AllowPrivate, c.allow)
		}
		resolver, closeResolver, err := newResolver(cfg, db, slog.New(slog.DiscardHandler), metrics.New())
		if err != nil {
			t.Fatal(err)
		}
		err = resolver.Automations.Guard().CheckURL(context.Background(), "http://127.0.0.1:9/hook")
		closeResolver()
		if (err == nil) != c.allow {
			t.Errorf("%v %v: the server's guard answers %v for a loopback URL; allowed should be %v", c.env, c.args, err, c.allow)
		}
	}
	if _, err := parseConfig(nil, func(k string) string { return with(production, "CRUMBS_WEBHOOK_ALLOW_PRIVATE", "maybe")[k] }, io.Discard); err == nil ||
		!strings.Contains(err.Error(), "webhook-allow-private") {
		t.Errorf("CRUMBS_WEBHOOK_ALLOW_PRIVATE=maybe: %v", err)
	}

	cfg, err := parseConfig(nil, func(k string) string { return production[k] }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	got, want := cfg.Webhooks, models.DispatcherOptions{}.WithDefaults()
	if got.Timeout != 10*time.Second {
		t.Errorf("attempt timeout %v by default, want 10s", got.Timeout)
	}
	if got.Workers != want.Workers || got.PerRule != want.PerRule || got.Rate != want.Rate || got.Backoff != want.Backoff ||
		got.MaxAttempts != want.MaxAttempts || got.Timeout != want.Timeout || got.Retention != want.Retention {
		t.Errorf("the server's webhook defaults %+v differ from the dispatcher's %+v", got, want)
	}
}
