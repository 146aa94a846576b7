//go:build unix

package models

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// A SQLite database holds leads' emails and fields, password hashes and
// signing secrets: a new one, its WAL (the latest commits) and a backup are
// readable by the server's user only, whatever the umask; a database whose
// owner gave it another mode keeps it, and its WAL follows it.
func TestSQLiteFilesAreReadableByTheirUserOnly(t *testing.T) {
	old := syscall.Umask(0o022) // the usual umask, which leaves files world-readable
	t.Cleanup(func() { syscall.Umask(old) })
	ctx := context.Background()
	write := func(t *testing.T, path string) {
		t.Helper()
		db, err := Open(ctx, "sqlite:"+path, DBOptions{})
		if err != nil {
			t.Fatal(err)
		}
		sqlDB, _ := db.DB()
		t.Cleanup(func() { sqlDB.Close() })
		if err := db.Exec("CREATE TABLE secrets (v TEXT)").Error; err != nil {
			t.Fatal(err)
		}
		if err := db.Exec("INSERT INTO secrets VALUES ('ann@example.com')").Error; err != nil {
			t.Fatal(err)
		}
		if got, err := SQLiteFile(ctx, db); err != nil || got != path {
			t.Errorf("SQLiteFile = %q, %v; want %q", got, err, path)
		}
		copyPath := path + ".backup"
		if err := BackupSQLite(ctx, db, copyPath); err != nil {
			t.Fatal(err)
		}
		checkMode(t, copyPath, 0o600)
	}

	t.Run("new database", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "crumbs.db")
		write(t, path)
		for _, f := range []string{path, path + "-wal", path + "-shm"} {
			checkMode(t, f, 0o600)
		}
	})
	t.Run("a mode its owner chose", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "crumbs.db")
		if err := os.WriteFile(path, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(path, 0o640); err != nil {
			t.Fatal(err)
		}
		write(t, path)
		for _, f := range []string{path, path + "-wal", path + "-shm"} {
			checkMode(t, f, 0o640)
		}
	})
}

func checkMode(t *testing.T, path string, want fs.FileMode) {
	t.Helper()
	info, err := os.Stat(path)
	if err != nil {
		t.Error(err)
		return
	}
	if got := info.Mode().Perm(); got != want {
		t.Errorf("%s: mode %v, want %v", filepath.Base(path), got, want)
	}
}
