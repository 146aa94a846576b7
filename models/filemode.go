package models

import (
	"context"
	"errors"
	"io/fs"
	"os"

	"gorm.io/gorm"
)

// createPrivately creates a new SQLite database file, and the WAL index
// beside it, readable and writable by this user only: the database holds
// leads' emails and fields, password hashes and signing secrets. Files that
// exist keep the mode their owner gave them; the WAL index then takes the
// database's (the WAL takes it through the modeof parameter). In-memory
// databases have no file.
func createPrivately(path string) error {
	if path == ":memory:" {
		return nil
	}
	mode := fs.FileMode(0o600)
	if fi, err := os.Stat(path); err == nil {
		mode = fi.Mode().Perm()
	} else if err := createFile(path, mode); err != nil {
		return err
	}
	return createFile(path+"-shm", mode)
}

// createFile creates an empty file with mode (less nothing: the umask is
// undone by a chmod), leaving a file that exists as it is.
func createFile(path string, mode fs.FileMode) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, mode)
	if errors.Is(err, fs.ErrExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if err := f.Chmod(mode); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// SQLiteFile returns the file of a SQLite database, "" for another store or
// an in-memory database.
func SQLiteFile(ctx context.Context, db *gorm.DB) (string, error) {
	if db.Dialector.Name() != "sqlite" {
		return "", nil
	}
	var rows []struct {
		Name string
		File string
	}
	if err := db.WithContext(ctx).Raw("PRAGMA database_list").Scan(&rows).Error; err != nil {
		return "", err
	}
	for _, r := range rows {
		if r.Name == "main" {
			return r.File, nil
		}
	}
	return "", nil
}
