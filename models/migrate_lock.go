package models

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	gomysql "github.com/go-sql-driver/mysql"
	"gorm.io/gorm"
)

// Replicas that start together must not migrate together: two of them would
// both find a migration pending and run it twice (CREATE TABLE fails on the
// second, an index is built twice). On MySQL, Migrate first takes a lock
// named after the database with GET_LOCK, which MySQL, MariaDB, TiDB (5.4+)
// and Vitess (routed to one shard on a reserved connection) all provide; the
// lock dies with its connection, so a crashed replica never leaves it
// behind. Where GET_LOCK is refused (older TiDB answers that it is a no-op
// function), the lock is a row in migration_lock, held under a lease that
// the holder renews and others may take over once it has expired.
//
// SQLite needs neither: gormigrate runs the migrations in one
// BEGIN IMMEDIATE transaction there, which other connections wait for.

type lockKind int

const (
	lockAuto lockKind = iota // GET_LOCK, else the lock row
	lockRow                  // the lock row only
)

const (
	// migrationLockWait bounds how long a replica waits for another's
	// migrations before giving up (it exits and its supervisor restarts it).
	migrationLockWait = 30 * time.Minute
	// migrationLease is how long a lock row stays valid without renewal.
	migrationLease = 60 * time.Second
	lockPoll       = time.Second
)

// lockMigrations takes the database's migration lock and returns the
// function that releases it.
func lockMigrations(ctx context.Context, db *gorm.DB, kind lockKind) (unlock func(), err error) {
	if !isMySQL(db) {
		return func() {}, nil
	}
	ctx, cancel := context.WithTimeout(ctx, migrationLockWait)
	defer cancel()
	sqlDB, err := db.DB()
	if err != nil {
		return nil, err
	}
	if kind == lockAuto {
		unlock, err := getLock(ctx, sqlDB)
		var refused *gomysql.MySQLError
		if !errors.As(err, &refused) {
			return unlock, err
		}
		// The engine has no GET_LOCK: fall back to the lock row.
	}
	return lockRowAcquire(ctx, sqlDB)
}

// getLock takes GET_LOCK on a connection of its own, kept until unlock.
func getLock(ctx context.Context, sqlDB *sql.DB) (func(), error) {
	conn, err := sqlDB.Conn(ctx)
	if err != nil {
		return nil, err
	}
	var dbName sql.NullString
	if err := conn.QueryRowContext(ctx, "SELECT DATABASE()").Scan(&dbName); err != nil {
		conn.Close()
		return nil, err
	}
	// Lock names are global to the server and at most 64 characters.
	sum := sha256.Sum256([]byte(dbName.String))
	name := "crumbs.migrate." + hex.EncodeToString(sum[:12])
	for {
		var got sql.NullInt64
		err := conn.QueryRowContext(ctx, "SELECT GET_LOCK(?, ?)", name, int(lockPoll.Seconds())*5).Scan(&got)
		if err != nil {
			conn.Close()
			return nil, fmt.Errorf("migration lock: %w", err)
		}
		if !got.Valid {
			conn.Close()
			return nil, errors.New("migration lock: GET_LOCK failed")
		}
		if got.Int64 == 1 {
			return func() {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				conn.ExecContext(ctx, "SELECT RELEASE_LOCK(?)", name)
				conn.Close() // ends the session, which would release it anyway
			}, nil
		}
		if err := ctx.Err(); err != nil {
			conn.Close()
			return nil, fmt.Errorf("migration lock: another replica is still migrating: %w", err)
		}
	}
}

// lockRowAcquire takes the lock row: by inserting it, or by taking over one
// whose lease has expired. A goroutine renews the lease until unlock.
func lockRowAcquire(ctx context.Context, sqlDB *sql.DB) (func(), error) {
	exec := func(ctx context.Context, query string, args ...any) (int64, error) {
		ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		res, err := sqlDB.ExecContext(ctx, query, args...)
		if err != nil {
			return 0, err
		}
		return res.RowsAffected()
	}
	if _, err := exec(ctx, `CREATE TABLE IF NOT EXISTS migration_lock (
		id INT NOT NULL PRIMARY KEY, holder VARCHAR(32) NOT NULL, expires_at BIGINT NOT NULL)`); err != nil {
		return nil, fmt.Errorf("migration lock: %w", err)
	}
	holder := rand.Text()[:16]
	for {
		now := time.Now()
		expires := now.Add(migrationLease).UnixMilli()
		_, err := exec(ctx, "INSERT INTO migration_lock (id, holder, expires_at) VALUES (1, ?, ?)", holder, expires)
		if err == nil {
			break
		}
		var dup *gomysql.MySQLError
		if !errors.As(err, &dup) || dup.Number != 1062 {
			return nil, fmt.Errorf("migration lock: %w", err)
		}
		n, err := exec(ctx, "UPDATE migration_lock SET holder = ?, expires_at = ? WHERE id = 1 AND expires_at < ?", holder, expires, now.UnixMilli())
		if err != nil {
			return nil, fmt.Errorf("migration lock: %w", err)
		}
		if n == 1 {
			break
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("migration lock: another replica is still migrating: %w", ctx.Err())
		case <-time.After(lockPoll):
		}
	}
	stop, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		tick := time.NewTicker(migrationLease / 3)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				exec(context.Background(), "UPDATE migration_lock SET expires_at = ? WHERE id = 1 AND holder = ?",
					time.Now().Add(migrationLease).UnixMilli(), holder)
			}
		}
	}()
	return func() {
		close(stop)
		<-stopped
		exec(context.Background(), "DELETE FROM migration_lock WHERE id = 1 AND holder = ?", holder)
	}, nil
}
