package models

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"io"
	"net"
	"syscall"

	gomysql "github.com/go-sql-driver/mysql"
	"github.com/ncruces/go-sqlite3"
)

// MsgStoreUnavailable is the log message of every store fault, so that a
// log handler can throttle them as one stream (the server logs them at most
// once per second, with a count).
const MsgStoreUnavailable = "store unavailable"

// IsStoreFault reports whether err means the store could not be reached or
// did not answer in time (the answer is UNAVAILABLE), for callers outside
// models that log such errors under MsgStoreUnavailable.
func IsStoreFault(err error) bool { return storeFault(err) }

// storeFault reports whether err means the store could not be reached or did
// not answer in time, rather than refusing what was asked: the answer is
// UNAVAILABLE and retrying later is safe.
func storeFault(err error) bool {
	if err == nil {
		return false
	}
	for _, target := range []error{
		ErrUnavailable, context.DeadlineExceeded, context.Canceled,
		driver.ErrBadConn, sql.ErrConnDone, gomysql.ErrInvalidConn, io.ErrUnexpectedEOF, io.EOF,
		syscall.ECONNREFUSED, syscall.ECONNRESET, syscall.EPIPE,
	} {
		if errors.Is(err, target) {
			return true
		}
	}
	var netErr net.Error
	if errors.As(err, &netErr) {
		return true
	}
	var my *gomysql.MySQLError
	if errors.As(err, &my) {
		switch my.Number {
		case 1040, // too many connections
			1053, // server shutdown in progress
			1135, // can't create a new thread (the server is out of resources)
			1203, // the user already has more than max_user_connections
			1226, // the user has exceeded a resource limit (max_user_connections, max_queries_per_hour, ...)
			1290, // the server runs with --read-only (a primary being failed over)
			1836, // the server runs in read-only mode
			1205, // lock wait timeout (after the retries)
			1317, // query execution was interrupted
			1927, // connection was killed (MariaDB)
			1969, // max_statement_time exceeded (MariaDB)
			3024: // max_execution_time exceeded (MySQL)
			return true
		}
	}
	// The driver returns *sqlite3.Error or, for an interrupted statement
	// (its context ended), a bare sqlite3.ErrorCode; As finds either.
	var lite sqlite3.ErrorCode
	if errors.As(err, &lite) {
		switch lite {
		case sqlite3.BUSY, sqlite3.LOCKED, sqlite3.INTERRUPT:
			return true
		}
	}
	return false
}
