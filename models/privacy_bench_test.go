package models_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/crumbs-dev/crumbs/models"
	"github.com/crumbs-dev/crumbs/models/modelstest"
	"gorm.io/gorm"
)

// BenchmarkEraseLargeLead erases a lead whose one device has
// CRUMBS_ERASE_EVENTS events (default 200,000), in SQLite and in MariaDB
// (sub-benchmarks; mysql needs CRUMBS_TEST_MYSQL_DSN), while that device
// keeps triggering every 20 ms, and reports how long the erasure took, the
// longest any of those triggers waited, and the peak live heap against the
// erasure of a lead with a tenth of the events in the same run: erasing in
// chunks shows as a ratio near 1 and triggers that wait for one chunk, not
// for the whole erasure.
//
//	go test ./models -run '^$' -bench EraseLargeLead -benchtime 1x -v
func BenchmarkEraseLargeLead(b *testing.B) {
	n := 200_000
	if s := os.Getenv("CRUMBS_ERASE_EVENTS"); s != "" {
		var err error
		if n, err = strconv.Atoi(s); err != nil || n < 10 {
			b.Fatalf("CRUMBS_ERASE_EVENTS=%q: want a number of at least 10", s)
		}
	}
	for _, store := range []struct {
		name string
		open func(testing.TB) *gorm.DB
	}{{"sqlite", modelstest.SQLite}, {"mysql", modelstest.MySQL}} {
		b.Run(store.name, func(b *testing.B) {
			db := store.open(b)
			for range b.N {
				small := eraseLargeLead(b, db, n/10)
				all := eraseLargeLead(b, db, n)
				b.ReportMetric(all.took.Seconds(), "erase-s")
				b.ReportMetric(float64(all.worst.Microseconds())/1000, "worst-trigger-ms")
				b.ReportMetric(float64(all.peak.live)/(1<<20), "peak-live-heap-MiB")
				b.ReportMetric(float64(all.peak.live)/float64(max(small.peak.live, 1)), "peak-live-ratio-10x-events")
				for _, r := range []erasedLead{small, all} {
					b.Logf("%d events erased in %s (%d triggered meanwhile, %d of them erased too); the longest trigger of the device waited %s; live heap grew by at most %.2f MiB",
						r.events, r.took.Round(time.Millisecond), r.triggered, r.erased-int64(r.events), r.worst.Round(time.Millisecond), float64(r.peak.live)/(1<<20))
				}
			}
		})
	}
}

type erasedLead struct {
	events      int
	erased      int64
	triggered   int
	took, worst time.Duration
	peak        exportPeak
}

// eraseLargeLead makes a lead of one device with n events, one every ten
// seconds, through the writer, and erases it while the device triggers.
func eraseLargeLead(b *testing.B, db *gorm.DB, n int) erasedLead {
	ctx := context.Background()
	owner := newUser(b, db)
	name := fmt.Sprintf("erase bench %d", n)
	app, secret, err := models.CreateApp(ctx, db, owner, models.AppInput{Name: &name})
	if err != nil {
		b.Fatal(err)
	}
	w := models.NewWriter(db, models.NewCatalog(db, time.Minute), models.WriterOptions{})
	defer w.Close()
	e := &env{ctx: ctx, db: db, app: app, secret: secret, owner: owner, writer: w}
	start := time.Now().UTC().Add(-time.Duration(n) * 10 * time.Second)
	batch := make([]models.TriggerInput, 0, 500)
	flush := func() {
		for i, r := range e.writer.Trigger(e.ctx, batch) {
			if r.Err != nil || !r.Accepted {
				b.Fatalf("seeding %+v: %+v", batch[i], r)
			}
		}
		batch = batch[:0]
	}
	for i := range n {
		at := start.Add(time.Duration(i) * 10 * time.Second)
		batch = append(batch, models.TriggerInput{AppPublicID: e.app.PublicID, Code: "view", DeviceID: "big",
			MessageID: ptr(strconv.Itoa(i)), OccurredAt: &at, Secret: e.secret})
		if len(batch) == cap(batch) {
			flush()
		}
	}
	flush()
	email := fmt.Sprintf("big-%d@example.com", n)
	if _, err := models.Identify(e.ctx, db, e.writer.Catalog(), models.IdentifyInput{AppPublicID: e.app.PublicID, DeviceID: "big", Email: email, Secret: e.secret}); err != nil {
		b.Fatal(err)
	}
	var r erasedLead
	r.events = n
	var stop atomic.Bool
	var wg sync.WaitGroup
	wg.Go(func() {
		for !stop.Load() {
			begin := time.Now()
			res := e.writer.Trigger(e.ctx, []models.TriggerInput{{AppPublicID: e.app.PublicID, Code: "view", DeviceID: "big", Secret: e.secret}})[0]
			if res.Err != nil {
				b.Errorf("a trigger of the device during the erasure: %v", res.Err)
			}
			r.worst = max(r.worst, time.Since(begin))
			r.triggered++
			time.Sleep(20 * time.Millisecond)
		}
	})
	heap := sampleHeap()
	begin := time.Now()
	res, err := models.EraseLead(e.ctx, db, e.owner, e.app.PublicID, email)
	r.took = time.Since(begin)
	r.peak = heap()
	stop.Store(true)
	wg.Wait()
	if err != nil || res.DeletedEvents < int64(n) {
		b.Fatalf("erase: %v %+v, want at least %d events", err, res, n)
	}
	r.erased = res.DeletedEvents
	return r
}
