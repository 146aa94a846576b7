package models_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/crumbs-dev/crumbs/models"
	"github.com/crumbs-dev/crumbs/models/modelstest"
	"gorm.io/gorm"
)

// Concurrent writers (four transactions in flight on MySQL) hit the same
// rollup rows; counts and sketches must still add up to the raw events.
func TestRollupsUnderConcurrentWriters(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *gorm.DB) {
		e := newEnv(t, db)
		w := models.NewWriter(db, e.writer.Catalog(), models.WriterOptions{Writers: 4, MaxBatch: 50})
		defer w.Close()
		at := time.Date(2026, 11, 2, 10, 0, 0, 0, time.UTC)
		var wg sync.WaitGroup
		for g := range 16 {
			wg.Go(func() {
				for i := range 25 {
					ts := at.Add(time.Duration(g*i) * time.Minute)
					res := w.Trigger(e.ctx, []models.TriggerInput{{Secret: e.secret, AppPublicID: e.app.PublicID, DeviceID: fmt.Sprintf("d-%d", (g*7+i)%60),
						Code: []string{"view", "click"}[i%2], URL: fmt.Sprintf("https://x.example/p%d", i%5), OccurredAt: &ts}})
					if res[0].Err != nil {
						t.Error(res[0].Err)
					}
				}
			})
		}
		wg.Wait()
		o, err := models.AppOverview(e.ctx, db, e.app, models.RangeInput{From: at, To: at.Add(24 * time.Hour), Interval: models.IntervalHour}, false)
		if err != nil {
			t.Fatal(err)
		}
		exact, err := models.AppOverview(e.ctx, db, e.app, models.RangeInput{From: at, To: at.Add(24 * time.Hour), Interval: models.IntervalHour}, true)
		if err != nil {
			t.Fatal(err)
		}
		near := func(est, exact int64) bool { return est >= exact-1 && est <= exact+1 } // a sketch estimate
		if o.TotalEvents != 400 || e.countEvents("1 = 1") != 400 || !near(o.UniqueDevices, exact.UniqueDevices) || exact.UniqueDevices != 60 {
			t.Fatalf("total %d uniques %d exact %d", o.TotalEvents, o.UniqueDevices, exact.UniqueDevices)
		}
		for i, d := range o.Definitions {
			if d.Count != exact.Definitions[i].Count || !near(d.UniqueDevices, exact.Definitions[i].UniqueDevices) {
				t.Fatalf("%s: %d/%d, exact %d/%d", d.Definition.Code, d.Count, d.UniqueDevices, exact.Definitions[i].Count, exact.Definitions[i].UniqueDevices)
			}
		}
		pages, err := models.AppBreakdown(e.ctx, db, e.app, models.RangeInput{From: at, To: at.Add(24 * time.Hour)}, models.BreakdownPages, 10)
		if err != nil || len(pages) != 5 || pages[0].Count != 80 {
			t.Fatalf("pages %v %v", pages, err)
		}
	})
}

// Erasing leads while writers store events of the same app and hours
// leaves rollups equal to the raw events.
func TestRollupsWhileErasing(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *gorm.DB) {
		e := newEnv(t, db)
		w := models.NewWriter(db, e.writer.Catalog(), models.WriterOptions{Writers: 2, MaxBatch: 20})
		defer w.Close()
		at := time.Date(2026, 11, 3, 10, 0, 0, 0, time.UTC)
		trigger := func(device string, i int) {
			ts := at.Add(time.Duration(i%90) * time.Minute)
			res := w.Trigger(e.ctx, []models.TriggerInput{{Secret: e.secret, AppPublicID: e.app.PublicID, DeviceID: device, Code: []string{"view", "click"}[i%2],
				URL: fmt.Sprintf("https://x.example/p%d", i%3), OccurredAt: &ts}})
			if res[0].Err != nil {
				t.Error(res[0].Err)
			}
		}
		for i := range 10 {
			trigger(fmt.Sprintf("lead-dev-%d", i), i)
			if _, err := models.Identify(e.ctx, db, w.Catalog(), models.IdentifyInput{Secret: e.secret, AppPublicID: e.app.PublicID, DeviceID: fmt.Sprintf("lead-dev-%d", i), Email: fmt.Sprintf("l%d@example.com", i)}); err != nil {
				t.Fatal(err)
			}
		}
		var wg sync.WaitGroup
		for g := range 4 {
			wg.Go(func() {
				for i := range 40 {
					trigger(fmt.Sprintf("anon-%d", (g*40+i)%25), g*40+i)
					if g == 0 && i < 10 {
						trigger(fmt.Sprintf("lead-dev-%d", i), i) // events of devices about to be erased
					}
				}
			})
		}
		wg.Go(func() {
			for i := range 10 {
				if _, err := models.EraseLead(e.ctx, db, e.owner, e.app.PublicID, fmt.Sprintf("l%d@example.com", i)); err != nil {
					t.Error(err)
				}
			}
		})
		wg.Wait()
		rng := models.RangeInput{From: at, To: at.Add(3 * time.Hour), Interval: models.IntervalHour}
		o, err := models.AppOverview(e.ctx, db, e.app, rng, false)
		if err != nil {
			t.Fatal(err)
		}
		exact, err := models.AppOverview(e.ctx, db, e.app, rng, true)
		if err != nil {
			t.Fatal(err)
		}
		raw := e.countEvents("1 = 1")
		if o.TotalEvents != raw || o.UniqueDevices < exact.UniqueDevices-1 || o.UniqueDevices > exact.UniqueDevices+1 {
			t.Fatalf("rollups: %d events ~%d devices; raw %d events %d devices", o.TotalEvents, o.UniqueDevices, raw, exact.UniqueDevices)
		}
		for i, s := range o.Series {
			if s.Count != exact.Series[i].Count {
				t.Fatalf("bucket %v: %d, raw %d", s.Start, s.Count, exact.Series[i].Count)
			}
		}
	})
}
