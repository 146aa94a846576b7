package models_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/crumbs-dev/crumbs/models"
	"github.com/crumbs-dev/crumbs/models/modelstest"
)

// testRule and replayRule read a range's events a chunk at a time: over
// several chunks (2,345 events, 1,000 a chunk), the count, the scanned
// events, the samples (the three newest matches, newest first) and the
// replayed set equal a brute-force match.
func TestTestRuleAcrossChunks(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *gorm.DB) {
		e := newAutomationEnv(t, db, models.DispatcherOptions{})
		e.define("order")
		e.matcher("Big orders", "order", models.Rule{Field: "properties.total", Operator: models.OpGreaterThan, Value: "50"})
		start := time.Now().Add(-time.Minute)
		var want []uint64
		const n = 2345
		for from := 0; from < n; from += 500 {
			var batch []models.TriggerInput
			for i := from; i < min(from+500, n); i++ {
				batch = append(batch, models.TriggerInput{AppPublicID: e.app.PublicID, Secret: e.secret, Code: "order",
					DeviceID: fmt.Sprint("d-", i%13), Properties: map[string]any{"total": i % 97}})
			}
			for i, res := range e.writer.Trigger(e.ctx, batch) {
				if res.Err != nil || !res.Accepted {
					t.Fatalf("trigger: %+v", res)
				}
				if (from+i)%97 > 50 {
					want = append(want, res.EventID)
				}
			}
		}
		res, err := models.TestRuleFor(e.ctx, db, e.owner, e.app.PublicID, models.TestRuleInput{Matcher: "Big orders", From: start, To: time.Now().Add(time.Minute)})
		if err != nil {
			t.Fatal(err)
		}
		if res.Matched != len(want) || res.Scanned != n || res.Truncated || len(res.Samples) != 3 {
			t.Fatalf("testRule: matched %d scanned %d truncated %v samples %d; brute force %d of %d", res.Matched, res.Scanned, res.Truncated, len(res.Samples), len(want), n)
		}
		newest := want[len(want)-3:]
		for i, s := range res.Samples {
			id := s["data"].(models.JSONObject)["event"].(models.JSONObject)["id"]
			if wantID := models.FormatID(newest[2-i]); id != wantID {
				t.Fatalf("sample %d is event %v, want %s (the newest matches, newest first)", i, id, wantID)
			}
		}
		if err := e.writer.EventLog().Drain(e.ctx); err != nil {
			t.Fatal(err)
		}
		recv := newReceiver(t, nil)
		created := e.rule("Replayed", "Big orders", false, webhookTo(recv.URL))
		replayed, err := models.ReplayRuleFor(e.ctx, db, e.owner, e.app.PublicID, models.FormatID(created.Rule.ID), start, time.Now().Add(time.Minute))
		if err != nil || replayed != len(want) {
			t.Fatalf("replayRule: %d events, %v; want %d", replayed, err, len(want))
		}
		// Its deliveries are not this test's subject: deleting the rule deletes
		// them, so no other test's dispatcher retries them on the shared store.
		if _, err := models.DeleteAutomationRuleFor(e.ctx, db, e.owner, e.app.PublicID, models.FormatID(created.Rule.ID)); err != nil {
			t.Fatal(err)
		}
	})
}

// A store fault while testRule looks up the matcher's definition is a
// retryable UNAVAILABLE, not "nothing matched".
func TestTestRuleStoreFault(t *testing.T) {
	db := modelstest.SQLite(t)
	var failing atomic.Bool // the callback is registered before anything runs queries: registering is not safe beside them
	if err := db.Callback().Query().Before("gorm:query").Register("test:definitions-fault", func(tx *gorm.DB) {
		if failing.Load() && strings.Contains(tx.Statement.Table, "event_definitions") && tx.Statement.Context.Value(testRuleCall{}) != nil {
			tx.AddError(fmt.Errorf("injected: %w", context.DeadlineExceeded))
		}
	}); err != nil {
		t.Fatal(err)
	}
	e := newAutomationEnv(t, db, models.DispatcherOptions{})
	e.define("order")
	e.matcher("Orders", "order")
	e.mustTrigger(models.TriggerInput{Secret: e.secret, Code: "order", DeviceID: "d1"})
	failing.Store(true)
	ctx := context.WithValue(e.ctx, testRuleCall{}, true)
	res, err := models.TestRuleFor(ctx, db, e.owner, e.app.PublicID, models.TestRuleInput{Matcher: "Orders", From: time.Now().Add(-time.Hour), To: time.Now().Add(time.Minute)})
	if code, _ := models.Code(err); code != models.CodeUnavailable {
		t.Fatalf("testRule with the definitions unreadable: %+v, %v (code %s), want UNAVAILABLE", res, err, code)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("error %v does not wrap the fault", err)
	}
}

type testRuleCall struct{}
