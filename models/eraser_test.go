package models_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/crumbs-dev/crumbs/models"
	"github.com/crumbs-dev/crumbs/models/modelstest"
	"gorm.io/gorm"
)

// pacedStore returns a handle on db's store of the test's own, whose every
// statement deleting events first calls onDelete (which may sleep, or
// cancel a context), so that an erasure takes as long as the test needs.
func pacedStore(t *testing.T, db *gorm.DB, onDelete func()) *gorm.DB {
	t.Helper()
	if db.Dialector.Name() != "sqlite" {
		// The MySQL handle is shared by the package's tests: open one.
		var err error
		db, err = models.Open(context.Background(), modelstest.MySQLDSN(t), models.DBOptions{MaxOpenConns: 8})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if sqlDB, err := db.DB(); err == nil {
				sqlDB.Close()
			}
		})
	}
	err := db.Callback().Delete().Before("gorm:delete").Register("test:paced", func(d *gorm.DB) {
		if d.Statement.Table == "events" {
			onDelete()
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	return db
}

// seedLead stores events with messageIds on devices of one lead, and
// derives the rollups.
func seedLead(e *env, email string, devices, events int) {
	e.t.Helper()
	for d := range devices {
		device := fmt.Sprintf("%s-d%d", email, d)
		for i := range events {
			e.mustTrigger(models.TriggerInput{Code: "view", DeviceID: device, MessageID: ptr(fmt.Sprintf("%s-%d", device, i))})
		}
		if _, err := models.Identify(e.ctx, e.db, e.writer.Catalog(), models.IdentifyInput{AppPublicID: e.app.PublicID, DeviceID: device, Email: email, Secret: e.secret}); err != nil {
			e.t.Fatal(err)
		}
	}
	if err := e.writer.EventLog().Drain(e.ctx); err != nil {
		e.t.Fatal(err)
	}
}

// waitErased polls the erasure until it is done and returns it.
func waitErased(e *env, id uint64) *models.EraseResult {
	e.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		res, err := models.ErasureStatus(e.ctx, e.db, e.owner, e.app.PublicID, models.FormatID(id))
		if err != nil {
			e.t.Fatal(err)
		}
		if res.Done {
			return res
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("erasure %d not done after a minute: %+v", id, res)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// receipts returns the app's receipts of kind.
func receipts(e *env, kind string) []models.AuditRecord {
	e.t.Helper()
	var rows []models.AuditRecord
	if err := e.db.Where("app_id = ? AND kind = ?", e.app.ID, kind).Find(&rows).Error; err != nil {
		e.t.Fatal(err)
	}
	return rows
}

// An erasure longer than the Eraser's wait is answered with done false,
// its id and the counts so far; the caller leaving does not stop it, asking
// again joins it, and it finishes with one receipt of the complete counts.
func TestEraserAnswersBeforeTheErasureEnds(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *gorm.DB) {
		db = pacedStore(t, db, func() { time.Sleep(100 * time.Millisecond) })
		e := newEnv(t, db)
		seedLead(e, "long@example.com", 6, 2)
		er := models.NewEraser(db, models.EraserOptions{Wait: 150 * time.Millisecond, LeaseTTL: 5 * time.Second})
		t.Cleanup(er.Close)

		ctx, leave := context.WithCancel(e.ctx)
		res, err := er.EraseLead(ctx, e.owner, e.app.PublicID, "long@example.com")
		leave()
		if err != nil || res.Done || !res.Erased || res.ErasureID == 0 || res.ReceiptID != 0 || res.DeletedEvents >= 12 {
			t.Fatalf("first answer: %v %+v", err, res)
		}
		again, err := er.EraseLead(e.ctx, e.owner, e.app.PublicID, "LONG@example.com")
		if err != nil || again.ErasureID != res.ErasureID {
			t.Fatalf("asking again: %v %+v, want erasure %d", err, again, res.ErasureID)
		}
		done := waitErased(e, res.ErasureID)
		if !done.Erased || done.DeletedEvents != 12 || done.DeletedDevices != 6 || done.DeletedLeads != 1 || done.Tombstones != 12 || done.ReceiptID == 0 {
			t.Fatalf("done: %+v", done)
		}
		rs := receipts(e, models.AuditEraseLead)
		if len(rs) != 1 || rs[0].ID != done.ReceiptID || rs[0].Events != 12 || rs[0].Devices != 6 || rs[0].Leads != 1 || rs[0].Tombstones != 12 ||
			rs[0].SubjectHash != models.SubjectHash("long@example.com") || rs[0].ActorKind != models.ActorUser {
			t.Fatalf("receipts: %+v", rs)
		}
		if n := e.countEvents("1 = 1"); n != 0 {
			t.Fatalf("%d events left", n)
		}
		// Done, it answers at once as before, and a viewer may not follow it.
		if res, err := er.EraseLead(e.ctx, e.owner, e.app.PublicID, "long@example.com"); err != nil || res.Erased || !res.Done || res.ErasureID != 0 {
			t.Fatalf("erasing again: %v %+v", err, res)
		}
		stranger := newUser(t, db)
		if _, err := models.ErasureStatus(e.ctx, db, stranger, e.app.PublicID, models.FormatID(res.ErasureID)); err == nil {
			t.Fatal("a stranger followed the erasure")
		}
	})
}

// A replica that dies part way through an erasure leaves it pending with
// the counts of what committed; once its lease lapses another Eraser
// resumes it, and the receipt holds the complete counts.
func TestErasureResumesAfterACrash(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *gorm.DB) {
		ctx, crash := context.WithCancel(context.Background())
		var deletes atomic.Int64
		db = pacedStore(t, db, func() {
			if deletes.Add(1) == 3 {
				crash() // the third chunk never commits
			}
		})
		e := newEnv(t, db)
		seedLead(e, "crash@example.com", 6, 2)
		if _, err := models.EraseLead(ctx, db, e.owner, e.app.PublicID, "crash@example.com"); err == nil {
			t.Fatal("the erasure survived its crash")
		}
		var job models.EraseJob
		if err := db.Where("app_id = ?", e.app.ID).Take(&job).Error; err != nil {
			t.Fatal(err)
		}
		if job.DoneAt != nil || job.Events != 4 || job.Tombstones != 4 || job.ReceiptID != nil || len(receipts(e, models.AuditEraseLead)) != 0 {
			t.Fatalf("after the crash: %+v", job)
		}
		if n := e.countEvents("1 = 1"); n != 8 {
			t.Fatalf("%d events left after the crash, want 8", n)
		}
		// As if the replica died holding the lease.
		err := db.Exec("UPDATE job_leases SET lease_owner = 'dead', lease_until = ? WHERE name = ?",
			time.Now().Add(300*time.Millisecond).UnixMilli(), fmt.Sprintf("erase:%d", job.ID)).Error
		if err != nil {
			t.Fatal(err)
		}
		er := models.NewEraser(db, models.EraserOptions{LeaseTTL: 400 * time.Millisecond})
		t.Cleanup(er.Close)
		done := waitErased(e, job.ID)
		if done.DeletedEvents != 12 || done.DeletedDevices != 6 || done.DeletedLeads != 1 || done.Tombstones != 12 || done.ReceiptID == 0 {
			t.Fatalf("resumed: %+v", done)
		}
		rs := receipts(e, models.AuditEraseLead)
		if len(rs) != 1 || rs[0].Events != 12 || rs[0].Devices != 6 || rs[0].Tombstones != 12 {
			t.Fatalf("receipts: %+v", rs)
		}
		if n := e.countEvents("1 = 1"); n != 0 {
			t.Fatalf("%d events left", n)
		}
	})
}

// eraseBefore through an Eraser: answered before it ends, joined by the
// same request, followed by owners only (the secret key may follow the
// erasure of a lead, not of a date), and done with one receipt whose counts
// are the erasure's.
func TestEraserByDate(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *gorm.DB) {
		db = pacedStore(t, db, func() { time.Sleep(300 * time.Millisecond) })
		e := newEnv(t, db)
		old := time.Now().Add(-48 * time.Hour)
		for i := range 12 {
			e.mustTrigger(models.TriggerInput{Code: "view", DeviceID: fmt.Sprintf("old-%d", i%3), OccurredAt: &old, MessageID: ptr(fmt.Sprintf("old-%d", i)), Secret: e.secret})
		}
		if err := e.writer.EventLog().Drain(e.ctx); err != nil {
			t.Fatal(err)
		}
		er := models.NewEraser(db, models.EraserOptions{Wait: 50 * time.Millisecond, LeaseTTL: 5 * time.Second})
		t.Cleanup(er.Close)
		cutoff := time.Now().Add(-24 * time.Hour)
		res, err := er.EraseBefore(e.ctx, e.owner, e.app.PublicID, cutoff)
		if err != nil || res.Done || res.ErasureID == 0 || res.ReceiptID != 0 {
			t.Fatalf("first answer: %v %+v", err, res)
		}
		if again, err := er.EraseBefore(e.ctx, e.owner, e.app.PublicID, cutoff); err != nil || again.ErasureID != res.ErasureID {
			t.Fatalf("asking again: %v %+v, want erasure %d", err, again, res.ErasureID)
		}
		key := models.Viewer{Secret: e.secret}
		if _, err := models.ErasureStatus(e.ctx, db, key, e.app.PublicID, models.FormatID(res.ErasureID)); !errors.Is(err, models.ErrForbidden) {
			t.Fatalf("the secret key followed an erasure by date: %v", err)
		}
		done := waitErased(e, res.ErasureID)
		if !done.Erased || done.DeletedEvents != 12 || done.Tombstones != 12 || done.ReceiptID == 0 {
			t.Fatalf("done: %+v", done)
		}
		rs := receipts(e, models.AuditEraseBefore)
		if len(rs) != 1 || rs[0].ID != done.ReceiptID || rs[0].Events != done.DeletedEvents || rs[0].Devices != done.DeletedDevices ||
			rs[0].Leads != done.DeletedLeads || rs[0].Tombstones != done.Tombstones {
			t.Fatalf("receipts %+v, erasure %+v", rs, done)
		}
		if n := e.countEvents("1 = 1"); n != 0 {
			t.Fatalf("%d events left", n)
		}
	})
}

// A device whose events are stored without its row (a row deleted by hand,
// a restore of the events only): erasing it erases the events, and as they
// all go in the chunks before the last transaction, it is that count that
// says something was erased, with a receipt.
func TestEraseDeviceWithoutItsRow(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *gorm.DB) {
		e := newEnv(t, db)
		for i := range 3 {
			e.mustTrigger(models.TriggerInput{Code: "view", DeviceID: "rowless", MessageID: ptr(fmt.Sprintf("rowless-%d", i))})
		}
		if err := e.writer.EventLog().Drain(e.ctx); err != nil {
			t.Fatal(err)
		}
		if err := db.Exec("DELETE FROM devices WHERE app_id = ? AND device_id = 'rowless'", e.app.ID).Error; err != nil {
			t.Fatal(err)
		}
		res, err := models.EraseDevice(e.ctx, db, e.owner, e.app.PublicID, "rowless")
		if err != nil || !res.Erased || !res.Done || res.DeletedEvents != 3 || res.DeletedDevices != 0 || res.ReceiptID == 0 {
			t.Fatalf("erase: %v %+v", err, res)
		}
		if rs := receipts(e, models.AuditEraseDevice); len(rs) != 1 || rs[0].Events != 3 {
			t.Fatalf("receipts: %+v", rs)
		}
	})
}

// failingHooks makes the erase hook registered once for the package's
// tests fail the lead erasures of one app while it is set.
var failingHooks struct {
	once  sync.Once
	appID atomic.Uint64
}

func failLeadErasures(t *testing.T, appID uint64) {
	failingHooks.once.Do(func() {
		models.RegisterEraseHook(func(tx *gorm.DB, e models.Erasure) error {
			if e.Kind == models.AuditEraseLead && e.AppID == failingHooks.appID.Load() {
				return errors.New("the CRM did not answer")
			}
			return nil
		})
	})
	failingHooks.appID.Store(appID)
	t.Cleanup(func() { failingHooks.appID.Store(0) })
}

// An erasure whose last transaction keeps failing (an erase hook that
// errs) keeps what committed, counts its failures with their public code
// (not the hook's text), is resumed by the Eraser, and finishes with one
// receipt of the complete counts once the hook passes.
func TestFailingErasureIsCountedAndResumed(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *gorm.DB) {
		e := newEnv(t, db)
		seedLead(e, "stuck@example.com", 2, 3)
		failLeadErasures(t, e.app.ID)
		er := models.NewEraser(db, models.EraserOptions{Wait: -1, LeaseTTL: 400 * time.Millisecond})
		t.Cleanup(er.Close)

		_, err := er.EraseLead(e.ctx, e.owner, e.app.PublicID, "stuck@example.com")
		if code, _ := models.Code(err); code != models.CodeInternal {
			t.Fatalf("erasing with a failing hook: %v (%s), want %s", err, code, models.CodeInternal)
		}
		var job models.EraseJob
		if err := db.Where("app_id = ?", e.app.ID).Take(&job).Error; err != nil {
			t.Fatal(err)
		}
		st, err := models.ErasureStatus(e.ctx, db, e.owner, e.app.PublicID, models.FormatID(job.ID))
		if err != nil || st.Done || st.Failures < 1 || st.LastFailureCode == nil || *st.LastFailureCode != models.CodeInternal ||
			st.LastFailureAt == nil || st.DeletedEvents != 6 || st.ReceiptID != 0 {
			t.Fatalf("after the failure: %v %+v", err, st)
		}
		waitFor(t, "the erasure to be resumed and fail again", func() bool {
			st, err := models.ErasureStatus(e.ctx, db, e.owner, e.app.PublicID, models.FormatID(job.ID))
			return err == nil && st.Failures >= 2 && !st.Done
		})
		if n := len(receipts(e, models.AuditEraseLead)); n != 0 {
			t.Fatalf("%d receipts of an erasure that never finished", n)
		}

		failingHooks.appID.Store(0)
		done := waitErased(e, job.ID)
		if !done.Erased || done.DeletedEvents != 6 || done.DeletedDevices != 2 || done.DeletedLeads != 1 || done.ReceiptID == 0 || done.Failures < 2 {
			t.Fatalf("done: %+v", done)
		}
		if rs := receipts(e, models.AuditEraseLead); len(rs) != 1 || rs[0].Events != 6 || rs[0].ID != done.ReceiptID {
			t.Fatalf("receipts: %+v", rs)
		}
	})
}
