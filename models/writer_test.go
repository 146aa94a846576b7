package models_test

import (
	"bytes"
	"context"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/crumbs-dev/crumbs/models"
	"github.com/crumbs-dev/crumbs/models/modelstest"
	"gorm.io/gorm"
)

// TestIdentifiersCompareExactly sends ids that differ only in trailing
// spaces. A PAD SPACE collation (MySQL's utf8mb4_bin) takes them for one id:
// the dedupe read then answered the second messageId with the first's row,
// and the writer crashed the process.
func TestIdentifiersCompareExactly(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *gorm.DB) {
		e := newEnv(t, db)
		first := e.mustTrigger(models.TriggerInput{Code: "view", DeviceID: "pad-dev", MessageID: ptr("pad-1")})
		second := e.mustTrigger(models.TriggerInput{Code: "view", DeviceID: "pad-dev ", MessageID: ptr("pad-1 ")})
		if second.Duplicate || second.EventID == first.EventID {
			t.Fatalf("pad-1 then 'pad-1 ': %+v then %+v, want two events", first, second)
		}
		// Both in one batch, and a real duplicate of each.
		res := e.writer.Trigger(e.ctx, []models.TriggerInput{
			{AppPublicID: e.app.PublicID, DeviceID: "pad-dev", Code: "view", MessageID: ptr("pad-2")},
			{AppPublicID: e.app.PublicID, DeviceID: "pad-dev", Code: "view", MessageID: ptr("pad-2  ")},
			{AppPublicID: e.app.PublicID, DeviceID: "pad-dev", Code: "view", MessageID: ptr("pad-1 ")},
			{AppPublicID: e.app.PublicID, DeviceID: "pad-dev", Code: "view", MessageID: ptr("pad-1")},
		})
		for i, r := range res {
			if r.Err != nil || !r.Accepted {
				t.Fatalf("batch item %d: %+v", i, r)
			}
		}
		if res[0].Duplicate || res[1].Duplicate || res[0].EventID == res[1].EventID {
			t.Fatalf("pad-2 and 'pad-2  ' in one batch: %+v %+v", res[0], res[1])
		}
		if !res[2].Duplicate || res[2].EventID != second.EventID || !res[3].Duplicate || res[3].EventID != first.EventID {
			t.Fatalf("repeats answered %+v %+v, want duplicates of %d and %d", res[2], res[3], second.EventID, first.EventID)
		}
		if n := e.countEvents("1 = 1"); n != 4 {
			t.Fatalf("%d events stored, want 4", n)
		}
		var devices []string
		if err := db.Model(&models.Device{}).Where("app_id = ?", e.app.ID).Order("device_id").Pluck("device_id", &devices).Error; err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(devices, []string{"pad-dev", "pad-dev "}) {
			t.Fatalf("devices %q, want two", devices)
		}
		if n := e.countEvents("device_id = ?", "pad-dev "); n != 1 {
			t.Fatalf("%d events of device 'pad-dev ', want 1", n)
		}
	})
}

// TestWriterSurvivesPanic makes one group commit panic inside its
// transaction: that commit's triggers are answered INTERNAL_SERVER_ERROR and
// stored not at all, the writer keeps going, and triggers submitted with them
// in the same group commit are still stored.
func TestWriterSurvivesPanic(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, shared *gorm.DB) {
		// A handle of its own, so the injected fault touches no other test.
		db := reopen(t, shared)
		if err := db.Callback().Raw().Before("gorm:raw").Register("test:panic", func(tx *gorm.DB) {
			for _, v := range tx.Statement.Vars {
				if s, ok := v.(*string); ok && s != nil && *s == "poison" {
					panic("injected fault")
				}
			}
		}); err != nil {
			t.Fatal(err)
		}
		e := newEnv(t, db)
		// A writer that waits for more triggers, so the three below usually
		// share one group commit (the outcome must be the same when not).
		var logged syncBuffer
		w := models.NewWriter(db, models.NewCatalog(db, time.Minute), models.WriterOptions{
			Delay: 50 * time.Millisecond, Log: slog.New(slog.NewTextHandler(&logged, nil)),
		})
		t.Cleanup(w.Close)
		msgs := []string{"good-1", "poison", "good-2"}
		results := make([]models.TriggerResult, len(msgs))
		var wg sync.WaitGroup
		for i, msg := range msgs {
			wg.Go(func() {
				results[i] = w.Trigger(e.ctx, []models.TriggerInput{{AppPublicID: e.app.PublicID, DeviceID: "d", Code: "view", MessageID: ptr(msg)}})[0]
			})
		}
		wg.Wait()
		wantCode(t, results[1].Err, models.CodeInternal)
		for _, i := range []int{0, 2} {
			if r := results[i]; r.Err != nil || !r.Accepted || r.Duplicate {
				t.Fatalf("%s: %+v, want stored", msgs[i], r)
			}
		}
		if n := e.countEvents("message_id = ?", "poison"); n != 0 {
			t.Fatalf("%d poisoned events stored", n)
		}
		// The writer still works.
		r := w.Trigger(e.ctx, []models.TriggerInput{{AppPublicID: e.app.PublicID, DeviceID: "d", Code: "view", MessageID: ptr("after")}})[0]
		if r.Err != nil || !r.Accepted {
			t.Fatalf("after the panic: %+v", r)
		}
		if n := e.countEvents("1 = 1"); n != 3 {
			t.Fatalf("%d events stored, want 3", n)
		}
		if log := logged.String(); !strings.Contains(log, "level=ERROR msg=\"group commit panicked\"") || !strings.Contains(log, "injected fault") {
			t.Fatalf("log %q: want the panic logged as an error", log)
		}
	})
}

// syncBuffer is a bytes.Buffer safe for a logger and a test to share.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// reopen returns a second gorm handle on the database of db.
func reopen(t *testing.T, db *gorm.DB) *gorm.DB {
	t.Helper()
	if db.Dialector.Name() == "sqlite" {
		return modelstest.SQLite(t) // a fresh file is a handle of its own
	}
	other, err := models.Open(context.Background(), modelstest.MySQLDSN(t), models.DBOptions{MaxOpenConns: 4})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if sqlDB, err := other.DB(); err == nil {
			sqlDB.Close()
		}
	})
	return other
}
