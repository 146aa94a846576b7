package main

import (
	"io"
	"testing"
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
