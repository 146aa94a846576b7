package main

import (
	"context"
	"syscall"
	"testing"
	"time"

	"github.com/crumbs-dev/crumbs/models"
)

// Kill -9 of the server while it removes a deleted app of tens of
// thousands of events: what it deleted stays deleted, the app stays
// marked, and the restarted server (once the lease lapsed) removes the
// rest and then the app row.
func TestAppDeletionSurvivesKill9(t *testing.T) {
	eachKillStore(t, "crumbs_appdelete_kill9", killMidAppDeletion)
}

func killMidAppDeletion(t *testing.T, bin, dbURL string) {
	const events = 60_000
	ctx := context.Background()
	db, err := models.Open(ctx, dbURL, models.DBOptions{MaxOpenConns: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer closeGorm(db)
	if err := models.Migrate(ctx, db); err != nil {
		t.Fatal(err)
	}
	app, _ := seedBot(t, db, events)
	owner, err := models.Authenticate(ctx, db, "bot-owner@example.com", "correct horse battery")
	if err != nil {
		t.Fatal(err)
	}
	tokens, err := models.NewTokens([][]byte{[]byte(testJWTSecret)}, "crumbs", "crumbs-dashboard", 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tokens.DeleteApp(ctx, db, models.Viewer{UserID: owner.ID}, "127.0.0.1", app.PublicID, "correct horse battery"); err != nil {
		t.Fatal(err)
	}
	left := func() int64 {
		var n int64
		if err := db.Model(&models.Event{}).Where("app_id = ?", app.ID).Count(&n).Error; err != nil {
			t.Fatal(err)
		}
		return n
	}

	// The server takes the deletion up as it starts; it is killed once
	// a few chunks have gone.
	env := []string{"CRUMBS_ERASE_LEASE=2s"}
	first := startKillableServer(t, bin, dbURL, env...)
	for wait := time.Now().Add(30 * time.Second); left() > events-4000 && time.Now().Before(wait); {
		time.Sleep(20 * time.Millisecond)
	}
	if err := first.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	first.cmd.Wait()
	n := left()
	t.Logf("killed with %d of %d events removed", events-n, events)
	if n == 0 || n == events {
		t.Fatalf("%d events left after the kill; the test needs some removed and some left", n)
	}
	var marked int64
	if err := db.Model(&models.App{}).Where("id = ? AND deleted_at IS NOT NULL", app.ID).Count(&marked).Error; err != nil || marked != 1 {
		t.Fatalf("the app is not marked after the kill: %v", err)
	}

	second := startKillableServer(t, bin, dbURL, env...)
	// The app row goes once CRUMBS_CACHE_TTL (2s) plus a minute has
	// passed, at the job's next look (every 30s).
	deadline := time.Now().Add(150 * time.Second)
	for {
		var rows int64
		if err := db.Model(&models.App{}).Where("id = ?", app.ID).Count(&rows).Error; err != nil {
			t.Fatal(err)
		}
		if rows == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the app row is left, with %d events\n%s", left(), second.log.String())
		}
		time.Sleep(500 * time.Millisecond)
	}
	for _, table := range []string{"events", "devices", "leads", "rollups", "erased_messages", "event_definitions", "memberships"} {
		var n int64
		if err := db.Table(table).Where("app_id = ?", app.ID).Count(&n).Error; err != nil || n != 0 {
			t.Fatalf("%s holds %d rows of the deleted app (%v)", table, n, err)
		}
	}
}
