package models_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/crumbs-dev/crumbs/models"
	"github.com/crumbs-dev/crumbs/models/modelstest"
	"gorm.io/gorm"
)

// BenchmarkTombstones prices the tombstones of erased messageIds on the
// write path: every group commit probes erased_messages for its batch's
// messageIds (tombstone.go). It triggers, interleaved round by round on one
// writer, into an app without tombstones and into one holding a million
// (30 days of heavy erasing), and prints both rates and the median of the
// rounds' ratios:
//
//	go test ./models -run '^$' -bench Tombstones -benchtime 1x
func BenchmarkTombstones(b *testing.B) {
	b.Run("sqlite", func(b *testing.B) { benchTombstones(b, modelstest.SQLite(b)) })
	b.Run("mysql", func(b *testing.B) { benchTombstones(b, modelstest.MySQL(b)) })
}

const benchTombstoneCount = 1_000_000

func benchTombstones(b *testing.B, db *gorm.DB) {
	ctx := b.Context()
	owner := newUser(b, db)
	type target struct {
		app    *models.App
		secret string
		rates  []float64
	}
	var targets []*target
	for _, name := range []string{"no tombstones", "a million tombstones"} {
		app, secret, err := models.CreateApp(ctx, db, owner, models.AppInput{Name: &name})
		if err != nil {
			b.Fatal(err)
		}
		targets = append(targets, &target{app: app, secret: secret})
	}
	start := time.Now()
	if err := fillTombstones(ctx, db, targets[1].app.ID, benchTombstoneCount); err != nil {
		b.Fatal(err)
	}
	b.Logf("%d tombstones written in %v", benchTombstoneCount, time.Since(start).Round(time.Millisecond))
	w := models.NewWriter(db, models.NewCatalog(db, time.Minute), models.WriterOptions{})
	defer w.Close()
	var seq atomic.Int64
	const rounds, perRound, callers, batch = 5, 2 * time.Second, 32, 20
	var ratios []float64
	b.ResetTimer()
	for range b.N {
		for round := range rounds {
			// The order alternates, so that a drift over the run (a growing
			// table) weighs on both alike.
			order := []*target{targets[0], targets[1]}
			if round%2 == 1 {
				order[0], order[1] = order[1], order[0]
			}
			for _, t := range order {
				var events atomic.Int64
				deadline := time.Now().Add(perRound)
				began := time.Now()
				var wg sync.WaitGroup
				for range callers {
					wg.Go(func() {
						in := make([]models.TriggerInput, batch)
						for time.Now().Before(deadline) {
							for i := range in {
								n := seq.Add(1)
								msg := fmt.Sprintf("live-%d", n) // never erased: the common case
								in[i] = models.TriggerInput{Secret: t.secret, AppPublicID: t.app.PublicID,
									DeviceID: fmt.Sprintf("d-%d", n%5000), Code: "view", URL: "https://example.com/", MessageID: &msg}
							}
							for _, r := range w.Trigger(ctx, in) {
								if !r.Accepted {
									b.Error(r.Err)
									return
								}
							}
							events.Add(batch)
						}
					})
				}
				wg.Wait()
				rate := float64(events.Load()) / time.Since(began).Seconds()
				t.rates = append(t.rates, rate)
				b.Logf("round %d  %-22s %8.0f events/s", round+1, t.app.Name, rate)
			}
			n := len(targets[0].rates) - 1
			ratios = append(ratios, targets[1].rates[n]/targets[0].rates[n])
		}
	}
	b.Logf("ratio with/without per round: %.2f", ratios)
	b.ReportMetric(median(targets[0].rates), "events/s-without")
	b.ReportMetric(median(targets[1].rates), "events/s-with")
	b.ReportMetric(median(ratios), "ratio")
}

// fillTombstones writes n tombstones of made-up messageIds for the app,
// 1,000 rows to a statement.
func fillTombstones(ctx context.Context, db *gorm.DB, appID uint64, n int) error {
	now := models.Now()
	for from := 0; from < n; from += 1000 {
		var sb strings.Builder
		sb.WriteString("INSERT INTO erased_messages (app_id, message_id, erased_at, hits) VALUES ")
		args := make([]any, 0, 3000)
		for i := from; i < min(from+1000, n); i++ {
			if i > from {
				sb.WriteByte(',')
			}
			sb.WriteString("(?,?,?,0)")
			args = append(args, appID, fmt.Sprintf("erased-%07d", i), now)
		}
		if err := db.WithContext(ctx).Exec(sb.String(), args...).Error; err != nil {
			return err
		}
	}
	return nil
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	return slices.Sorted(slices.Values(xs))[len(xs)/2]
}
