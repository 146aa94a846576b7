package models_test

import (
	"fmt"
	"sync/atomic"
	"testing"

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
	app, _, err := models.CreateApp(ctx, db, newUser(b, db), models.AppInput{Name: &name})
	if err != nil {
		b.Fatal(err)
	}
	w := models.NewWriter(db, models.NewCatalog(db, 0), models.WriterOptions{})
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
				in[i] = models.TriggerInput{
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
