package main

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/crumbs-dev/crumbs/models/modelstest"
)

// BenchmarkTriggerRequest measures the whole request path of one trigger
// (routes, middleware, GraphQL or the JSON endpoint, the writer) on
// SQLite, for CPU and allocations per request. Besides ns/op (wall time,
// which a shared machine distorts) it reports cpu-µs/event, the process's
// CPU time per event, and json prints its ratio to graphql's:
//
//	go test ./server -run '^$' -bench TriggerRequest -benchmem -cpuprofile cpu.out
func BenchmarkTriggerRequest(b *testing.B) {
	db := modelstest.SQLite(b)
	t := &testing.T{}
	a := newAPI(t, db)
	appID, secret := a.createApp("Bench")
	var seq atomic.Int64
	bodies := map[string]func(n int64) (string, []byte){
		"graphql": func(n int64) (string, []byte) {
			return "/graphql", fmt.Appendf(nil, `{"query":"mutation($in: TriggerInput!) { trigger(input: $in) { accepted duplicate eventId } }","variables":{"in":{"appId":%q,"deviceId":"dev-%d","code":"view","url":"https://example.com/page/%d","messageId":"m-%d","source":"api","properties":{"n":%d}}}}`, appID, n%5000, n%50, n, n)
		},
		"json": func(n int64) (string, []byte) {
			return "/api/v1/apps/" + appID + "/events", fmt.Appendf(nil, `{"device_id":"dev-%d","code":"view","url":"https://example.com/page/%d","message_id":"j-%d","source":"api","properties":{"n":%d}}`, n%5000, n%50, n, n)
		},
	}
	cpuPerEvent := map[string]float64{}
	for _, name := range []string{"graphql", "json"} {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetParallelism(16)
			startCPU := processCPU()
			defer func() {
				us := float64(processCPU()-startCPU) / float64(time.Microsecond) / float64(b.N)
				cpuPerEvent[name] = us
				b.ReportMetric(us, "cpu-µs/event")
				if g := cpuPerEvent["graphql"]; name == "json" && g > 0 && b.N > 1 {
					b.Logf("CPU per event: graphql %.1f µs, json %.1f µs (json/graphql %.2f)", g, us, us/g)
				}
			}()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					path, body := bodies[name](seq.Add(1))
					req := httptest.NewRequest(http.MethodPost, path, bytes.NewReader(body))
					req.Header.Set("Content-Type", "application/json")
					req.Header.Set("Authorization", "Bearer "+secret)
					rec := httptest.NewRecorder()
					a.handler.ServeHTTP(rec, req)
					if rec.Code != 200 || !bytes.Contains(rec.Body.Bytes(), []byte(`true`)) {
						b.Fatalf("%d %s", rec.Code, rec.Body)
					}
				}
			})
		})
	}
}
