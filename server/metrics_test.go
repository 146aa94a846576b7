package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/crumbs-dev/crumbs/models"
	"github.com/crumbs-dev/crumbs/models/modelstest"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"gorm.io/gorm"
)

const testMetricsToken = "metrics-token-for-tests"

// scrape reads /metrics with the Prometheus parser.
func scrape(t *testing.T, url, token string) map[string]*dto.MetricFamily {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d", url, resp.StatusCode)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse %s: %v", url, err)
	}
	return families
}

// sample returns the value of the series of family name with these labels
// (a counter or gauge value, or a histogram's count and sum); 0 if absent.
func sample(families map[string]*dto.MetricFamily, name string, labels ...string) (value, sum float64) {
	f := families[name]
	if f == nil {
		return 0, 0
	}
next:
	for _, m := range f.Metric {
		have := map[string]string{}
		for _, l := range m.Label {
			have[l.GetName()] = l.GetValue()
		}
		for i := 0; i+1 < len(labels); i += 2 {
			if have[labels[i]] != labels[i+1] {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue(), 0
		case m.Gauge != nil:
			return m.Gauge.GetValue(), 0
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount()), m.Histogram.GetSampleSum()
		}
	}
	return 0, 0
}

// The counters move with real traffic through the real HTTP handler.
func TestMetricsFollowTraffic(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *gorm.DB) {
		a := newAPI(t, db, func(c *config) {
			c.MetricsToken = testMetricsToken
			c.RatePerDevice = models.Rate{PerSecond: 0.001, Burst: 2}
		})
		srv := httptest.NewServer(a.handler)
		defer srv.Close()
		appID, secret := a.createApp("Metrics")

		before := scrape(t, srv.URL+"/metrics", testMetricsToken)

		trigger := func(device, code, source, messageID string) string {
			t.Helper()
			in := map[string]any{"appId": appID, "deviceId": device, "code": code}
			if source != "" {
				in["source"] = source
			}
			if messageID != "" {
				in["messageId"] = messageID
			}
			body, _ := json.Marshal(map[string]any{
				"query":     `mutation($in: TriggerInput!) { trigger(input: $in) { accepted duplicate } }`,
				"variables": map[string]any{"in": in},
			})
			req, _ := http.NewRequest(http.MethodPost, srv.URL+"/graphql", strings.NewReader(string(body)))
			req.Header.Set("Content-Type", "application/json")
			if device == "phone" {
				// A browser: keyed calls are exempt from per-device limits.
				req.Header.Set("Origin", "https://phone.example")
			} else {
				req.Header.Set("Authorization", "Bearer "+secret)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var out struct {
				Data struct {
					Trigger *struct{ Accepted, Duplicate bool }
				}
				Errors []gqlError
			}
			json.NewDecoder(resp.Body).Decode(&out)
			switch {
			case len(out.Errors) > 0:
				return out.Errors[0].Extensions.Code
			case out.Data.Trigger != nil && out.Data.Trigger.Duplicate:
				return "duplicate"
			case out.Data.Trigger != nil && out.Data.Trigger.Accepted:
				return "accepted"
			}
			return fmt.Sprintf("status %d", resp.StatusCode)
		}
		a.ok(`mutation { createEventDefinition(input: {appId: "`+appID+`", code: "signup", name: "Signup"}) { id } }`, &map[string]any{})
		var app struct {
			App struct{ EventDefinitions []struct{ ID, Code string } }
		}
		a.ok(`{ app(id: "`+appID+`") { eventDefinitions { id code } } }`, &app)
		for _, d := range app.App.EventDefinitions {
			if d.Code == "click" {
				a.ok(`mutation { updateEventDefinition(id: "`+d.ID+`", input: {enabled: false}) { id } }`, &map[string]any{})
			}
		}
		// A duplicate code is a CONFLICT for the caller and a conflict in the store.
		a.refused("CONFLICT", "code", `mutation { createEventDefinition(input: {appId: "`+appID+`", code: "signup", name: "Again"}) { id } }`)

		for _, step := range []struct{ device, code, source, messageID, want string }{
			{"d1", "view", "js", "m-1", "accepted"},
			{"d1", "view", "js", "m-1", "duplicate"},
			{"d2", "nope", "", "", "UNKNOWN_EVENT_CODE"},
			{"d3", "click", "shortcode", "", "EVENT_DISABLED"},
			{"phone", "signup", "wordpress", "", "accepted"},
			{"phone", "signup", "wordpress", "", "accepted"},
			{"phone", "signup", "wordpress", "", "RATE_LIMITED"},
		} {
			if got := trigger(step.device, step.code, step.source, step.messageID); got != step.want {
				t.Fatalf("trigger %+v: %s", step, got)
			}
		}
		var batch struct {
			TriggerBatch []struct{ Accepted bool }
		}
		a.ok(`mutation { triggerBatch(inputs: [
			{appId: "`+appID+`", deviceId: "b1", code: "view", source: block},
			{appId: "`+appID+`", deviceId: "b2", code: "view", source: block},
			{appId: "`+appID+`", deviceId: "b3", code: "view", source: block}]) { accepted } }`, &batch, as(secret))
		if len(batch.TriggerBatch) != 3 || !batch.TriggerBatch[2].Accepted {
			t.Fatalf("batch: %+v", batch)
		}

		// Everything stored is derived: the consumers (rollups, automations)
		// report no lag.
		if err := a.resolver.Writer.EventLog().Drain(context.Background()); err != nil {
			t.Fatal(err)
		}
		after := scrape(t, srv.URL+"/metrics", testMetricsToken)
		for _, name := range []string{"crumbs_derived_lag_seconds", "crumbs_derived_lag_events"} {
			f := after[name]
			var consumers []string
			if f != nil {
				for _, m := range f.Metric {
					consumers = append(consumers, m.Label[0].GetValue())
					if v := m.Gauge.GetValue(); name == "crumbs_derived_lag_seconds" && v != 0 {
						t.Errorf("%s{consumer=%q} = %v after deriving everything", name, m.Label[0].GetValue(), v)
					}
				}
			}
			if strings.Join(consumers, ",") != "automations,rollups" {
				t.Errorf("%s: series for %v, want one for each consumer (automations, rollups)", name, consumers)
			}
		}
		delta := func(name string, labels ...string) (count, sum float64) {
			b, bs := sample(before, name, labels...)
			a, as := sample(after, name, labels...)
			return a - b, as - bs
		}
		for _, c := range []struct {
			labels []string
			want   float64
		}{
			{[]string{"source", "js", "outcome", "accepted"}, 1},
			{[]string{"source", "js", "outcome", "duplicate"}, 1},
			{[]string{"source", "api", "outcome", "UNKNOWN_EVENT_CODE"}, 1},
			{[]string{"source", "shortcode", "outcome", "EVENT_DISABLED"}, 1},
			{[]string{"source", "wordpress", "outcome", "accepted"}, 2},
			{[]string{"source", "wordpress", "outcome", "RATE_LIMITED"}, 1},
			{[]string{"source", "block", "outcome", "accepted"}, 3},
		} {
			if got, _ := delta("crumbs_triggers_total", c.labels...); got != c.want {
				t.Errorf("crumbs_triggers_total%v moved by %v, want %v", c.labels, got, c.want)
			}
		}
		if got, _ := delta("crumbs_rate_limited_total", "scope", "device"); got != 1 {
			t.Errorf("device rate-limit refusals moved by %v, want 1", got)
		}
		// Sequential requests: one group commit each for the 5 single triggers
		// the writer saw (disabled and rate-limited ones never reach it) and 1
		// for the batch, holding 5 + 3 events.
		if n, sum := delta("crumbs_group_commit_events"); n != 6 || sum != 8 {
			t.Errorf("group commits: %v commits of %v events, want 6 of 8", n, sum)
		}
		if n, sum := delta("crumbs_group_commit_duration_seconds"); n != 6 || sum <= 0 {
			t.Errorf("group commit durations: %v observations summing to %v", n, sum)
		}
		if n, _ := delta("crumbs_store_errors_total", "op", "create", "kind", "conflict"); n != 1 {
			t.Errorf("store conflicts moved by %v, want 1", n)
		}
		if after["crumbs_writer_queue_requests"] == nil {
			t.Error("no writer queue gauge")
		}
		if n, _ := sample(after, "go_sql_max_open_connections", "db_name", "main"); n < 1 {
			t.Errorf("pool stats: max open connections %v", n)
		}
		for _, name := range []string{"go_goroutines", "go_memstats_heap_alloc_bytes", "go_build_info", "process_cpu_seconds_total"} {
			if after[name] == nil {
				t.Errorf("no %s", name)
			}
		}

		for _, token := range []string{"", "wrong-token-of-enough-length"} {
			req, _ := http.NewRequest(http.MethodGet, srv.URL+"/metrics", nil)
			if token != "" {
				req.Header.Set("Authorization", "Bearer "+token)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusUnauthorized {
				t.Errorf("/metrics with token %q: %d, want 401", token, resp.StatusCode)
			}
		}
	})
}

// Without a token, production serves no /metrics on the public listener;
// development does.
func TestMetricsOnThePublicListener(t *testing.T) {
	for _, tc := range []struct {
		name string
		dev  bool
		want int
	}{{"production", false, http.StatusNotFound}, {"development", true, http.StatusOK}} {
		t.Run(tc.name, func(t *testing.T) {
			a := newAPI(t, modelstest.SQLite(t), func(c *config) { c.Development = tc.dev })
			rec := httptest.NewRecorder()
			a.handler.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
			if rec.Code != tc.want {
				t.Fatalf("/metrics: %d, want %d", rec.Code, tc.want)
			}
		})
	}
}

// CRUMBS_METRICS_ADDR moves /metrics to a listener of its own.
func TestMetricsOwnListener(t *testing.T) {
	env := map[string]string{
		"CRUMBS_ADDR":          "127.0.0.1:0",
		"CRUMBS_METRICS_ADDR":  "127.0.0.1:0",
		"CRUMBS_METRICS_TOKEN": testMetricsToken,
		"CRUMBS_DATABASE_URL":  "sqlite:" + filepath.Join(t.TempDir(), "crumbs.db"),
		"CRUMBS_LOG_FORMAT":    "json",
	}
	ctx, cancel := context.WithCancel(context.Background())
	stdoutR, stdoutW := io.Pipe()
	stderrR, stderrW := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, nil, func(k string) string { return env[k] }, strings.NewReader(""), stdoutW, stderrW)
		stdoutW.Close()
		stderrW.Close()
	}()
	metricsAddr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderrR)
		for sc.Scan() {
			var line struct{ Msg, Addr string }
			if json.Unmarshal(sc.Bytes(), &line) == nil && line.Msg == "metrics listening" {
				metricsAddr <- line.Addr
			}
		}
	}()
	line, err := bufio.NewReader(stdoutR).ReadString('\n')
	if err != nil {
		t.Fatalf("no listening line: %v", err)
	}
	go io.Copy(io.Discard, stdoutR)
	base := strings.TrimSpace(strings.TrimPrefix(line, "crumbs listening on "))
	var addr string
	select {
	case addr = <-metricsAddr:
	case <-time.After(20 * time.Second):
		t.Fatal("no metrics listener logged")
	}
	families := scrape(t, "http://"+addr+"/metrics", "")
	if families["crumbs_writer_queue_requests"] == nil || families["go_goroutines"] == nil {
		t.Fatalf("metrics listener serves %d families without the server's", len(families))
	}
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("public listener /metrics with CRUMBS_METRICS_ADDR set: %d, want 404", resp.StatusCode)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("run did not return after shutdown")
	}
}
