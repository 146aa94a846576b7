package models

import (
	"context"
	"fmt"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/go-gormigrate/gormigrate/v2"
	gomysql "github.com/go-sql-driver/mysql"
)

// A database made before the NO PAD migration, with utf8mb4_bin tables and
// stored events, ends up with every text column in the NO PAD collation, its
// rows intact, and ids that differ only in trailing spaces kept apart.
func TestMigrateToNoPadCollation(t *testing.T) {
	dsn := os.Getenv("CRUMBS_TEST_MYSQL_DSN")
	if dsn == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("CRUMBS_TEST_MYSQL_DSN is not set; under CI=true the MySQL tests must run")
		}
		t.Skip("CRUMBS_TEST_MYSQL_DSN is not set (SQLite compares bytes and has nothing to migrate)")
	}
	ctx := context.Background()
	admin, err := Open(ctx, dsn, DBOptions{MaxOpenConns: 1})
	if err != nil {
		t.Fatal(err)
	}
	want, exact, err := ExactCollation(ctx, admin)
	if err != nil || !exact {
		t.Fatalf("collation %q exact=%v err=%v: the test server needs a NO PAD collation", want, exact, err)
	}
	name := fmt.Sprintf("crumbs_nopad_%d", os.Getpid())
	if err := admin.Exec("CREATE DATABASE " + name + " CHARACTER SET utf8mb4 COLLATE utf8mb4_bin").Error; err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.Exec("DROP DATABASE IF EXISTS " + name) })
	cfg, err := gomysql.ParseDSN(dsn)
	if err != nil {
		t.Fatal(err)
	}
	cfg.DBName = name
	db, err := Open(ctx, cfg.FormatDSN(), DBOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if sqlDB, err := db.DB(); err == nil {
			sqlDB.Close()
		}
	})

	// The schema as it was: every migration before this one, in utf8mb4_bin.
	i := slices.IndexFunc(migrations, func(m *gormigrate.Migration) bool { return m.ID == "2026120201_nopad_collation" })
	if i < 1 {
		t.Fatal("migration 2026120201_nopad_collation not found")
	}
	if err := newMigrator(db.WithContext(ctx), padSpaceCollation, migrations).MigrateTo(migrations[i-1].ID); err != nil {
		t.Fatal(err)
	}
	// The live code below writes columns and tables of later migrations
	// (apps.retention_days, apps.expired_before, apps.set_aside_origins and
	// apps.deleted_at on CreateApp; erased_messages, checked by every group commit with
	// messageIds): those run first, in the old collation too, so the
	// conversion must cover them as well.
	for _, id := range []string{"2026120403_privacy", "2026120409_apps_expired_before", "2026120410_allowed_origins", "2026120508_app_deleted_at"} {
		j := slices.IndexFunc(migrations, func(m *gormigrate.Migration) bool { return m.ID == id })
		if j < 0 {
			t.Fatalf("migration %s not found", id)
		}
		if err := newMigrator(db.WithContext(ctx), padSpaceCollation, migrations[j:j+1]).Migrate(); err != nil {
			t.Fatal(err)
		}
	}
	// This release's writer stores the column a later migration adds.
	if err := db.Exec(addEventsIntegrationSQL).Error; err != nil {
		t.Fatal(err)
	}
	owner, err := CreateUser(ctx, db, "nopad@example.com", "", "correct horse battery")
	if err != nil {
		t.Fatal(err)
	}
	appName := "nopad"
	app, secret, err := CreateApp(ctx, db, Viewer{UserID: owner.ID}, AppInput{Name: &appName})
	if err != nil {
		t.Fatal(err)
	}
	trigger := func(w *Writer, device, msg string) TriggerResult {
		t.Helper()
		return w.Trigger(ctx, []TriggerInput{{Secret: secret, AppPublicID: app.PublicID, DeviceID: device, Code: "view", MessageID: &msg}})[0]
	}
	w := NewWriter(db, NewCatalog(db, time.Minute), WriterOptions{})
	old := trigger(w, "dev", "m-1")
	w.Close()
	if old.Err != nil {
		t.Fatal(old.Err)
	}

	if err := Migrate(ctx, db); err != nil {
		t.Fatal(err)
	}
	var stray []string
	if err := db.Raw(`SELECT CONCAT(TABLE_NAME, '.', COLUMN_NAME, ' ', COLLATION_NAME) FROM information_schema.COLUMNS
		WHERE TABLE_SCHEMA = DATABASE() AND COLLATION_NAME IS NOT NULL AND COLLATION_NAME <> ?`, want).Scan(&stray).Error; err != nil {
		t.Fatal(err)
	}
	if len(stray) > 0 {
		t.Fatalf("columns left in another collation than %s: %q", want, stray)
	}
	var textColumns int
	db.Raw("SELECT COUNT(*) FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND COLLATION_NAME = ?", want).Scan(&textColumns)
	if textColumns < 30 {
		t.Fatalf("only %d text columns in %s", textColumns, want)
	}

	w = NewWriter(db, NewCatalog(db, time.Minute), WriterOptions{})
	defer w.Close()
	again := trigger(w, "dev", "m-1")
	padded := trigger(w, "dev ", "m-1 ")
	if !again.Duplicate || again.EventID != old.EventID {
		t.Fatalf("m-1 again after the migration: %+v, want a duplicate of %d", again, old.EventID)
	}
	if padded.Err != nil || padded.Duplicate || padded.EventID == old.EventID {
		t.Fatalf("'m-1 ': %+v, want a new event", padded)
	}
	var devices int64
	db.Model(&Device{}).Where("app_id = ?", app.ID).Count(&devices)
	if devices != 2 {
		t.Fatalf("%d devices, want 'dev' and 'dev '", devices)
	}
}
