package models_test

import (
	"context"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/crumbs-dev/crumbs/models"
	"github.com/crumbs-dev/crumbs/models/modelstest"
	"gorm.io/gorm"
)

// A row that a write in flight inserted after the job emptied its table,
// and that commits while the job removes the app, is not left behind the
// app: the job waits for it, finds it, empties the table again and only
// then removes the app. Its last check read a snapshot, in which the row
// not yet committed was not there: the app row went, and the row stayed
// with no app. MariaDB only: SQLite has one connection, so no write is in
// flight beside the job.
func TestDeleteAppWaitsForAWriteInFlight(t *testing.T) {
	shared := modelstest.MySQL(t)
	ctx := context.Background()
	e := newEnv(t, shared)
	tables := appIDTables(t, shared)
	if _, err := newTestTokens(t).DeleteApp(ctx, shared, e.owner, "127.0.0.1", e.app.PublicID, "correct horse battery"); err != nil {
		t.Fatal(err)
	}
	// The job gets a handle of its own, whose statements the test watches
	// (the shared one serves the package's other tests).
	db, err := models.Open(ctx, modelstest.MySQLDSN(t), models.DBOptions{MaxOpenConns: 4})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if sqlDB, err := db.DB(); err == nil {
			sqlDB.Close()
		}
	})
	// The write in flight stores its row once the job has emptied
	// unknown_codes, and commits later.
	inFlight := shared.Begin()
	defer inFlight.Rollback()
	var armed atomic.Bool
	armed.Store(true)
	inserted := make(chan error, 1)
	err = db.Callback().Raw().After("gorm:raw").Register("test:row-in-flight", func(d *gorm.DB) {
		if strings.HasPrefix(d.Statement.SQL.String(), "DELETE FROM unknown_codes") && armed.CompareAndSwap(true, false) {
			now := time.Now()
			inserted <- inFlight.Exec("INSERT INTO unknown_codes (app_id, code, count, first_seen_at, last_seen_at) VALUES (?, 'late', 1, ?, ?)", e.app.ID, now, now).Error
		}
	})
	if err != nil {
		t.Fatal(err)
	}

	var log sqlLog
	job := models.NewAppDeleter(db.Session(&gorm.Session{Logger: &log}), models.AppDeleterOptions{})
	done := make(chan struct{})
	var run *models.AppDeleteRun
	var runErr error
	go func() {
		defer close(done)
		run, runErr = job.RunOnce(ctx, time.Now().Add(time.Hour))
	}()
	// Until the job waits for the row (or is done without it).
	waitFor(t, "the job to wait for the row in flight", func() bool {
		select {
		case <-done:
			return true
		default:
		}
		var waiting int
		err := shared.Raw(`SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE DB = DATABASE() AND ID <> CONNECTION_ID() AND COMMAND = 'Query' AND INFO LIKE ?`,
			"%FROM unknown_codes WHERE app_id%FOR UPDATE%").Scan(&waiting).Error
		if err != nil {
			t.Fatal(err)
		}
		return waiting > 0
	})
	if err := <-inserted; err != nil {
		t.Fatal(err)
	}
	if err := inFlight.Commit().Error; err != nil {
		t.Fatal(err)
	}
	<-done
	if runErr != nil || !slices.Contains(run.Gone, e.app.ID) {
		t.Fatalf("the run: %+v %v, want the app gone", run, runErr)
	}
	checkNoRows(t, shared, tables, e.app.ID)
	// Each locking read goes through an index of the app's rows, so that
	// it locks nothing of another app's.
	for _, table := range tables {
		if table == "automation_actions" || table == "automation_attempts" {
			continue // removed with their rule or delivery, in one transaction
		}
		var checks []string
		for _, stmt := range log.all("SELECT 1 FROM " + table + " WHERE app_id = ") {
			if strings.HasSuffix(stmt, "FOR UPDATE") {
				checks = append(checks, stmt)
			}
		}
		if len(checks) == 0 {
			t.Errorf("no locking read of %s", table)
		}
		for _, stmt := range checks {
			if plan := explainOne(t, shared, stmt); plan["type"] != "ref" || !strings.Contains(plan["ref"], "const") {
				t.Errorf("not an index lookup of the app's rows: %v", plan)
			}
		}
	}
}
