package main

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/crumbs-dev/crumbs/models"
	"github.com/crumbs-dev/crumbs/models/modelstest"
)

func TestMain(m *testing.M) { os.Exit(modelstest.Main(m)) }

// A small seed must leave rollups, counters and devices that match the raw events.
func TestSeedIsConsistent(t *testing.T) {
	for _, store := range []struct{ name, url string }{
		{"sqlite", "sqlite:" + filepath.Join(t.TempDir(), "seed.db")},
		{"mysql", ""},
	} {
		t.Run(store.name, func(t *testing.T) {
			url := store.url
			if url == "" {
				url = modelstest.MySQLDSN(t)
			}
			ctx := context.Background()
			if err := run(ctx, options{databaseURL: url, apps: 1, events: 4000, days: 3, devices: 300, leads: 20, workers: 2, seed: 3}); err != nil {
				t.Fatal(err)
			}
			db, err := models.Open(ctx, url, models.DBOptions{})
			if err != nil {
				t.Fatal(err)
			}
			var app models.App
			db.Order("id DESC").Take(&app)
			end := time.Now().UTC().Truncate(time.Hour)
			in := models.RangeInput{From: end.Add(-4 * 24 * time.Hour), To: end.Add(time.Hour), Interval: models.IntervalDay}
			o, err := models.AppOverview(ctx, db, &app, in, true)
			if err != nil {
				t.Fatal(err)
			}
			var raw, devices, leads int64
			db.Model(&models.Event{}).Where("app_id = ?", app.ID).Count(&raw)
			db.Model(&models.Device{}).Where("app_id = ?", app.ID).Count(&devices)
			db.Model(&models.Lead{}).Where("app_id = ?", app.ID).Count(&leads)
			if raw < 3900 || o.TotalEvents != raw || o.UniqueDevices != devices || leads != 20 || o.IdentifiedLeads == 0 {
				t.Fatalf("overview %d events %d devices %d leads; raw %d events %d devices %d leads", o.TotalEvents, o.UniqueDevices, o.IdentifiedLeads, raw, devices, leads)
			}
			for _, d := range o.Definitions {
				if d.Count != d.Definition.TriggerCount {
					t.Fatalf("%s: %d events, counter %d", d.Definition.Code, d.Count, d.Definition.TriggerCount)
				}
			}
			f, err := models.Funnel(ctx, db, &app, models.FunnelInput{Range: in, Window: time.Hour,
				Steps: []models.Matcher{{Code: "pricing_view"}, {Code: "trial_click"}, {Code: "signup"}}})
			if err != nil || f.Steps[2].Entered == 0 {
				t.Fatalf("funnel finds no journeys: %+v %v", f, err)
			}
		})
	}
}
