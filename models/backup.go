package models

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"gorm.io/gorm"
)

// BackupSQLite writes a consistent copy of a SQLite database to path while the
// database stays in use. VACUUM INTO reads one snapshot (a read transaction,
// which WAL lets run beside the writer), so a group commit is either wholly in
// the copy or not at all; the copy is compacted and needs no WAL file. The
// copy is written next to path and linked into place, so path never holds a
// partial copy. path must not exist.
func BackupSQLite(ctx context.Context, db *gorm.DB, path string) error {
	if db.Dialector.Name() != "sqlite" {
		return errors.New("not a SQLite database")
	}
	if _, err := os.Stat(path); err == nil {
		return fmt.Errorf("%s exists; choose a new file", path)
	}
	// An empty file is what VACUUM INTO may write to; CreateTemp makes it
	// readable by this user only, like the database (see createPrivately).
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return err
	}
	tmp.Close()
	defer os.Remove(tmp.Name())
	if err := db.WithContext(ctx).Exec("VACUUM INTO ?", tmp.Name()).Error; err != nil {
		return err
	}
	if err := os.Link(tmp.Name(), path); err != nil { // unlike rename, never replaces path
		return err
	}
	return nil
}
