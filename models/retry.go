package models

import (
	"context"
	"errors"
	"math/rand/v2"
	"time"

	gomysql "github.com/go-sql-driver/mysql"
	"github.com/ncruces/go-sqlite3"
	"gorm.io/gorm"
)

// withRetry runs fn again when it failed for a transient reason: a deadlock,
// a lock wait timeout, a busy SQLite file, or a unique key raced by another
// writer. fn must be a whole transaction.
func withRetry(ctx context.Context, fn func() error) error {
	var err error
	for attempt := range 5 {
		if err = fn(); err == nil || !retryable(err) {
			return err
		}
		backoff := time.Duration(1<<attempt) * time.Millisecond
		select {
		case <-time.After(backoff + rand.N(backoff)):
		case <-ctx.Done():
			return err
		}
	}
	return err
}

func retryable(err error) bool {
	if errors.Is(err, gorm.ErrDuplicatedKey) {
		return true
	}
	var my *gomysql.MySQLError
	if errors.As(err, &my) {
		switch my.Number {
		case 1205, 1213: // lock wait timeout, deadlock
			return true
		}
	}
	var lite sqlite3.ErrorCode // from *sqlite3.Error or bare
	if errors.As(err, &lite) {
		return lite == sqlite3.BUSY || lite == sqlite3.LOCKED
	}
	return false
}
