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
