package main

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func TestRequestBodiesAreValidJSON(t *testing.T) {
	for _, batch := range []int{0, 3} {
		body := requestBody(options{batch: batch, devices: 10, codes: 2}, "app_x", 1, 7)
		var req struct {
			Query     string
			Variables struct{ In json.RawMessage }
		}
		if err := json.Unmarshal(body, &req); err != nil || req.Query == "" || len(req.Variables.In) == 0 {
			t.Fatalf("batch %d: %v %s", batch, err, body)
		}
	}
}

func TestOnlyLoopbackTargets(t *testing.T) {
	for target, ok := range map[string]bool{
		"http://127.0.0.1:8080/graphql": true, "http://localhost:8080/graphql": true, "http://[::1]:8080/graphql": true,
		"http://10.0.0.5:8080/graphql": false, "https://example.com/graphql": false,
	} {
		if err := checkLoopback(target); (err == nil) != ok {
			t.Errorf("%s: %v", target, err)
		}
	}
}

// A compare run limited by -steps reports the targets of what it measured and none of the others
// (which it used to list as 0.00×, MISSED).
func TestReportLeavesOutTargetsNotMeasured(t *testing.T) {
	o := compareOptions{rounds: 1, duration: time.Second, rules: 10, only: "crumbs trigger ("}
	e := &benchEnv{o: o, name: "mariadb"}
	results := map[string][]stepResult{
		"mariadb\tcrumbs trigger (GraphQL), c=64": {{events: 5000, elapsed: time.Second, p99: 20 * time.Millisecond, rssMax: 90 << 20}},
	}
	var out strings.Builder
	report(&out, o, []*benchEnv{e}, results)
	got := out.String()
	for _, want := range []string{"mariadb: trigger p99 ≤ 15 ms at 64 connections | 20.0 ms | MISSED", "server RSS ≤ 150 MB | 90 MB (worst load) | met"} {
		if !strings.Contains(got, want) {
			t.Errorf("report lacks %q:\n%s", want, got)
		}
	}
	for _, unwanted := range []string{"bare gqlgen", "JSON endpoint", "multi-row INSERT", "0.00×", "rules"} {
		if strings.Contains(got, unwanted) {
			t.Errorf("report has %q, which was not measured:\n%s", unwanted, got)
		}
	}
}
