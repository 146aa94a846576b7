//go:build unix

package main

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/crumbs-dev/crumbs/models/modelstest"
)

// New SQLite databases are readable by their user only (models'
// TestSQLiteFilesAreReadableByTheirUserOnly); one made by an earlier release,
// or copied in, keeps its mode, and the server says at start that others can
// read it.
func TestStartWarnsWhenOthersCanReadTheDatabase(t *testing.T) {
	path := filepath.Join(t.TempDir(), "crumbs.db")
	db := openURL(t, "sqlite:"+path)
	warned := func() string {
		var buf bytes.Buffer
		warnIfOthersRead(context.Background(), db, slog.New(slog.NewJSONHandler(&buf, nil)))
		return buf.String()
	}
	if got := warned(); got != "" {
		t.Fatalf("a new database drew a warning: %s", got)
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	got := warned()
	if !strings.Contains(got, "can be read by other users") || !strings.Contains(got, path) || !strings.Contains(got, "-rw-r--r--") {
		t.Fatalf("a world-readable database: %q", got)
	}
	if got := func() string {
		var buf bytes.Buffer
		warnIfOthersRead(context.Background(), modelstest.MySQL(t), slog.New(slog.NewJSONHandler(&buf, nil)))
		return buf.String()
	}(); got != "" {
		t.Fatalf("MySQL drew a warning: %s", got)
	}
}
