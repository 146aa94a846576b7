package models_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/crumbs-dev/crumbs/models"
	"github.com/crumbs-dev/crumbs/models/modelstest"
	"gorm.io/gorm"
)

func newTestTokens(t *testing.T) *models.Tokens {
	t.Helper()
	tokens, err := models.NewTokens([][]byte{[]byte("a-test-signing-secret-of-32-bytes!!")}, "crumbs", "crumbs-dashboard", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return tokens
}

// appIDTables lists the tables of the live schema that have an app_id
// column.
func appIDTables(t *testing.T, db *gorm.DB) []string {
	t.Helper()
	var tables []string
	query := "SELECT m.name FROM sqlite_master m JOIN pragma_table_info(m.name) p WHERE m.type = 'table' AND p.name = 'app_id' ORDER BY 1"
	if db.Dialector.Name() == "mysql" {
		query = "SELECT TABLE_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND COLUMN_NAME = 'app_id' ORDER BY 1"
	}
	if err := db.Raw(query).Scan(&tables).Error; err != nil {
		t.Fatal(err)
	}
	if len(tables) < 20 {
		t.Fatalf("only %d tables with an app_id column: %v", len(tables), tables)
	}
	return tables
}

// appRows reads every row of the app in each table, as text, in a stable
// order.
func appRows(t *testing.T, db *gorm.DB, tables []string, appID uint64) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for _, table := range tables {
		var rows []map[string]any
		if err := db.Table(table).Where("app_id = ?", appID).Find(&rows).Error; err != nil {
			t.Fatal(err)
		}
		for _, r := range rows {
			out[table] = append(out[table], fmt.Sprint(r))
		}
		slices.Sort(out[table])
	}
	return out
}

// seedEveryTable gives the app rows in every table that holds an app's
// rows, through the functions that write them.
func seedEveryTable(t *testing.T, e *automationEnv, hook string) {
	t.Helper()
	ctx := e.ctx
	e.matcher("Views", "view")
	e.matcher("Clicks", "click")
	name, start, done := "Convert", "Views", "Clicks"
	if _, err := models.CreateGoalFor(ctx, e.db, e.owner, e.app.PublicID, models.GoalInput{Name: &name, StartMatcher: &start, CompletionMatcher: &done}); err != nil {
		t.Fatal(err)
	}
	e.rule("Hook", "Views", false, webhookTo(hook))
	// Events, devices, leads; a device moved to another lead; rollups.
	seedLead(e.env, "first@example.com", 2, 3)
	if _, err := models.Identify(ctx, e.db, e.writer.Catalog(), models.IdentifyInput{AppPublicID: e.app.PublicID, DeviceID: "first@example.com-d0", Email: "second@example.com", Secret: e.secret}); err != nil {
		t.Fatal(err)
	}
	// An unknown code, and an origin refused.
	if res := e.trigger(models.TriggerInput{Code: "no_such_code", Secret: e.secret}); res.Err == nil {
		t.Fatal("an unknown code was accepted")
	}
	if _, err := models.UpdateApp(ctx, e.db, e.owner, e.app.PublicID, models.AppInput{AllowedOrigins: []string{"https://shop.example.com"}}); err != nil {
		t.Fatal(err)
	}
	if res := e.trigger(models.TriggerInput{Code: "view", Origin: "https://elsewhere.example.com"}); res.Err == nil {
		t.Fatal("a refused origin was accepted")
	}
	if _, _, err := models.CreateIngestToken(ctx, e.db, e.owner, e.app.PublicID, "Zapier"); err != nil {
		t.Fatal(err)
	}
	if _, err := models.AddMember(ctx, e.db, e.owner, e.app.PublicID, fmt.Sprintf("invitee-%d@example.com", time.Now().UnixNano()), models.RoleViewer); err != nil {
		t.Fatal(err)
	}
	// An erasure: its job, its receipt and its tombstones.
	if _, err := models.EraseDevice(ctx, e.db, e.owner, e.app.PublicID, "first@example.com-d1"); err != nil {
		t.Fatal(err)
	}
	e.mustTrigger(models.TriggerInput{Code: "view", DeviceID: "late", Secret: e.secret})
	if err := e.writer.EventLog().Drain(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the deliveries to succeed", func() bool {
		var pending, attempts int64
		e.db.Model(&models.Delivery{}).Where("app_id = ? AND status <> ?", e.app.ID, models.DeliverySucceeded).Count(&pending)
		e.db.Model(&models.DeliveryAttempt{}).Where("app_id = ?", e.app.ID).Count(&attempts)
		return pending == 0 && attempts > 0
	})
}

// TestDeleteAppLeavesNoRow deletes an app whose rows fill every table with
// an app_id column of the live schema: from the answer on no one reaches
// it, the job empties every such table of it (and keeps the app row until
// the settle time has passed), then removes the app; another app's rows
// stay exactly as they were.
func TestDeleteAppLeavesNoRow(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *gorm.DB) {
		hook := newReceiver(t, nil)
		doomed := newAutomationEnv(t, db, models.DispatcherOptions{})
		kept := newAutomationEnv(t, db, models.DispatcherOptions{})
		seedEveryTable(t, doomed, hook.URL)
		seedEveryTable(t, kept, hook.URL)
		ctx := context.Background()
		// Each writer derives what the consumers it holds cover.
		for _, e := range []*automationEnv{doomed, kept} {
			if err := e.writer.EventLog().Drain(ctx); err != nil {
				t.Fatal(err)
			}
		}
		tables := appIDTables(t, db)
		rows := appRows(t, db, tables, doomed.app.ID)
		for _, table := range tables {
			if len(rows[table]) == 0 {
				t.Errorf("the seed left %s without a row of the app: seed it, so that this test checks it", table)
			}
		}
		before := appRows(t, db, tables, kept.app.ID)

		tokens := newTestTokens(t)
		if _, err := tokens.DeleteApp(ctx, db, doomed.owner, "127.0.0.1", doomed.app.PublicID, "wrong password"); !errors.As(err, new(*models.InvalidError)) {
			t.Fatalf("a wrong password: %v", err)
		}
		if _, err := tokens.DeleteApp(ctx, db, doomed.owner, "127.0.0.1", doomed.app.PublicID, "correct horse battery"); err != nil {
			t.Fatal(err)
		}
		if _, err := tokens.DeleteApp(ctx, db, doomed.owner, "127.0.0.1", doomed.app.PublicID, "correct horse battery"); !errors.Is(err, models.ErrNotFound) {
			t.Fatalf("deleting it again: %v", err)
		}
		if apps, err := models.Apps(ctx, db, doomed.owner); err != nil || len(apps) != 0 {
			t.Fatalf("still listed: %v %v", apps, err)
		}
		if _, err := (models.Viewer{Secret: doomed.secret}).App(ctx, db, doomed.app.PublicID, models.RoleViewer); err == nil {
			t.Fatal("the secret key still reaches the app")
		}
		if res := doomed.trigger(models.TriggerInput{Code: "view", Secret: doomed.secret}); !errors.Is(res.Err, models.ErrNotFound) && !errors.Is(res.Err, models.ErrUnauthenticated) {
			t.Fatalf("a trigger after the deletion: %+v", res)
		}

		d := models.NewAppDeleter(db, models.AppDeleterOptions{Settle: time.Hour, Chunk: 3})
		run, err := d.RunOnce(ctx, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if len(run.Gone) != 0 || !slices.Contains(run.Pending, doomed.app.ID) || run.Rows == 0 {
			t.Fatalf("within the settle time: %+v", run)
		}
		checkNoRows(t, db, tables, doomed.app.ID)
		var n int64
		if db.Model(&models.App{}).Where("id = ?", doomed.app.ID).Count(&n); n != 1 {
			t.Fatal("the app row went before the settle time")
		}
		run, err = d.RunOnce(ctx, time.Now().Add(2*time.Hour))
		if err != nil || !slices.Contains(run.Gone, doomed.app.ID) {
			t.Fatalf("after the settle time: %+v %v", run, err)
		}
		checkNoRows(t, db, tables, doomed.app.ID)
		if db.Model(&models.App{}).Where("id = ?", doomed.app.ID).Count(&n); n != 0 {
			t.Fatal("the app row is left")
		}
		if db.Table("job_leases").Where("name = ?", fmt.Sprintf("delete-app:%d", doomed.app.ID)).Count(&n); n != 0 {
			t.Fatal("the job's lease is left")
		}
		if after := appRows(t, db, tables, kept.app.ID); !reflect.DeepEqual(before, after) {
			for _, table := range tables {
				if !reflect.DeepEqual(before[table], after[table]) {
					t.Errorf("%s of the other app changed:\nbefore %v\nafter  %v", table, before[table], after[table])
				}
			}
		}
		if _, err := (models.Viewer{Secret: kept.secret}).App(ctx, db, kept.app.PublicID, models.RoleViewer); err != nil {
			t.Fatalf("the other app: %v", err)
		}
	})
}

func checkNoRows(t *testing.T, db *gorm.DB, tables []string, appID uint64) {
	t.Helper()
	for _, table := range tables {
		var n int64
		if err := db.Table(table).Where("app_id = ?", appID).Count(&n).Error; err != nil {
			t.Fatal(err)
		}
		if n != 0 {
			t.Errorf("%s holds %d rows of the deleted app", table, n)
		}
	}
}

// eventDeletes returns a handle on db's store of the test's own whose
// every statement deleting events first calls onDelete, which may fail
// the statement.
func eventDeletes(t *testing.T, db *gorm.DB, onDelete func() error) *gorm.DB {
	t.Helper()
	db = pacedStore(t, db, func() {})
	err := db.Callback().Raw().Before("gorm:raw").Register("test:appdelete", func(d *gorm.DB) {
		if strings.HasPrefix(d.Statement.SQL.String(), "DELETE FROM events") {
			if err := onDelete(); err != nil {
				d.AddError(err)
			}
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	return db
}

// TestDeleteAppResumes interrupts the job mid-way twice: a store fault (the
// run answers the error and the next run goes on), then a crash that leaves
// the replica's lease held (another replica takes over once it lapses).
// Each time what was deleted stays deleted and the rest goes later.
func TestDeleteAppResumes(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *gorm.DB) {
		var deletes atomic.Int64
		ctx, crash := context.WithCancel(context.Background())
		db = eventDeletes(t, db, func() error {
			switch deletes.Add(1) {
			case 3:
				return errors.New("the store failed")
			case 6:
				crash()
			}
			return nil
		})
		e := newEnv(t, db)
		for i := range 30 {
			e.mustTrigger(models.TriggerInput{Code: "view", DeviceID: fmt.Sprintf("d%d", i%4), Secret: e.secret})
		}
		if _, err := newTestTokens(t).DeleteApp(ctx, db, e.owner, "127.0.0.1", e.app.PublicID, "correct horse battery"); err != nil {
			t.Fatal(err)
		}
		later := time.Now().Add(time.Hour)
		first := models.NewAppDeleter(db, models.AppDeleterOptions{Chunk: 5, Owner: "first", Settle: time.Minute, LeaseTTL: time.Minute})
		run, err := first.RunOnce(ctx, later)
		if err == nil || len(run.Gone) != 0 || !slices.Contains(run.Pending, e.app.ID) {
			t.Fatalf("a store fault: %+v %v", run, err)
		}
		if n := e.countEvents("1 = 1"); n != 20 {
			t.Fatalf("%d events after the fault, want 20", n)
		}
		// The fault released the lease: the next run goes on at once, and
		// crashes on its third chunk of events.
		run, err = first.RunOnce(ctx, later)
		if err == nil || len(run.Gone) != 0 {
			t.Fatalf("a crash: %+v %v", run, err)
		}
		if n := e.countEvents("1 = 1"); n != 10 {
			t.Fatalf("%d events after the crash, want 10", n)
		}
		// As if the replica died holding the lease.
		lease := fmt.Sprintf("delete-app:%d", e.app.ID)
		until := time.Now().Add(time.Minute).UnixMilli()
		if err := db.Exec("UPDATE job_leases SET lease_owner = 'first', lease_until = ? WHERE name = ?", until, lease).Error; err != nil {
			t.Fatal(err)
		}
		second := models.NewAppDeleter(db, models.AppDeleterOptions{Chunk: 5, Owner: "second", Settle: time.Minute, LeaseTTL: time.Minute})
		run, err = second.RunOnce(context.Background(), time.Now())
		if err != nil || len(run.Gone) != 0 || run.Rows != 0 {
			t.Fatalf("while the lease holds: %+v %v", run, err)
		}
		run, err = second.RunOnce(context.Background(), time.Now().Add(2*time.Minute))
		if err != nil || !slices.Contains(run.Gone, e.app.ID) {
			t.Fatalf("after the lease lapsed: %+v %v", run, err)
		}
		if n := e.countEvents("1 = 1"); n != 0 {
			t.Fatalf("%d events left", n)
		}
		var n int64
		if db.Model(&models.App{}).Where("id = ?", e.app.ID).Count(&n); n != 0 {
			t.Fatal("the app row is left")
		}
	})
}

// TestDeletedAppSendsNoDelivery: a delivery that keeps failing is retried
// until its app is deleted, then never again.
func TestDeletedAppSendsNoDelivery(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *gorm.DB) {
		e := newAutomationEnv(t, db, models.DispatcherOptions{Backoff: 50 * time.Millisecond, MaxAttempts: 1000})
		down := newReceiver(t, func(_ int, w http.ResponseWriter) { w.WriteHeader(503) })
		e.matcher("Views", "view")
		e.rule("Down", "Views", false, webhookTo(down.URL))
		e.mustTrigger(models.TriggerInput{Secret: e.secret, Code: "view", DeviceID: "d-1"})
		waitFor(t, "a retry", func() bool { return len(down.requests()) >= 2 })
		if _, err := newTestTokens(t).DeleteApp(e.ctx, e.db, e.owner, "127.0.0.1", e.app.PublicID, "correct horse battery"); err != nil {
			t.Fatal(err)
		}
		// An attempt in flight as the app went may still end.
		time.Sleep(300 * time.Millisecond)
		sent := len(down.requests())
		time.Sleep(time.Second)
		if n := len(down.requests()); n != sent {
			t.Fatalf("%d attempts after the deletion", n-sent)
		}
	})
}

// The app row outlives every write that may still be in flight against
// the app: with a store deadline (CRUMBS_DB_TIMEOUT) of 5m, a group commit
// queued as a replica's cache lapsed may insert its rows up to 5 minutes
// later, so the row is kept twice that past the cache, not a minute: it
// went while such a write was still to come, whose rows then outlived it.
func TestDeletedAppRowWaitsOutTheStoreDeadline(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *gorm.DB) {
		ctx := context.Background()
		e := newEnv(t, db)
		if _, err := newTestTokens(t).DeleteApp(ctx, db, e.owner, "127.0.0.1", e.app.PublicID, "correct horse battery"); err != nil {
			t.Fatal(err)
		}
		d := models.NewAppDeleter(db, models.AppDeleterOptions{Settle: models.AppDeleteSettle(2*time.Second, 5*time.Minute)})
		run, err := d.RunOnce(ctx, time.Now().Add(5*time.Minute))
		if err != nil || slices.Contains(run.Gone, e.app.ID) {
			t.Fatalf("5 minutes after the deletion: %+v %v, want the app row kept", run, err)
		}
		run, err = d.RunOnce(ctx, time.Now().Add(11*time.Minute))
		if err != nil || !slices.Contains(run.Gone, e.app.ID) {
			t.Fatalf("11 minutes after the deletion: %+v %v, want the app row gone", run, err)
		}
	})
}

// The row is kept the cache's TTL plus a minute, as README says, or plus
// twice the store's deadline where that is longer.
func TestAppDeleteSettle(t *testing.T) {
	for _, c := range []struct{ ttl, timeout, want time.Duration }{
		{2 * time.Second, 10 * time.Second, 62 * time.Second},
		{0, 30 * time.Second, time.Minute},
		{10 * time.Minute, 10 * time.Minute, 30 * time.Minute},
	} {
		if got := models.AppDeleteSettle(c.ttl, c.timeout); got != c.want {
			t.Errorf("AppDeleteSettle(%v, %v) = %v, want %v", c.ttl, c.timeout, got, c.want)
		}
	}
}
