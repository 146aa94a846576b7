// Package modelstest opens real databases for tests: a fresh SQLite file per
// test, and a MySQL/MariaDB database per test binary when CRUMBS_TEST_MYSQL_DSN
// is set. Under CI=true the MySQL half is mandatory.
package modelstest

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/crumbs-dev/crumbs/models"
	gomysql "github.com/go-sql-driver/mysql"
	"golang.org/x/crypto/bcrypt"
	"gorm.io/gorm"
)

// Store is one database a test runs against.
type Store struct {
	Name string
	DB   *gorm.DB
}

// Each runs fn as a subtest against SQLite and, when configured, MySQL.
func Each(t *testing.T, fn func(t *testing.T, db *gorm.DB)) {
	t.Helper()
	t.Run("sqlite", func(t *testing.T) { fn(t, SQLite(t)) })
	t.Run("mysql", func(t *testing.T) { fn(t, MySQL(t)) })
}

// SQLite returns a migrated database in a fresh file under t.TempDir.
func SQLite(t testing.TB) *gorm.DB {
	t.Helper()
	ctx := context.Background()
	db, err := models.Open(ctx, "sqlite:"+filepath.Join(t.TempDir(), "crumbs.db"), models.DBOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if sqlDB, err := db.DB(); err == nil {
			sqlDB.Close()
		}
	})
	if err := models.Migrate(ctx, db); err != nil {
		t.Fatal(err)
	}
	return db
}

var mysqlShared struct {
	once   sync.Once
	db     *gorm.DB
	admin  *gorm.DB
	dbName string
	err    error
}

// MySQL returns the test binary's migrated MySQL database, shared by its
// tests (each test works in apps of its own). It skips without
// CRUMBS_TEST_MYSQL_DSN, except under CI=true, where it fails.
func MySQL(t testing.TB) *gorm.DB {
	t.Helper()
	dsn := os.Getenv("CRUMBS_TEST_MYSQL_DSN")
	if dsn == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("CRUMBS_TEST_MYSQL_DSN is not set; under CI=true the MySQL tests must run")
		}
		t.Skip("CRUMBS_TEST_MYSQL_DSN is not set")
	}
	s := &mysqlShared
	s.once.Do(func() { s.db, s.admin, s.dbName, s.err = openMySQL(dsn) })
	if s.err != nil {
		t.Fatal(s.err)
	}
	return s.db
}

func openMySQL(dsn string) (db, admin *gorm.DB, name string, err error) {
	ctx := context.Background()
	admin, err = models.Open(ctx, dsn, models.DBOptions{MaxOpenConns: 2})
	if err != nil {
		return nil, nil, "", err
	}
	name = fmt.Sprintf("crumbs_test_%d_%d", os.Getpid(), time.Now().UnixNano()%1e6)
	collation, _, err := models.ExactCollation(ctx, admin)
	if err != nil {
		return nil, nil, "", err
	}
	if err := admin.Exec("CREATE DATABASE " + name + " CHARACTER SET utf8mb4 COLLATE " + collation).Error; err != nil {
		return nil, nil, "", err
	}
	testDSN, err := withDatabase(dsn, name)
	if err != nil {
		return nil, nil, "", err
	}
	if db, err = models.Open(ctx, testDSN, models.DBOptions{MaxOpenConns: 32}); err != nil {
		return nil, nil, "", err
	}
	if err := models.Migrate(ctx, db); err != nil {
		return nil, nil, "", err
	}
	return db, admin, name, nil
}

// withDatabase points a DSN in either accepted form at another database.
func withDatabase(dsn, name string) (string, error) {
	if strings.HasPrefix(dsn, "mysql://") {
		u, err := url.Parse(dsn)
		if err != nil {
			return "", err
		}
		u.Path = "/" + name
		return u.String(), nil
	}
	cfg, err := gomysql.ParseDSN(dsn)
	if err != nil {
		return "", err
	}
	cfg.DBName = name
	return cfg.FormatDSN(), nil
}

// MySQLDSN returns a DSN for the shared test database, for tests that start
// the server as a separate process. It has the same skip rules as MySQL.
func MySQLDSN(t testing.TB) string {
	MySQL(t)
	dsn, err := withDatabase(os.Getenv("CRUMBS_TEST_MYSQL_DSN"), mysqlShared.dbName)
	if err != nil {
		t.Fatal(err)
	}
	return dsn
}

// ProxiedMySQL puts a Proxy between the test and the MySQL server and
// returns it with a DSN of the shared test database through it. It has the
// same skip rules as MySQL.
func ProxiedMySQL(t testing.TB) (*Proxy, string) {
	t.Helper()
	dsn := MySQLDSN(t)
	if strings.HasPrefix(dsn, "mysql://") {
		u, err := url.Parse(dsn)
		if err != nil {
			t.Fatal(err)
		}
		p := NewProxy(t, u.Host)
		u.Host = p.Addr()
		return p, u.String()
	}
	cfg, err := gomysql.ParseDSN(dsn)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Net != "tcp" {
		t.Fatalf("CRUMBS_TEST_MYSQL_DSN: the proxy needs a tcp address, not %s", cfg.Net)
	}
	p := NewProxy(t, cfg.Addr)
	cfg.Addr = p.Addr()
	return p, cfg.FormatDSN()
}

// Main runs the tests of a package and drops the MySQL database they used.
// Call it from TestMain: os.Exit(modelstest.Main(m)).
func Main(m *testing.M) int {
	models.PasswordCost = bcrypt.MinCost // hashing strength is not under test
	code := m.Run()
	if s := &mysqlShared; s.admin != nil && s.dbName != "" {
		if sqlDB, err := s.db.DB(); err == nil {
			sqlDB.Close()
		}
		s.admin.Exec("DROP DATABASE IF EXISTS " + s.dbName)
	}
	return code
}
