package models_test

import (
	"context"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/crumbs-dev/crumbs/models"
	"github.com/crumbs-dev/crumbs/models/modelstest"
)

// BenchmarkTestRuleMemory runs testRule over an app of
// CRUMBS_TESTRULE_EVENTS events (default 50,000, one a second, each with
// 4 KB of properties; a tenth of them match) on SQLite, and reports the
// peak live heap while it runs against the same test over a tenth of the
// range: memory bounded by the chunk shows as a ratio near 1.
//
//	go test -run '^$' -bench TestRuleMemory -benchtime 1x ./models/
func BenchmarkTestRuleMemory(b *testing.B) {
	n := 50_000
	if s := os.Getenv("CRUMBS_TESTRULE_EVENTS"); s != "" {
		var err error
		if n, err = strconv.Atoi(s); err != nil || n < 10 {
			b.Fatalf("CRUMBS_TESTRULE_EVENTS=%q: want a number of at least 10", s)
		}
	}
	db := modelstest.SQLite(b)
	ctx := context.Background()
	owner := newUser(b, db)
	name, code := "testRule bench", "order"
	app, _, err := models.CreateApp(ctx, db, owner, models.AppInput{Name: &name})
	if err != nil {
		b.Fatal(err)
	}
	def, err := models.CreateEventDefinition(ctx, db, owner, app.PublicID, models.EventDefinitionInput{Code: &code, Name: &code})
	if err != nil {
		b.Fatal(err)
	}
	matcher := "Every tenth"
	if _, err := models.CreateEventMatcherFor(ctx, db, owner, app.PublicID, models.EventMatcherInput{Name: &matcher, Code: &code,
		Rules: []models.Rule{{Field: "properties.tenth", Operator: models.OpEquals, Value: "yes"}}}); err != nil {
		b.Fatal(err)
	}
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	blob := strings.Repeat("x", 4000)
	for from := 0; from < n; from += 2000 {
		var events []*models.Event
		for i := from; i < min(from+2000, n); i++ {
			at := start.Add(time.Duration(i) * time.Second)
			tenth := "no"
			if i%10 == 0 {
				tenth = "yes"
			}
			events = append(events, &models.Event{AppID: app.ID, DefinitionID: def.ID, DeviceID: "dev-" + strconv.Itoa(i%1000),
				URL: "https://example.com/", Source: "api", Properties: map[string]any{"tenth": tenth, "blob": blob}, OccurredAt: at, ReceivedAt: at})
		}
		if err := models.ImportEvents(ctx, db, events); err != nil {
			b.Fatal(err)
		}
	}
	measure := func(events int) (exportPeak, time.Duration) {
		stop := sampleHeap()
		begin := time.Now()
		res, err := models.TestRuleFor(ctx, db, owner, app.PublicID, models.TestRuleInput{Matcher: matcher, From: start, To: start.Add(time.Duration(events) * time.Second)})
		took := time.Since(begin)
		peak := stop()
		if err != nil {
			b.Fatal(err)
		}
		if res.Scanned != events || res.Matched != (events+9)/10 {
			b.Fatalf("testRule over %d events: scanned %d, matched %d", events, res.Scanned, res.Matched)
		}
		return peak, took
	}
	for range b.N {
		smallPeak, smallTook := measure(n / 10)
		allPeak, allTook := measure(n)
		b.ReportMetric(float64(allPeak.live)/(1<<20), "peak-live-heap-MiB")
		b.ReportMetric(float64(allPeak.live)/float64(max(smallPeak.live, 1)), "peak-live-ratio-10x-events")
		b.ReportMetric(float64(n)/allTook.Seconds(), "events/s")
		b.Logf("%d events: live heap grew by at most %.1f MiB in %s; %d events: %.1f MiB in %s",
			n, float64(allPeak.live)/(1<<20), allTook.Round(time.Millisecond), n/10, float64(smallPeak.live)/(1<<20), smallTook.Round(time.Millisecond))
	}
}
