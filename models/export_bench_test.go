package models_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"runtime"
	"runtime/metrics"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/crumbs-dev/crumbs/models"
	"github.com/crumbs-dev/crumbs/models/modelstest"
	"gorm.io/gorm"
)

// BenchmarkExportMemory streams every event of an app of
// CRUMBS_EXPORT_EVENTS events (default 1,000,000) in CRUMBS_EXPORT_STORE
// (sqlite, the default, or mysql: the test database of
// CRUMBS_TEST_MYSQL_DSN), once per format (sub-benchmarks ndjson and csv),
// and reports the peak live heap while exporting against the same export of
// a tenth of them: constant memory shows as a ratio near 1. It counts the
// lines written, so an export that stops short fails.
//
//	CRUMBS_EXPORT_EVENTS=1000000 go test -run '^$' -bench ExportMemory -benchtime 1x ./models/
func BenchmarkExportMemory(b *testing.B) {
	n := 1_000_000
	if s := os.Getenv("CRUMBS_EXPORT_EVENTS"); s != "" {
		var err error
		if n, err = strconv.Atoi(s); err != nil || n < 10 {
			b.Fatalf("CRUMBS_EXPORT_EVENTS=%q: want a number of at least 10", s)
		}
	}
	var db *gorm.DB
	switch store := os.Getenv("CRUMBS_EXPORT_STORE"); store {
	case "", "sqlite":
		db = modelstest.SQLite(b)
	case "mysql":
		db = modelstest.MySQL(b)
	default:
		b.Fatalf("CRUMBS_EXPORT_STORE=%q: want sqlite or mysql", store)
	}
	ctx := context.Background()
	owner := newUser(b, db)
	name := "export bench"
	app, _, err := models.CreateApp(ctx, db, owner, models.AppInput{Name: &name})
	if err != nil {
		b.Fatal(err)
	}
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	seedStart := time.Now()
	seedExportEvents(b, db, app.ID, start, n)
	b.Logf("seeded %d events in %s", n, time.Since(seedStart).Round(time.Second))
	small := n / 10
	cut := start.Add(time.Duration(small) * time.Second) // one event a second
	for _, format := range []string{models.ExportNDJSON, models.ExportCSV} {
		b.Run(format, func(b *testing.B) {
			measure := func(to time.Time) (lines int64, peak exportPeak, took time.Duration) {
				x, err := models.PrepareExport(ctx, db, owner, app.PublicID, models.ExportFilter{To: &to}, format)
				if err != nil {
					b.Fatal(err)
				}
				w := &lineCounter{}
				stop := sampleHeap()
				begin := time.Now()
				res, err := x.Run(ctx, w, nil)
				took = time.Since(begin)
				peak = stop()
				if err != nil {
					b.Fatal(err)
				}
				lines = w.lines
				if format == models.ExportCSV {
					lines-- // the header
				}
				if lines != res.Events {
					b.Fatalf("%s: wrote %d lines of events, reported %d", format, lines, res.Events)
				}
				return lines, peak, took
			}
			for range b.N {
				smallEvents, smallPeak, smallTook := measure(cut)
				allEvents, allPeak, allTook := measure(start.AddDate(100, 0, 0))
				if smallEvents != int64(small) || allEvents != int64(n) {
					b.Fatalf("exported %d and %d events, want %d and %d", smallEvents, allEvents, small, n)
				}
				b.ReportMetric(float64(allPeak.live)/(1<<20), "peak-live-heap-MiB")
				b.ReportMetric(float64(allPeak.live)/float64(max(smallPeak.live, 1)), "peak-live-ratio-10x-events")
				b.ReportMetric(float64(allPeak.heap)/(1<<20), "peak-heap-MiB")
				b.ReportMetric(float64(n)/allTook.Seconds(), "events/s")
				b.Logf("%s: %d events: live heap grew by at most %.2f MiB (heap with garbage %.1f MiB) in %s; %d events: %.2f MiB (%.1f MiB) in %s",
					format, allEvents, float64(allPeak.live)/(1<<20), float64(allPeak.heap)/(1<<20), allTook.Round(time.Millisecond),
					smallEvents, float64(smallPeak.live)/(1<<20), float64(smallPeak.heap)/(1<<20), smallTook.Round(time.Millisecond))
			}
		})
	}
}

// seedExportEvents imports n events of app, one a second from start, in
// batches of 5,000 through models.ImportEvents, from a few goroutines: on
// MySQL the batches commit side by side; SQLite's single connection takes
// them in turn while the others build theirs.
func seedExportEvents(b *testing.B, db *gorm.DB, appID uint64, start time.Time, n int) {
	ctx := context.Background()
	defs, err := models.EventDefinitions(ctx, db, appID, nil)
	if err != nil {
		b.Fatal(err)
	}
	const batch = 5000
	var next atomic.Int64
	var wg sync.WaitGroup
	var failed atomic.Value
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			events := make([]*models.Event, 0, batch)
			for failed.Load() == nil {
				from := int(next.Add(batch)) - batch
				if from >= n {
					return
				}
				events = events[:0]
				for i := from; i < min(from+batch, n); i++ {
					at := start.Add(time.Duration(i) * time.Second)
					events = append(events, &models.Event{AppID: appID, DefinitionID: defs[i%len(defs)].ID, DeviceID: fmt.Sprintf("dev-%d", i%20000),
						URL: fmt.Sprintf("https://example.com/page/%d", i%500), Title: "Page", Source: "api",
						Properties: map[string]any{"n": i, "plan": "pro"}, OccurredAt: at, ReceivedAt: at})
				}
				if err := models.ImportEvents(ctx, db, events); err != nil {
					failed.Store(err)
				}
			}
		}()
	}
	wg.Wait()
	if err, _ := failed.Load().(error); err != nil {
		b.Fatal(err)
	}
}

// exportPeak is how far the heap grew above its live size before an export:
// live is the heap the collector found reachable (what a leak or an
// unbounded buffer shows in), heap also counts garbage not yet collected.
type exportPeak struct{ live, heap uint64 }

// sampleHeap collects, measures the live heap, and samples it every
// millisecond until the returned function is called; that function returns
// the peak growth. runtime/metrics reads without stopping the world, so
// sampling does not slow the export down.
func sampleHeap() func() exportPeak {
	runtime.GC()
	s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}, {Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(s)
	baseLive, baseHeap := s[0].Value.Uint64(), s[1].Value.Uint64()
	var peak exportPeak
	done, finished := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(finished)
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for {
			metrics.Read(s)
			peak.live = max(peak.live, s[0].Value.Uint64())
			peak.heap = max(peak.heap, s[1].Value.Uint64())
			select {
			case <-done:
				return
			case <-tick.C:
			}
		}
	}()
	return func() exportPeak {
		close(done)
		<-finished
		return exportPeak{live: max(peak.live, baseLive) - baseLive, heap: max(peak.heap, baseHeap) - baseHeap}
	}
}

// lineCounter discards what is written to it and counts the lines.
type lineCounter struct{ lines int64 }

func (c *lineCounter) Write(p []byte) (int, error) {
	c.lines += int64(bytes.Count(p, []byte{'\n'}))
	return len(p), nil
}
