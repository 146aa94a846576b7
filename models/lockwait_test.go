package models_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/crumbs-dev/crumbs/models"
	"github.com/crumbs-dev/crumbs/models/modelstest"
	"gorm.io/gorm"
)

// A statement that waits for a lock past CRUMBS_DB_TIMEOUT is given up by
// MySQL too, not only by the driver: the driver drops the connection at the
// deadline, but the server's thread went on waiting (a year for a table or
// metadata lock, 50 s for a row lock), holding its connection slot, so a
// long lock under traffic piled them up until max_connections refused
// everyone (the store-fault audit, with FLUSH TABLES WITH READ LOCK). Here
// a row lock and a LOCK TABLES are held by another session; Crumbs' waiting
// statements answer a store fault and are gone from the server's process
// list within a second or two of the timeout. (Without the session
// variables the row lock's waiter stayed; MariaDB 10.11 ended the table
// lock's waiter with its dropped connection, which other servers and
// FLUSH TABLES WITH READ LOCK's backup lock need not do.)
func TestLockWaitsEndOnTheServer(t *testing.T) {
	dsn := modelstest.MySQLDSN(t)
	ctx := context.Background()
	holder, err := models.Open(ctx, dsn, models.DBOptions{MaxOpenConns: 2})
	if err != nil {
		t.Fatal(err)
	}
	short, err := models.Open(ctx, dsn, models.DBOptions{MaxOpenConns: 2, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	for _, db := range []*gorm.DB{holder, short} {
		if sqlDB, err := db.DB(); err == nil {
			t.Cleanup(func() { sqlDB.Close() })
		}
	}
	table := fmt.Sprintf("lockwait_%d", time.Now().UnixNano()%1e9)
	if err := holder.Exec("CREATE TABLE " + table + " (id INT PRIMARY KEY, v INT NOT NULL) ENGINE=InnoDB").Error; err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { holder.Exec("DROP TABLE IF EXISTS " + table) })
	if err := holder.Exec("INSERT INTO " + table + " VALUES (1, 0)").Error; err != nil {
		t.Fatal(err)
	}
	sqlHolder, err := holder.DB()
	if err != nil {
		t.Fatal(err)
	}

	waiting := func(statement string) int {
		t.Helper()
		var n int
		err := holder.Raw("SELECT COUNT(*) FROM information_schema.processlist WHERE info = ?", statement).Scan(&n).Error
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	for _, tc := range []struct{ name, lock, unlock, statement string }{
		{"row lock", "SELECT v FROM " + table + " WHERE id = 1 FOR UPDATE", "ROLLBACK", "UPDATE " + table + " SET v = v + 1 WHERE id = 1"},
		{"table lock", "LOCK TABLES " + table + " WRITE", "UNLOCK TABLES", "SELECT v FROM " + table + " WHERE id = 1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conn, err := sqlHolder.Conn(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			if tc.unlock == "ROLLBACK" {
				if _, err := conn.ExecContext(ctx, "BEGIN"); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := conn.ExecContext(ctx, tc.lock); err != nil {
				t.Fatal(err)
			}
			defer conn.ExecContext(ctx, tc.unlock)

			began := time.Now()
			err = short.WithContext(ctx).Exec(tc.statement).Error
			if !models.IsStoreFault(err) {
				t.Fatalf("%s under the lock: %v, want a store fault", tc.statement, err)
			}
			if took := time.Since(began); took > 5*time.Second {
				t.Fatalf("answered after %s, want about the 1 s timeout", took)
			}
			deadline := time.Now().Add(3 * time.Second)
			for waiting(tc.statement) > 0 {
				if time.Now().After(deadline) {
					t.Fatalf("%s still waits on the server %s after the timeout", tc.statement, time.Since(began))
				}
				time.Sleep(100 * time.Millisecond)
			}
		})
	}
}
