package models

import (
	"context"
	"os"
	"testing"
	"time"

	gomysql "github.com/go-sql-driver/mysql"
	"gorm.io/driver/mysql"
	"gorm.io/gorm"
)

// The MySQL driver's own timeouts follow DBOptions.Timeout (COMMIT and BEGIN
// take no context), a URL's own values win, and migrations get a pool with
// no read or write timeout.
func TestMySQLDriverTimeouts(t *testing.T) {
	dsn := os.Getenv("CRUMBS_TEST_MYSQL_DSN")
	if dsn == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("CRUMBS_TEST_MYSQL_DSN is not set; under CI=true the MySQL tests must run")
		}
		t.Skip("CRUMBS_TEST_MYSQL_DSN is not set")
	}
	ctx := context.Background()
	driverConfig := func(db *gorm.DB) *gomysql.Config {
		t.Helper()
		d, ok := db.Dialector.(*mysql.Dialector)
		if !ok || d.DSNConfig == nil {
			t.Fatalf("dialector %T without a DSN config", db.Dialector)
		}
		return d.DSNConfig
	}
	open := func(dsn string, timeout time.Duration) *gorm.DB {
		t.Helper()
		db, err := Open(ctx, dsn, DBOptions{MaxOpenConns: 1, Timeout: timeout})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if sqlDB, err := db.DB(); err == nil {
				sqlDB.Close()
			}
		})
		return db
	}

	db := open(dsn, 3*time.Second)
	if c := driverConfig(db); c.Timeout != 3*time.Second || c.ReadTimeout != 3*time.Second || c.WriteTimeout != 3*time.Second {
		t.Fatalf("driver timeouts dial %v read %v write %v, want 3s each", c.Timeout, c.ReadTimeout, c.WriteTimeout)
	}
	if p, ok := db.Config.Plugins[deadlinesName].(*deadlines); !ok || p.timeout != 3*time.Second {
		t.Fatalf("per-call deadlines %+v, want 3s", db.Config.Plugins[deadlinesName])
	}
	long, closeLong, err := unbounded(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	defer closeLong()
	if c := driverConfig(long); c.ReadTimeout != 0 || c.WriteTimeout != 0 {
		t.Fatalf("migration pool: read %v write %v, want none", c.ReadTimeout, c.WriteTimeout)
	}
	if _, has := long.Config.Plugins[deadlinesName]; has {
		t.Fatal("migration pool applies per-call deadlines")
	}

	cfg, err := gomysql.ParseDSN(dsn)
	if err != nil {
		t.Fatal(err)
	}
	cfg.ReadTimeout = time.Minute
	if c := driverConfig(open(cfg.FormatDSN(), 3*time.Second)); c.ReadTimeout != time.Minute || c.WriteTimeout != 3*time.Second {
		t.Fatalf("with readTimeout=1m in the DSN: read %v write %v, want 1m and 3s", c.ReadTimeout, c.WriteTimeout)
	}
	if c := driverConfig(open(dsn, -1)); c.ReadTimeout != 0 || c.WriteTimeout != 0 {
		t.Fatalf("Timeout -1: read %v write %v, want none", c.ReadTimeout, c.WriteTimeout)
	}
}
