package models_test

import (
	"context"
	"fmt"
	"io"
	"os"
	"runtime"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/crumbs-dev/crumbs/models"
	"github.com/crumbs-dev/crumbs/models/modelstest"
)

// BenchmarkExportMemory streams every event of an app of
// CRUMBS_EXPORT_EVENTS events (default 1,000,000) on SQLite and reports the
// peak live heap while exporting, against the same export of a tenth of
// them: constant memory shows as a ratio near 1.
//
//	CRUMBS_EXPORT_EVENTS=1000000 go test -run '^$' -bench ExportMemory -benchtime 1x ./models/
func BenchmarkExportMemory(b *testing.B) {
	n := 1_000_000
	if s := os.Getenv("CRUMBS_EXPORT_EVENTS"); s != "" {
		var err error
		if n, err = strconv.Atoi(s); err != nil {
			b.Fatal(err)
		}
	}
	db := modelstest.SQLite(b)
	ctx := context.Background()
	owner := newUser(b, db)
	name := "export bench"
	app, _, err := models.CreateApp(ctx, db, owner, models.AppInput{Name: &name})
	if err != nil {
		b.Fatal(err)
	}
	defs, err := models.EventDefinitions(ctx, db, app.ID, nil)
	if err != nil {
		b.Fatal(err)
	}
	small := n / 10
	seed := func(from, to int) {
		start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		batch := make([]*models.Event, 0, 5000)
		for i := from; i < to; i++ {
			at := start.Add(time.Duration(i) * time.Second)
			batch = append(batch, &models.Event{AppID: app.ID, DefinitionID: defs[i%len(defs)].ID, DeviceID: fmt.Sprintf("dev-%d", i%20000),
				URL: fmt.Sprintf("https://example.com/page/%d", i%500), Title: "Page", Source: "api",
				Properties: map[string]any{"n": i, "plan": "pro"}, OccurredAt: at, ReceivedAt: at})
			if len(batch) == cap(batch) || i == to-1 {
				if err := models.ImportEvents(ctx, db, batch); err != nil {
					b.Fatal(err)
				}
				batch = batch[:0]
			}
		}
	}
	measure := func(to time.Time) (events int64, peak uint64, took time.Duration) {
		runtime.GC()
		var base runtime.MemStats
		runtime.ReadMemStats(&base)
		var top atomic.Uint64
		done := make(chan struct{})
		go func() {
			tick := time.NewTicker(5 * time.Millisecond)
			defer tick.Stop()
			var m runtime.MemStats
			for {
				select {
				case <-done:
					return
				case <-tick.C:
					runtime.ReadMemStats(&m)
					if m.HeapAlloc > top.Load() {
						top.Store(m.HeapAlloc)
					}
				}
			}
		}()
		begin := time.Now()
		x, err := models.PrepareExport(ctx, db, owner, app.PublicID, models.ExportFilter{To: &to}, models.ExportNDJSON)
		if err != nil {
			b.Fatal(err)
		}
		res, err := x.Run(ctx, io.Discard, nil)
		took = time.Since(begin)
		close(done)
		if err != nil {
			b.Fatal(err)
		}
		p := top.Load()
		if p < base.HeapAlloc {
			p = base.HeapAlloc
		}
		return res.Events, p - base.HeapAlloc, took
	}
	seedStart := time.Now()
	seed(0, n)
	b.Logf("seeded %d events in %s", n, time.Since(seedStart).Round(time.Second))
	cut := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(small) * time.Second)
	b.ResetTimer()
	for range b.N {
		smallEvents, smallPeak, smallTook := measure(cut)
		allEvents, allPeak, allTook := measure(time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC))
		if smallEvents != int64(small) || allEvents != int64(n) {
			b.Fatalf("exported %d and %d events, want %d and %d", smallEvents, allEvents, small, n)
		}
		b.ReportMetric(float64(allPeak)/(1<<20), "peak-heap-MiB")
		b.ReportMetric(float64(allPeak)/float64(max(smallPeak, 1)), "peak-ratio-10x-events")
		b.ReportMetric(float64(n)/allTook.Seconds(), "events/s")
		b.Logf("%d events: peak heap growth %.1f MiB in %s; %d events: %.1f MiB in %s",
			allEvents, float64(allPeak)/(1<<20), allTook.Round(time.Millisecond), smallEvents, float64(smallPeak)/(1<<20), smallTook.Round(time.Millisecond))
	}
}
