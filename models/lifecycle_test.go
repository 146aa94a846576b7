package models_test

import (
	"fmt"
	"sync"
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

// Retention removes an expired hour's raw events and keeps its rollups. An
// erasure that later touches that hour (here a backdated event stored after
// the run) cannot rebuild the hour's device sketch from the few events left:
// the sketch keeps the devices retention removed, and may keep the erased
// one, while the counts lose exactly the erased events. An hour after the
// cutoff is still rebuilt exactly. The retention first was one day, then
// thirty: the hours the first run expired stay expired.
func TestEraseAfterRetentionKeepsExpiredSketches(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *gorm.DB) {
		r := newRetentionEnv(t, db)
		expired := r.now.AddDate(0, 0, -5).Truncate(time.Hour)
		recent := r.now.Add(-2 * time.Hour).Truncate(time.Hour)
		for i := range 20 {
			r.trigger(fmt.Sprintf("gone-%d", i), expired.Add(time.Duration(i)*time.Minute))
		}
		for i := range 5 {
			r.trigger(fmt.Sprintf("here-%d", i), recent.Add(time.Duration(i)*time.Minute))
		}
		r.trigger("ann", recent.Add(30*time.Minute))
		r.identify("ann")
		r.drain()
		r.retain(1, 6)
		// A backdated event older than thirty days, then the longer retention
		// removes it: the cutoff it applies is earlier than the first one.
		r.trigger("ancient", r.now.AddDate(0, 0, -40))
		r.drain()
		r.retain(30, 6)

		// Backdated into the expired hour, after retention ran: ann's event
		// and another device's.
		r.trigger("ann", expired.Add(40*time.Minute))
		r.trigger("late", expired.Add(41*time.Minute))
		r.drain()
		recentBefore := r.overview(recent, time.Hour, false)
		if recentBefore.TotalEvents != 6 || recentBefore.UniqueDevices != 6 {
			t.Fatalf("recent hour before the erase: %d events ~%d devices, want 6 and 6", recentBefore.TotalEvents, recentBefore.UniqueDevices)
		}
		r.eraseKeepsSketches(expired, 22, "ann", 2)
		// The recent hour is rebuilt from its raw events: ann is gone from it.
		got, exact := r.overview(recent, time.Hour, false), r.overview(recent, time.Hour, true)
		if got.TotalEvents != 5 || exact.UniqueDevices != 5 || got.UniqueDevices != exact.UniqueDevices {
			t.Errorf("recent hour after the erase: %d events ~%d devices, exactly %d; want 5", got.TotalEvents, got.UniqueDevices, exact.UniqueDevices)
		}
	})
}

// Retention leaves the events the rollups consumer has not derived yet for
// a later run; once derived, erasing one of them must keep the sketch of
// their hour, whose other events retention removed.
func TestEraseOfEventsRetentionLeftBehind(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *gorm.DB) {
		r := newRetentionEnv(t, db)
		expired := r.now.AddDate(0, 0, -5).Truncate(time.Hour)
		for i := range 20 {
			r.trigger(fmt.Sprintf("gone-%d", i), expired.Add(time.Duration(i)*time.Minute))
		}
		r.drain()
		r.log.Close()
		r.trigger("ann", expired.Add(40*time.Minute))
		r.trigger("late", expired.Add(41*time.Minute))
		r.identify("ann")
		r.retain(1, 2)
		r.log = r.startLog()
		r.drain()
		r.eraseKeepsSketches(expired, 22, "ann", 1)
	})
}

// Retention runs and erasures of the same hours at once: whichever goes
// first, the hour keeps every device but the erased one, and its count
// loses exactly what the erasure took out.
func TestEraseWhileRetentionRuns(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *gorm.DB) {
		r := newRetentionEnv(t, db)
		days := 2
		if _, err := models.UpdateApp(r.ctx, db, r.owner, r.app.PublicID, models.AppInput{RetentionDays: &days}); err != nil {
			t.Fatal(err)
		}
		base := r.now.AddDate(0, 0, -3).Truncate(time.Hour)
		for round := range 6 {
			hour := base.Add(time.Duration(round) * time.Hour)
			lead := fmt.Sprintf("lead-%d", round)
			for i := range 10 {
				r.trigger(fmt.Sprintf("gone-%d-%d", round, i), hour.Add(time.Duration(i)*time.Minute))
			}
			r.trigger(lead, hour.Add(30*time.Minute))
			r.trigger(fmt.Sprintf("late-%d", round), hour.Add(31*time.Minute))
			r.identify(lead)
			r.drain()

			// The run expires this hour and no earlier one.
			now := hour.AddDate(0, 0, days).Add(time.Hour)
			var erased *models.EraseResult
			var runErr, eraseErr error
			var wg sync.WaitGroup
			wg.Go(func() { _, runErr = r.job.RunOnce(r.ctx, now) })
			wg.Go(func() { erased, eraseErr = models.EraseLead(r.ctx, db, r.owner, r.app.PublicID, lead+"@example.com") })
			wg.Wait()
			if runErr != nil || eraseErr != nil {
				t.Fatalf("round %d: retention %v, erase %v", round, runErr, eraseErr)
			}
			o := r.overview(hour, time.Hour, false)
			if o.TotalEvents != 12-erased.DeletedEvents || o.UniqueDevices < 11 || o.UniqueDevices > 12 {
				t.Fatalf("round %d: %d events ~%d devices after erasing %d events; want %d events, 11 or 12 devices",
					round, o.TotalEvents, o.UniqueDevices, erased.DeletedEvents, 12-erased.DeletedEvents)
			}
		}
	})
}

// retentionEnv is an app whose rollups consumer runs only while the test
// says, and a lifecycle job it runs as of now.
type retentionEnv struct {
	*env
	log *models.EventLog
	job *models.Lifecycle
	now time.Time
}

func newRetentionEnv(t *testing.T, db *gorm.DB) *retentionEnv {
	t.Helper()
	r := &retentionEnv{env: newQuietEnv(t, db), now: time.Now().UTC()}
	r.log = r.startLog()
	t.Cleanup(func() { r.log.Close() })
	// Earlier tests sharing the database ran the job with moved clocks.
	if err := db.Exec("UPDATE job_leases SET lease_until = 0 WHERE name = 'lifecycle'").Error; err != nil {
		t.Fatal(err)
	}
	r.job = models.NewLifecycle(db, models.LifecycleOptions{Owner: "retention-env"})
	return r
}

func (r *retentionEnv) startLog() *models.EventLog {
	log := models.NewEventLog(r.db, models.EventLogOptions{Interval: time.Millisecond, SealMargin: time.Millisecond, MinAge: time.Millisecond})
	log.Start(models.RollupsConsumer())
	return log
}

func (r *retentionEnv) drain() {
	r.t.Helper()
	if err := r.log.Drain(r.ctx); err != nil {
		r.t.Fatal(err)
	}
}

func (r *retentionEnv) trigger(device string, at time.Time) {
	r.t.Helper()
	r.mustTrigger(models.TriggerInput{Code: "view", DeviceID: device, OccurredAt: &at, Secret: r.secret})
}

// identify makes the device the lead device@example.com.
func (r *retentionEnv) identify(device string) {
	r.t.Helper()
	in := models.IdentifyInput{AppPublicID: r.app.PublicID, DeviceID: device, Email: device + "@example.com", Secret: r.secret}
	if _, err := models.Identify(r.ctx, r.db, r.writer.Catalog(), in); err != nil {
		r.t.Fatal(err)
	}
}

// retain runs the job with this retention; left is how many of the app's
// events remain.
func (r *retentionEnv) retain(days int, left int64) {
	r.t.Helper()
	if _, err := models.UpdateApp(r.ctx, r.db, r.owner, r.app.PublicID, models.AppInput{RetentionDays: &days}); err != nil {
		r.t.Fatal(err)
	}
	run, err := r.job.RunOnce(r.ctx, r.now)
	if err != nil || !run.Ran {
		r.t.Fatalf("retention of %d days: %v %+v", days, err, run)
	}
	if n := r.countEvents("1 = 1"); n != left {
		r.t.Fatalf("retention of %d days left %d events, want %d", days, n, left)
	}
}

// overview is the app's overview of [from, from+d), in UTC.
func (r *retentionEnv) overview(from time.Time, d time.Duration, exact bool) *models.Overview {
	r.t.Helper()
	o, err := models.AppOverview(r.ctx, r.db, r.app, models.RangeInput{From: from, To: from.Add(d), Interval: models.IntervalHour, Timezone: "UTC"}, exact)
	if err != nil {
		r.t.Fatal(err)
	}
	return o
}

// eraseKeepsSketches checks that the expired hour and its UTC day count
// devices events of as many devices, erases the lead of device (events in
// all, one of them in the hour), and checks that the hour and the day lose
// that event and at most that device.
func (r *retentionEnv) eraseKeepsSketches(hour time.Time, devices int64, device string, events int64) {
	r.t.Helper()
	day := hour.Truncate(24 * time.Hour)
	hourBefore, dayBefore := r.overview(hour, time.Hour, false), r.overview(day, 24*time.Hour, false)
	for _, o := range []*models.Overview{hourBefore, dayBefore} {
		if o.TotalEvents != devices || o.UniqueDevices < devices-1 || o.UniqueDevices > devices+1 {
			r.t.Fatalf("[%v, %v) before the erase: %d events ~%d devices, want %d of each", o.From, o.To, o.TotalEvents, o.UniqueDevices, devices)
		}
	}
	res, err := models.EraseLead(r.ctx, r.db, r.owner, r.app.PublicID, device+"@example.com")
	if err != nil || res.DeletedEvents != events {
		r.t.Fatalf("erase: %v %+v", err, res)
	}
	for _, c := range []struct{ before, after *models.Overview }{
		{hourBefore, r.overview(hour, time.Hour, false)},
		{dayBefore, r.overview(day, 24*time.Hour, false)},
	} {
		if c.after.TotalEvents != c.before.TotalEvents-1 || c.after.UniqueDevices < c.before.UniqueDevices-1 || c.after.UniqueDevices > c.before.UniqueDevices {
			r.t.Errorf("[%v, %v) after the erase: %d events ~%d devices; before %d events ~%d devices",
				c.after.From, c.after.To, c.after.TotalEvents, c.after.UniqueDevices, c.before.TotalEvents, c.before.UniqueDevices)
		}
	}
}

// Retention keeps the rollups of expired hours, page URLs with their
// query strings included; a marketing link that carries the person's
// email (?email=ann@example.com) then stays there after the events behind
// it are gone, where no erasure could find it by its events. Erasing the
// lead deletes the expired hours' page rows whose value holds the lead's
// email (as is, or URL-encoded); other pages' rows stay.
func TestEraseLeadAfterRetentionLeavesNoPageNamingThem(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *gorm.DB) {
		r := newRetentionEnv(t, db)
		expired := r.now.AddDate(0, 0, -5).Truncate(time.Hour)
		for i, u := range []string{"https://shop.example.com/welcome?email=Ann@Example.com", "https://shop.example.com/confirm/ann%40example.com?x=1",
			"https://shop.example.com/welcome?email=bob@example.com"} {
			at := expired.Add(time.Duration(i) * time.Minute)
			device := "ann"
			if i == 2 {
				device = "bob"
			}
			r.mustTrigger(models.TriggerInput{Code: "view", DeviceID: device, URL: u, OccurredAt: &at, Secret: r.secret})
		}
		r.trigger("ann", r.now.Add(-time.Hour))
		r.identify("ann")
		r.drain()
		r.retain(1, 1)
		naming := func(s string) int64 {
			var n int64
			err := db.Table("rollups").Where("app_id = ? AND (LOWER(value) LIKE ? OR LOWER(value) LIKE ?)", r.app.ID, "%"+s+"@example.com%", "%"+s+"%40example.com%").Count(&n).Error
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
		if naming("ann") == 0 || naming("bob") == 0 {
			t.Fatalf("retention kept no page rollups naming ann (%d) or bob (%d)", naming("ann"), naming("bob"))
		}
		if _, err := models.EraseLead(r.ctx, db, r.owner, r.app.PublicID, "ann@example.com"); err != nil {
			t.Fatal(err)
		}
		if n := naming("ann"); n != 0 {
			t.Errorf("after erasing ann %d rollup rows still name her", n)
		}
		if naming("bob") == 0 {
			t.Error("erasing ann took bob's page rows")
		}
	})
}
