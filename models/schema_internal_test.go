package models

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	gomysql "github.com/go-sql-driver/mysql"
	"gorm.io/gorm"
)

// Helpers for internal tests that need empty databases of their own (an
// internal test cannot use modelstest, which imports this package).

var emptyDBSeq atomic.Int64

// eachEmptyStore runs fn on SQLite and on MySQL, giving it a function that
// makes a new, empty database of that store and returns its URL.
func eachEmptyStore(t *testing.T, fn func(t *testing.T, newURL func() string)) {
	t.Run("sqlite", func(t *testing.T) {
		fn(t, func() string {
			return "sqlite:" + filepath.Join(t.TempDir(), fmt.Sprintf("c%d.db", emptyDBSeq.Add(1)))
		})
	})
	t.Run("mysql", func(t *testing.T) {
		dsn := os.Getenv("CRUMBS_TEST_MYSQL_DSN")
		if dsn == "" {
			if os.Getenv("CI") == "true" {
				t.Fatal("CRUMBS_TEST_MYSQL_DSN is not set; under CI=true the MySQL tests must run")
			}
			t.Skip("CRUMBS_TEST_MYSQL_DSN is not set")
		}
		admin, err := Open(context.Background(), dsn, DBOptions{MaxOpenConns: 1})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { closeDB(admin) })
		fn(t, func() string {
			name := fmt.Sprintf("crumbs_empty_%d_%d", os.Getpid(), emptyDBSeq.Add(1))
			if err := admin.Exec("CREATE DATABASE " + name + " CHARACTER SET utf8mb4 COLLATE utf8mb4_bin").Error; err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { admin.Exec("DROP DATABASE IF EXISTS " + name) })
			cfg, err := gomysql.ParseDSN(dsn)
			if err != nil {
				t.Fatal(err)
			}
			cfg.DBName = name
			return cfg.FormatDSN()
		})
	})
}

// openTestDB opens url and closes it when the test ends.
func openTestDB(t *testing.T, url string) *gorm.DB {
	t.Helper()
	db, err := Open(context.Background(), url, DBOptions{MaxOpenConns: 4})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { closeDB(db) })
	return db
}

func closeDB(db *gorm.DB) {
	if sqlDB, err := db.DB(); err == nil {
		sqlDB.Close()
	}
}

// dumpSchema describes every table of the database, one line per table,
// column and index, sorted, so that two schemas compare as text: names,
// types, nullability, defaults, collations, keys and index columns.
func dumpSchema(ctx context.Context, db *gorm.DB) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	sqlDB, err := db.DB()
	if err != nil {
		return "", err
	}
	var lines []string
	if isMySQL(db) {
		lines, err = dumpMySQLSchema(ctx, sqlDB)
	} else {
		lines, err = dumpSQLiteSchema(ctx, sqlDB)
	}
	if err != nil {
		return "", fmt.Errorf("dump schema: %w", err)
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n"), nil
}

func dumpMySQLSchema(ctx context.Context, db *sql.DB) ([]string, error) {
	queries := []string{
		`SELECT CONCAT_WS(' | ', 'table', table_name, engine, table_collation)
		   FROM information_schema.tables WHERE table_schema = DATABASE()`,
		`SELECT CONCAT_WS(' | ', 'column', table_name, LPAD(ordinal_position, 3, '0'), column_name, column_type,
		        is_nullable, COALESCE(column_default, '(none)'), COALESCE(collation_name, '-'), extra)
		   FROM information_schema.columns WHERE table_schema = DATABASE()`,
		`SELECT CONCAT_WS(' | ', 'index', table_name, index_name, non_unique, seq_in_index, column_name, COALESCE(sub_part, '-'))
		   FROM information_schema.statistics WHERE table_schema = DATABASE()`,
	}
	var lines []string
	for _, q := range queries {
		got, err := queryStrings(ctx, db, q)
		if err != nil {
			return nil, err
		}
		lines = append(lines, got...)
	}
	return lines, nil
}

func dumpSQLiteSchema(ctx context.Context, db *sql.DB) ([]string, error) {
	tables, err := queryStrings(ctx, db, `SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'`)
	if err != nil {
		return nil, err
	}
	var lines []string
	for _, tbl := range tables {
		lines = append(lines, "table | "+tbl)
		cols, err := queryStrings(ctx, db, `SELECT printf('column | %s | %03d | %s | %s | notnull=%d | %s | pk=%d', ?, cid, name, type, "notnull", COALESCE(dflt_value, '(none)'), pk)
			FROM pragma_table_info(?)`, tbl, tbl)
		if err != nil {
			return nil, err
		}
		lines = append(lines, cols...)
		idx, err := queryStrings(ctx, db, `SELECT printf('index | %s | %s | unique=%d | origin=%s | partial=%d | %s', ?, l.name, l."unique", l.origin, l.partial,
				(SELECT group_concat(COALESCE(i.name, '(expr)') || CASE i."desc" WHEN 1 THEN ' DESC' ELSE '' END || ' ' || COALESCE(i.coll, ''), ', ')
				   FROM (SELECT * FROM pragma_index_xinfo(l.name) WHERE key = 1 ORDER BY seqno) i))
			FROM pragma_index_list(?) l`, tbl, tbl)
		if err != nil {
			return nil, err
		}
		lines = append(lines, idx...)
	}
	return lines, nil
}

func queryStrings(ctx context.Context, db *sql.DB, query string, args ...any) ([]string, error) {
	rows, err := db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

// diffLines lists the lines only in a ("-") and only in b ("+").
func diffLines(a, b string) string {
	in := func(s string) map[string]bool {
		m := map[string]bool{}
		for _, l := range strings.Split(s, "\n") {
			m[l] = true
		}
		return m
	}
	ma, mb := in(a), in(b)
	var out []string
	for l := range ma {
		if !mb[l] {
			out = append(out, "- "+l)
		}
	}
	for l := range mb {
		if !ma[l] {
			out = append(out, "+ "+l)
		}
	}
	sort.Strings(out)
	return strings.Join(out, "\n")
}
