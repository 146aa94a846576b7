package models_test

import (
	"context"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/crumbs-dev/crumbs/models"
	"github.com/crumbs-dev/crumbs/models/modelstest"
	"gorm.io/gorm"
)

// BenchmarkDeadLetterPage reads the first page of an app's dead-lettered
// deliveries, five among CRUMBS_BENCH_DELIVERIES delivered ones (default
// 200,000), against the first page of the delivered ones, on both stores:
// the delivery log's status filter reads an index of its own when the
// ratio stays near 1, and scans the app's whole log when it grows with the
// log.
//
//	go test -run '^$' -bench DeadLetterPage -benchtime 20x ./models/
func BenchmarkDeadLetterPage(b *testing.B) {
	n := 200_000
	if s := os.Getenv("CRUMBS_BENCH_DELIVERIES"); s != "" {
		var err error
		if n, err = strconv.Atoi(s); err != nil || n < 100 {
			b.Fatalf("CRUMBS_BENCH_DELIVERIES=%q: want a number of at least 100", s)
		}
	}
	run := func(b *testing.B, db *gorm.DB) {
		ctx := context.Background()
		owner := newUser(b, db)
		name := "dead-letter bench"
		app, _, err := models.CreateApp(ctx, db, owner, models.AppInput{Name: &name})
		if err != nil {
			b.Fatal(err)
		}
		code, matcher, rule, url := "signup", "Signups", "To the CRM", "http://127.0.0.1:9/hook"
		if _, err := models.CreateEventDefinition(ctx, db, owner, app.PublicID, models.EventDefinitionInput{Code: &code, Name: &code}); err != nil {
			b.Fatal(err)
		}
		if _, err := models.CreateEventMatcherFor(ctx, db, owner, app.PublicID, models.EventMatcherInput{Name: &matcher, Code: &code}); err != nil {
			b.Fatal(err)
		}
		created, err := models.CreateAutomationRuleFor(ctx, db, owner, models.URLGuard{AllowPrivate: true}, app.PublicID,
			models.AutomationRuleInput{Name: &rule, Matcher: &matcher, Enabled: ptr(false)},
			[]models.AutomationActionInput{{Kind: ptr(models.ActionWebhook), URL: &url}})
		if err != nil {
			b.Fatal(err)
		}
		actionID := created.Secrets[0].Action.ID
		b.Cleanup(func() {
			models.DeleteAutomationRuleFor(ctx, db, owner, app.PublicID, models.FormatID(created.Rule.ID))
		})
		now := time.Now()
		for from := 0; from < n; from += 2000 {
			var ds []*models.Delivery
			for i := from; i < min(from+2000, n); i++ {
				status := models.DeliverySucceeded
				if i%(n/5) == n/10 {
					status = models.DeliveryDead
				}
				ds = append(ds, &models.Delivery{AppID: app.ID, RuleID: created.Rule.ID, ActionID: actionID, EventID: uint64(i + 1),
					Status: status, Attempts: 1, LastStatusCode: 200, CreatedAt: now, UpdatedAt: now})
			}
			if err := db.CreateInBatches(ds, 500).Error; err != nil {
				b.Fatal(err)
			}
		}
		page := func(status string) time.Duration {
			start := time.Now()
			got, err := models.DeliveriesFor(ctx, db, owner, app.PublicID, models.DeliveriesInput{Status: status, First: 50})
			if err != nil {
				b.Fatal(err)
			}
			if want := map[string]int{models.DeliveryDead: 5, models.DeliverySucceeded: 50}[status]; len(got.Deliveries) != want {
				b.Fatalf("%s: %d deliveries, want %d", status, len(got.Deliveries), want)
			}
			return time.Since(start)
		}
		var dead, delivered time.Duration
		b.ResetTimer()
		for range b.N {
			delivered += page(models.DeliverySucceeded)
			dead += page(models.DeliveryDead)
		}
		b.StopTimer()
		b.ReportMetric(float64(dead.Microseconds())/float64(b.N)/1000, "ms/dead-page")
		b.ReportMetric(float64(delivered.Microseconds())/float64(b.N)/1000, "ms/delivered-page")
		b.ReportMetric(float64(dead)/float64(delivered), "dead/delivered")
		b.Logf("%d deliveries: the dead-letter page took %.2f ms, the delivered page %.2f ms (%.1f×)", n,
			float64(dead.Microseconds())/float64(b.N)/1000, float64(delivered.Microseconds())/float64(b.N)/1000, float64(dead)/float64(delivered))
	}
	b.Run("sqlite", func(b *testing.B) { run(b, modelstest.SQLite(b)) })
	b.Run("mysql", func(b *testing.B) { run(b, modelstest.MySQL(b)) })
}
