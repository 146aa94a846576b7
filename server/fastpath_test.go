package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/99designs/gqlgen/client"
	"github.com/crumbs-dev/crumbs/graph"
	"github.com/crumbs-dev/crumbs/models"
	"github.com/crumbs-dev/crumbs/models/modelstest"
	"gorm.io/gorm"
)

// Trigger documents answered from a cached plan (graph/fastpath.go) get
// byte for byte the answer gqlgen gives, and store the same: every request
// below goes to two servers, one with the planned path and one without,
// on stores of their own; the event ids are the only difference.
func TestPlannedTriggersAnswerAsGqlgen(t *testing.T) {
	type server struct {
		a      *api
		srv    *httptest.Server
		db     *gorm.DB
		appID  string
		secret string
	}
	start := func(noFastPath bool, maxComplexity int) *server {
		db := modelstest.SQLite(t)
		a := newAPI(t, db, func(c *config) {
			c.noFastPath = noFastPath
			c.MaxComplexity = maxComplexity
			c.RatePerDevice = models.Rate{PerSecond: 0.001, Burst: 20}
		})
		srv := httptest.NewServer(a.handler)
		t.Cleanup(srv.Close)
		appID, secret := a.createApp("Planned")
		a.ok(`mutation($a: ID!) { createEventDefinition(input: {appId: $a, code: "old", name: "Old", enabled: false}) { id } }`, &map[string]any{}, client.Var("a", appID))
		return &server{a: a, srv: srv, db: db, appID: appID, secret: secret}
	}
	for _, maxComplexity := range []int{5000, 200} {
		t.Run(fmt.Sprint("complexity ", maxComplexity), func(t *testing.T) {
			planned, plain := start(false, maxComplexity), start(true, maxComplexity)
			eventID := regexp.MustCompile(`"(eventId|id)":"\d+"`)
			send := func(s *server, body string, header ...string) (int, http.Header, string) {
				body = strings.ReplaceAll(body, "APP", s.appID)
				req, _ := http.NewRequest(http.MethodPost, s.srv.URL+"/graphql", strings.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("Authorization", "Bearer "+s.secret)
				for i := 0; i+1 < len(header); i += 2 {
					req.Header.Set(header[i], header[i+1])
				}
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				b, _ := io.ReadAll(resp.Body)
				return resp.StatusCode, resp.Header, eventID.ReplaceAllString(string(b), `"$1":"N"`)
			}
			const (
				one   = `mutation Track($in: TriggerInput!) { trigger(input: $in) { accepted duplicate eventId } }`
				batch = `mutation($in: [TriggerInput!]!) { triggerBatch(inputs: $in) { ok: accepted eventId error { code field message } duplicate } }`
			)
			req := func(query, vars string, extra ...string) string {
				out := fmt.Sprintf(`{"query":%q,"variables":%s`, query, vars)
				for _, e := range extra {
					out += "," + e
				}
				return out + "}"
			}
			items := func(n int, item string) string {
				return "[" + strings.TrimSuffix(strings.Repeat(item+",", n), ",") + "]"
			}
			browser := []string{"Authorization", "", "Origin", "https://site.example"}
			cases := []struct {
				name, body string
				header     []string
				planned    bool // the planned server answers it itself
			}{
				{"one event", req(one, `{"in":{"appId":"APP","deviceId":"d1","code":"view","url":"https://x.example/a?b=<c>&d","referrer":null,"title":"T \"quoted\" \u2028","properties":{"n":1.50,"big":12345678901234567890,"nested":{"a":[1,"x",null,true]}},"occurredAt":"2026-01-02T03:04:05.678+01:00","messageId":"m-1","source":"js"}}`), nil, true},
				{"the same again", req(one, `{"in":{"appId":"APP","deviceId":"d1","code":"view","messageId":"m-1"}}`), nil, true},
				{"unknown code", req(one, `{"in":{"appId":"APP","deviceId":"d1","code":"nope"}}`), nil, true},
				{"disabled", req(one, `{"in":{"appId":"APP","deviceId":"d1","code":"old"}}`), nil, true},
				{"bad device", req(one, `{"in":{"appId":"APP","deviceId":"","code":"view"}}`), nil, true},
				{"properties not an object", req(one, `{"in":{"appId":"APP","deviceId":"d1","code":"view","properties":[1]}}`), nil, true},
				{"unknown app", req(one, `{"in":{"appId":"app_nope","deviceId":"d1","code":"view"}}`), nil, true},
				{"operation name", req(one, `{"in":{"appId":"APP","deviceId":"d2","code":"click"}}`, `"operationName":"Track"`), nil, true},
				{"other operation name", req(one, `{"in":{"appId":"APP","deviceId":"d2","code":"click"}}`, `"operationName":"Other"`), nil, false},
				{"numeric app id", req(one, `{"in":{"appId":12,"deviceId":"d1","code":"view"}}`), nil, false},
				{"null device", req(one, `{"in":{"appId":"APP","deviceId":null,"code":"view"}}`), nil, false},
				{"unknown field", req(one, `{"in":{"appId":"APP","deviceId":"d1","code":"view","colour":"red"}}`), nil, false},
				{"bad time", req(one, `{"in":{"appId":"APP","deviceId":"d1","code":"view","occurredAt":"yesterday"}}`), nil, false},
				{"bad source", req(one, `{"in":{"appId":"APP","deviceId":"d1","code":"view","source":"fax"}}`), nil, false},
				{"no variable", req(one, `{}`), nil, false},
				{"graphql-response+json", req(one, `{"in":{"appId":"APP","deviceId":"d3","code":"view"}}`), []string{"Accept", "application/graphql-response+json"}, false},
				{"persisted query", req(one, `{"in":{"appId":"APP","deviceId":"d3","code":"view"}}`, `"extensions":{"persistedQuery":{"version":1,"sha256Hash":"x"}}`), nil, false},
				{"typename", req(`mutation($in: TriggerInput!) { trigger(input: $in) { __typename accepted } }`, `{"in":{"appId":"APP","deviceId":"d3","code":"view"}}`), nil, false},
				{"fragment", req(`mutation($in: TriggerInput!) { trigger(input: $in) { ...r } } fragment r on TriggerResult { accepted }`, `{"in":{"appId":"APP","deviceId":"d3","code":"view"}}`), nil, false},
				{"two fields", req(`mutation($in: TriggerInput!) { a: trigger(input: $in) { accepted } b: trigger(input: $in) { accepted } }`, `{"in":{"appId":"APP","deviceId":"d3","code":"view"}}`), nil, false},
				{"batch", req(batch, `{"in":[{"appId":"APP","deviceId":"d1","code":"view","messageId":"m-1"},{"appId":"APP","deviceId":"d1","code":"nope"},{"appId":"APP","deviceId":"d4","code":"submit","properties":{"x":"y"}},{"appId":"APP","deviceId":"d4","code":"old"},{"appId":"APP","deviceId":"","code":"view"}]}`), nil, true},
				{"empty batch", req(batch, `{"in":[]}`), nil, true},
				{"batch of 40", req(batch, `{"in":`+items(40, `{"appId":"APP","deviceId":"d5","code":"view"}`)+`}`), nil, maxComplexity == 5000},
				{"batch of 501", req(batch, `{"in":`+items(501, `{"appId":"APP","deviceId":"d6","code":"view"}`)+`}`), nil, false},
				// Per-device limits hold browsers only (keyed calls are exempt).
				{"browser batch of 20", req(batch, `{"in":`+items(20, `{"appId":"APP","deviceId":"d7","code":"view"}`)+`}`), browser, true},
				{"one rate-limited device", req(one, `{"in":{"appId":"APP","deviceId":"d7","code":"view"}}`), browser, true},
				{"rate-limited batch", req(batch, `{"in":`+items(3, `{"appId":"APP","deviceId":"d7","code":"view"}`)+`}`), browser, true},
			}
			for _, c := range cases {
				before := graph.PlannedRequests()
				s1, h1, b1 := send(planned, c.body, c.header...)
				answered := graph.PlannedRequests() - before
				s2, h2, b2 := send(plain, c.body, c.header...)
				if s1 != s2 || b1 != b2 || h1.Get("Content-Type") != h2.Get("Content-Type") || h1.Get("Retry-After") != h2.Get("Retry-After") {
					t.Fatalf("%s:\nplanned %d %q %s\ngqlgen  %d %q %s", c.name, s1, h1.Get("Retry-After"), b1, s2, h2.Get("Retry-After"), b2)
				}
				if (answered == 1) != c.planned {
					t.Fatalf("%s: answered from a plan: %v, want %v (%d %s)", c.name, answered == 1, c.planned, s1, b1)
				}
			}
			// Both stored the same events.
			dump := func(s *server) string {
				var rows []struct {
					DeviceID, URL, Referrer, Title, Properties, Source string
					MessageID                                          *string
					OccurredAt                                         string
				}
				// Events without occurredAt happened "now", a millisecond apart.
				s.db.Raw(`SELECT device_id, url, referrer, title, properties, source, message_id,
					CASE WHEN occurred_at < '2026-06-01' THEN occurred_at ELSE 'now' END AS occurred_at FROM events ORDER BY id`).Scan(&rows)
				b, _ := json.Marshal(rows)
				return string(b)
			}
			if d1, d2 := dump(planned), dump(plain); d1 != d2 {
				t.Fatalf("stored events differ:\nplanned %s\ngqlgen  %s", d1, d2)
			}
		})
	}
}
