package models

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// The rollups migration backfills rollups of events stored before it; the
// result must equal what the writer maintains.
func TestBackfillRollupsMatchesWriter(t *testing.T) {
	eachEmptyStore(t, func(t *testing.T, newURL func() string) { testBackfill(t, newURL()) })
}

func testBackfill(t *testing.T, url string) {
	ctx := context.Background()
	db, err := Open(ctx, url, DBOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if sqlDB, err := db.DB(); err == nil {
			sqlDB.Close()
		}
	})
	if err := Migrate(ctx, db); err != nil {
		t.Fatal(err)
	}
	name := "backfill"
	owner, err := CreateUser(ctx, db, "backfill@example.com", "", "correct horse battery")
	if err != nil {
		t.Fatal(err)
	}
	app, secret, err := CreateApp(ctx, db, Viewer{UserID: owner.ID}, AppInput{Name: &name})
	if err != nil {
		t.Fatal(err)
	}
	w := NewWriter(db, NewCatalog(db, time.Minute), WriterOptions{})
	at := time.Date(2026, 9, 30, 20, 0, 0, 0, time.UTC)
	var in []TriggerInput
	for i := range 300 {
		ts := at.Add(time.Duration(i*17) * time.Minute)
		in = append(in, TriggerInput{Secret: secret, AppPublicID: app.PublicID, DeviceID: fmt.Sprintf("d%d", i%23), Code: []string{"view", "click", "submit"}[i%3],
			URL: fmt.Sprintf("https://x.example/p%d?q=%d", i%4, i%2), Referrer: "https://ref.example/", OccurredAt: &ts})
	}
	for _, r := range w.Trigger(ctx, in) {
		if r.Err != nil {
			t.Fatal(r.Err)
		}
	}
	w.Close()
	type row struct {
		Kind         string
		Grain        int8
		DefinitionID uint64
		Bucket       time.Time
		Dim          int64
		Value        string
		Count        int64
		Sketch       []byte
	}
	snapshot := func() map[string]string {
		var rows []row
		if err := db.Table("rollups").Order("kind, grain, definition_id, bucket, dim").Scan(&rows).Error; err != nil {
			t.Fatal(err)
		}
		out := map[string]string{}
		for _, r := range rows {
			est := int64(0)
			if len(r.Sketch) > 0 {
				var acc sketchAcc
				if err := acc.add(r.Sketch); err != nil {
					t.Fatal(err)
				}
				est = acc.estimate()
			}
			out[fmt.Sprint(r.Kind, r.Grain, r.DefinitionID, r.Bucket, r.Dim)] = fmt.Sprint(r.Value, r.Count, est)
		}
		return out
	}
	before := snapshot()
	if err := db.Exec("DELETE FROM rollups").Error; err != nil {
		t.Fatal(err)
	}
	if err := backfillRollups(db); err != nil {
		t.Fatal(err)
	}
	after := snapshot()
	if len(before) == 0 || len(before) != len(after) {
		t.Fatalf("%d rows written, %d backfilled", len(before), len(after))
	}
	for k, v := range before {
		if after[k] != v {
			t.Fatalf("%s: writer %s, backfill %s", k, v, after[k])
		}
	}
}

// Apps whose retention ran before apps.expired_before existed get from
// their receipts the latest cutoff it applied, also when a later run, with
// a longer retention, applied an earlier one.
func TestBackfillExpiredBefore(t *testing.T) {
	eachEmptyStore(t, func(t *testing.T, newURL func() string) {
		ctx := context.Background()
		db := openTestDB(t, newURL())
		if err := Migrate(ctx, db); err != nil {
			t.Fatal(err)
		}
		owner, err := CreateUser(ctx, db, "expired@example.com", "", "correct horse battery")
		if err != nil {
			t.Fatal(err)
		}
		newApp := func(name string) *App {
			app, _, err := CreateApp(ctx, db, Viewer{UserID: owner.ID}, AppInput{Name: &name})
			if err != nil {
				t.Fatal(err)
			}
			return app
		}
		shortened, lengthened, erased, never := newApp("shortened"), newApp("lengthened"), newApp("erased"), newApp("never")
		run := time.Date(2026, 11, 20, 14, 23, 5, 0, time.UTC)
		receipt := func(app *App, kind string, subject time.Time, at time.Time) {
			r := newAuditRecord(nil, app.ID, kind, subject.Format(time.RFC3339))
			r.CreatedAt = at
			if err := writeReceipt(db, r, &EraseResult{DeletedEvents: 1}); err != nil {
				t.Fatal(err)
			}
		}
		retention := func(app *App, days int, at time.Time) { receipt(app, AuditRetention, RetentionCutoff(days, at), at) }
		retention(shortened, 30, run)
		retention(shortened, 7, run.Add(time.Hour))
		retention(lengthened, 1, run)
		retention(lengthened, 30, run.Add(time.Hour))
		retention(lengthened, 30, run.Add(2*time.Hour))
		receipt(erased, AuditEraseBefore, run.AddDate(0, 0, -2), run)

		if err := backfillExpiredBefore(db); err != nil {
			t.Fatal(err)
		}
		want := map[uint64]time.Time{
			shortened.ID:  RetentionCutoff(7, run.Add(time.Hour)),
			lengthened.ID: RetentionCutoff(1, run),
		}
		for _, app := range []*App{shortened, lengthened, erased, never} {
			var got dbTime
			if err := db.Raw("SELECT expired_before FROM apps WHERE id = ?", app.ID).Row().Scan(&got); err != nil {
				t.Fatal(err)
			}
			if w, ok := want[app.ID]; got.Valid != ok || !got.Time.Equal(w) {
				t.Errorf("app %s: expired_before %v (set: %v), want %v (set: %v)", app.Name, got.Time, got.Valid, w, ok)
			}
		}
	})
}
