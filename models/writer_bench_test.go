package models_test

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/crumbs-dev/crumbs/models"
	"github.com/crumbs-dev/crumbs/models/modelstest"
	"gorm.io/gorm"
)

// BenchmarkTrigger measures the durable write path (validation, group commit,
// dedupe by messageId, device upsert, counters) without HTTP or GraphQL:
//
//	go test ./models -run '^$' -bench Trigger -benchtime 5s
func BenchmarkTrigger(b *testing.B) {
	for _, batch := range []int{1, 100} {
		b.Run(fmt.Sprintf("batch=%d/sqlite", batch), func(b *testing.B) { benchTrigger(b, modelstest.SQLite(b), batch) })
		b.Run(fmt.Sprintf("batch=%d/mysql", batch), func(b *testing.B) { benchTrigger(b, modelstest.MySQL(b), batch) })
	}
}

func benchTrigger(b *testing.B, db *gorm.DB, batch int) {
	ctx := b.Context()
	name := "bench"
	app, secret, err := models.CreateApp(ctx, db, newUser(b, db), models.AppInput{Name: &name})
	if err != nil {
		b.Fatal(err)
	}
	w := models.NewWriter(db, models.NewCatalog(db, time.Minute), models.WriterOptions{})
	defer w.Close()
	codes := []string{"view", "click", "submit"}
	var seq atomic.Int64
	b.SetParallelism(16) // 16 x GOMAXPROCS concurrent callers, as behind an HTTP server
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		in := make([]models.TriggerInput, batch)
		for pb.Next() {
			for i := range in {
				n := seq.Add(1)
				msg := fmt.Sprintf("m-%d", n)
				in[i] = models.TriggerInput{Secret: secret, // as a server sends batches
					AppPublicID: app.PublicID, DeviceID: fmt.Sprintf("d-%d", n%5000), Code: codes[n%3],
					URL: "https://example.com/", MessageID: &msg, Properties: map[string]any{"n": n},
				}
			}
			for _, r := range w.Trigger(ctx, in) {
				if !r.Accepted {
					b.Fatal(r.Err)
				}
			}
		}
	})
	b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkDeriveRollups measures how fast the rollups consumer derives a
// backlog (events spread over an hour, 100 pages, 5,000 devices):
//
//	go test ./models -run '^$' -bench DeriveRollups -benchtime 3x
func BenchmarkDeriveRollups(b *testing.B) {
	b.Run("sqlite", func(b *testing.B) { benchDerive(b, modelstest.SQLite(b)) })
	b.Run("mysql", func(b *testing.B) { benchDerive(b, modelstest.MySQL(b)) })
}

func benchDerive(b *testing.B, db *gorm.DB) {
	ctx := b.Context()
	name := "derive"
	app, _, err := models.CreateApp(ctx, db, newUser(b, db), models.AppInput{Name: &name})
	if err != nil {
		b.Fatal(err)
	}
	defs, _ := models.EventDefinitions(ctx, db, app.ID, nil)
	log := models.NewEventLog(db, models.EventLogOptions{})
	log.Start(models.RollupsConsumer())
	defer log.Close()
	if err := log.Drain(ctx); err != nil {
		b.Fatal(err)
	}
	const n = 50_000
	hour := time.Now().UTC().Add(-time.Hour)
	var derived time.Duration
	for range b.N {
		for start := 0; start < n; start += 5000 {
			batch := make([]*models.Event, 0, 5000)
			for i := start; i < start+5000; i++ {
				batch = append(batch, &models.Event{AppID: app.ID, DefinitionID: defs[i%len(defs)].ID, DeviceID: fmt.Sprintf("d-%d", i%5000),
					URL: fmt.Sprintf("https://example.com/p/%d", i%100), Source: "api", OccurredAt: hour.Add(time.Duration(i) * time.Hour / n), ReceivedAt: time.Now()})
			}
			if err := models.ImportEvents(ctx, db, batch); err != nil {
				b.Fatal(err)
			}
		}
		start := time.Now()
		if err := log.Drain(ctx); err != nil {
			b.Fatal(err)
		}
		derived += time.Since(start)
	}
	b.ReportMetric(float64(n*b.N)/derived.Seconds(), "events/s")
}
