package models_test

import (
	"testing"
	"time"

	"github.com/crumbs-dev/crumbs/models"
	"github.com/crumbs-dev/crumbs/models/modelstest"
	"gorm.io/gorm"
)

// Retention with the clock moved forward: raw events older than the
// retention go once the rollups consumer derived them, the rollups' counts
// stay, idle devices and leads go, each run leaves a receipt, and one
// replica at a time runs the job.
func TestRetentionWithClockMovedForward(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *gorm.DB) {
		e := newQuietEnv(t, db)
		days := 30
		if _, err := models.UpdateApp(e.ctx, db, e.owner, e.app.PublicID, models.AppInput{RetentionDays: &days}); err != nil {
			t.Fatal(err)
		}
		now := time.Now().UTC()
		old, recent := now.Add(-50*24*time.Hour), now.Add(-time.Hour)
		for range 5 {
			e.mustTrigger(models.TriggerInput{Code: "view", DeviceID: "old", OccurredAt: &old, Secret: e.secret})
		}
		for range 3 {
			e.mustTrigger(models.TriggerInput{Code: "view", DeviceID: "new", OccurredAt: &recent, Secret: e.secret})
		}
		for _, d := range []string{"old", "new"} {
			if _, err := models.Identify(e.ctx, db, e.writer.Catalog(), models.IdentifyInput{AppPublicID: e.app.PublicID, DeviceID: d, Email: d + "@example.com", Secret: e.secret}); err != nil {
				t.Fatal(err)
			}
		}
		job := models.NewLifecycle(db, models.LifecycleOptions{Owner: "replica-1"})

		// Not derived yet: nothing goes.
		run, err := job.RunOnce(e.ctx, now)
		if err != nil || !run.Ran || run.Events != 0 || len(run.ReceiptIDs) != 0 {
			t.Fatalf("run before the consumer derived: %v %+v", err, run)
		}
		log := models.NewEventLog(db, models.EventLogOptions{Interval: time.Millisecond, SealMargin: time.Millisecond, MinAge: time.Millisecond})
		log.Start(models.RollupsConsumer())
		defer log.Close()
		if err := log.Drain(e.ctx); err != nil {
			t.Fatal(err)
		}
		counted := rollupTotal(t, db, e.app.ID)
		if counted == 0 {
			t.Fatal("no rollups derived")
		}

		run, err = job.RunOnce(e.ctx, now)
		// The old device's last event was its last activity: it goes; its
		// lead, identified just now, stays.
		if err != nil || run.Events != 5 || run.Devices != 1 || run.Leads != 0 || len(run.ReceiptIDs) != 1 {
			t.Fatalf("run now: %v %+v", err, run)
		}
		if n := e.countEvents("1 = 1"); n != 3 {
			t.Fatalf("%d events left, want the 3 recent ones", n)
		}
		if got := rollupTotal(t, db, e.app.ID); got != counted {
			t.Fatalf("rollup counts %d after retention, want %d kept", got, counted)
		}
		if lead, err := models.LeadByEmail(e.ctx, db, e.owner, e.app.PublicID, "old@example.com"); err != nil || lead == nil {
			t.Fatalf("a lead active within the retention was removed: %v", err)
		}

		// Another replica holds the lease: this one does nothing.
		future := now.Add(40 * 24 * time.Hour)
		other := models.NewLifecycle(db, models.LifecycleOptions{Owner: "replica-2", LeaseTTL: time.Hour})
		if err := db.Exec("UPDATE job_leases SET lease_owner = ?, lease_until = ?", "replica-2", future.Add(time.Minute).UnixMilli()).Error; err != nil {
			t.Fatal(err)
		}
		if run, err := job.RunOnce(e.ctx, future); err != nil || run.Ran {
			t.Fatalf("ran while another replica held the lease: %v %+v", err, run)
		}
		if run, err := other.RunOnce(e.ctx, future); err != nil || !run.Ran {
			t.Fatalf("the lease holder did not run: %v %+v", err, run)
		}
		if n := e.countEvents("1 = 1"); n != 0 {
			t.Fatalf("%d events left 40 days on, want none", n)
		}
		var devices, leads int64
		db.Model(&models.Device{}).Where("app_id = ?", e.app.ID).Count(&devices)
		db.Model(&models.Lead{}).Where("app_id = ?", e.app.ID).Count(&leads)
		if devices != 0 || leads != 0 {
			t.Fatalf("%d devices and %d leads left after they went idle, want none", devices, leads)
		}
		if got := rollupTotal(t, db, e.app.ID); got != counted {
			t.Fatalf("rollup counts %d after retention, want %d kept", got, counted)
		}
		audit, err := models.AuditLog(e.ctx, db, e.owner, e.app.PublicID, 10, "")
		if err != nil || len(audit.Records) != 2 {
			t.Fatalf("audit log: %v %+v", err, audit)
		}
		r := audit.Records[0]
		if r.Kind != models.AuditRetention || r.ActorKind != models.ActorSystem || r.Events != 3 || r.Devices != 1 || r.Leads != 2 ||
			r.SubjectHash != models.SubjectHash(models.RetentionCutoff(days, future).Format(time.RFC3339)) {
			t.Fatalf("retention receipt %+v", r)
		}

		// Tombstones outlive nothing: a year on, they are pruned.
		if _, err := models.EraseDevice(e.ctx, db, e.owner, e.app.PublicID, "gone"); err != nil {
			t.Fatal(err)
		}
		db.Exec("INSERT INTO erased_messages (app_id, message_id, erased_at, hits) VALUES (?, 'm', ?, 0)", e.app.ID, models.StoreTime(now))
		if run, err := other.RunOnce(e.ctx, now.Add(models.TombstoneLifetime+time.Hour)); err != nil || run.Tombstones != 1 {
			t.Fatalf("tombstone expiry: %v %+v", err, run)
		}
	})
}

func rollupTotal(t *testing.T, db *gorm.DB, appID uint64) int64 {
	t.Helper()
	var n int64
	if err := db.Raw("SELECT COALESCE(SUM(count), 0) FROM rollups WHERE app_id = ?", appID).Scan(&n).Error; err != nil {
		t.Fatal(err)
	}
	return n
}
