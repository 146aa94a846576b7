package main

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/crumbs-dev/crumbs/models/modelstest"
	"gorm.io/gorm"
)

// The log keeps no value MySQL quotes in an error message: an email in a
// duplicate key, a name in a refused value, statement text near a syntax
// error (statements carry their values). The log is out of reach of erasure
// and retention. Key and column names stay, and so does SQLite's text, which
// quotes no values. (gorm reads duplicate keys as ErrDuplicatedKey, whose
// text holds none.)
func TestLogLeavesOutValuesTheStoreQuotes(t *testing.T) {
	cfg, err := parseConfig(nil, func(string) string { return "" }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	const secret = "ann.private@example.com"
	logged := func(err error) string {
		t.Helper()
		if err == nil {
			t.Fatal("the statement did not fail")
		}
		var buf bytes.Buffer
		cfg.logger(&buf).Error("request failed", "err", fmt.Errorf("models.Something: %w", err))
		return buf.String()
	}
	check := func(t *testing.T, line string, keep ...string) {
		t.Helper()
		if strings.Contains(line, secret) {
			t.Errorf("the log holds the value: %s", line)
		}
		for _, k := range keep {
			if !strings.Contains(line, k) {
				t.Errorf("the log lost %q: %s", k, line)
			}
		}
	}
	table := fmt.Sprintf("log_values_%d", time.Now().UnixNano())
	setup := func(t *testing.T, db *gorm.DB) {
		if err := db.Exec("CREATE TABLE " + table + " (email VARCHAR(64) NOT NULL UNIQUE, n INT NOT NULL)").Error; err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Exec("DROP TABLE " + table) })
		if err := db.Exec("INSERT INTO "+table+" (email, n) VALUES (?, 1)", secret).Error; err != nil {
			t.Fatal(err)
		}
	}

	t.Run("mysql", func(t *testing.T) {
		db := modelstest.MySQL(t)
		setup(t, db)
		check(t, logged(db.Exec("INSERT INTO "+table+" (email, n) VALUES (?, 2)", secret).Error), "duplicated key", "models.Something")
		check(t, logged(db.Exec("INSERT INTO "+table+" (email, n) VALUES ('x', ?)", secret).Error), "Incorrect integer value", "for column")
		check(t, logged(db.Exec("SELECT email FROM "+table+" WHERE email = ? AND", secret).Error), "SQL syntax")
	})
	t.Run("sqlite", func(t *testing.T) {
		db := modelstest.SQLite(t)
		setup(t, db)
		check(t, logged(db.Exec("INSERT INTO "+table+" (email, n) VALUES (?, 2)", secret).Error), "duplicated key")
		check(t, logged(db.Exec("INSERT INTO "+table+" (email) VALUES (?)", secret).Error), "NOT NULL constraint failed: "+table+".n")
	})
}
