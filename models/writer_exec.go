package models

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"strings"

	gomysql "github.com/go-sql-driver/mysql"
	gormmysql "gorm.io/driver/mysql"
	"gorm.io/gorm"
)

// stmt is one statement of a group commit.
type stmt struct {
	query string
	args  []any
}

// txRunner opens a group commit's transaction and runs its statements in
// as few round trips as the driver allows, returning each statement's
// affected rows. The transaction stays open for the caller to check those
// and commit or roll back.
type txRunner interface {
	run(ctx context.Context, stmts []stmt) (openTx, []int64, error)
	close()
}

type openTx interface {
	commit(ctx context.Context) error
	rollback()
}

// newTxRunner picks the runner for db. On MySQL the writer has connections
// of its own, opened with multiStatements so that BEGIN and every statement
// of a group commit travel in one round trip (the COMMIT in a second);
// they also keep dashboard queries from starving the acknowledgement path.
func newTxRunner(db *gorm.DB, conns int) (txRunner, error) {
	d, ok := db.Dialector.(*gormmysql.Dialector)
	if !ok {
		return &sqliteRunner{db: db}, nil
	}
	cfg, err := gomysql.ParseDSN(d.DSN)
	if err != nil {
		return nil, err
	}
	cfg.MultiStatements = true
	cfg.InterpolateParams = true
	connector, err := gomysql.NewConnector(cfg)
	if err != nil {
		return nil, err
	}
	pool := sql.OpenDB(connector)
	pool.SetMaxOpenConns(conns)
	pool.SetMaxIdleConns(conns)
	pool.SetConnMaxLifetime(30 * 60e9)
	var packet int64
	if err := pool.QueryRow("SELECT @@max_allowed_packet").Scan(&packet); err != nil {
		pool.Close()
		return nil, fmt.Errorf("models.NewWriter: %w", err)
	}
	return &mysqlRunner{pool: pool, translate: d, maxPacket: int(packet)}, nil
}

type mysqlRunner struct {
	pool      *sql.DB
	translate gorm.ErrorTranslator
	maxPacket int
}

func (r *mysqlRunner) close() { r.pool.Close() }

func (r *mysqlRunner) run(ctx context.Context, stmts []stmt) (openTx, []int64, error) {
	conn, err := r.pool.Conn(ctx)
	if err != nil {
		return nil, nil, err
	}
	tx := &mysqlTx{conn: conn}
	var affected []int64
	// One packet for everything unless the statements outgrow the server's
	// max_allowed_packet (escaping may double strings: count them twice).
	for first := 0; first < len(stmts); {
		var sb strings.Builder
		var args []any
		size := 0
		if first == 0 {
			sb.WriteString("START TRANSACTION")
		}
		last := first
		for ; last < len(stmts); last++ {
			s := stmts[last]
			n := len(s.query) + 2*argsSize(s.args)
			if last > first && size+n > r.maxPacket/2 {
				break
			}
			size += n
			if sb.Len() > 0 {
				sb.WriteByte(';')
			}
			sb.WriteString(s.query)
			args = append(args, s.args...)
		}
		res, err := tx.exec(ctx, sb.String(), args)
		if err != nil {
			tx.rollback()
			return nil, nil, r.translate.Translate(err)
		}
		if first == 0 {
			res = res[1:] // START TRANSACTION
		}
		affected = append(affected, res...)
		first = last
	}
	return tx, affected, nil
}

func argsSize(args []any) int {
	n := 0
	for _, a := range args {
		switch v := a.(type) {
		case string:
			n += len(v)
		case *string:
			if v != nil {
				n += len(*v)
			}
		case []byte:
			n += len(v)
		default:
			n += 24
		}
	}
	return n
}

type mysqlTx struct {
	conn *sql.Conn
}

// exec runs a multi-statement query on the driver's connection, where
// every statement's affected rows can be read.
func (t *mysqlTx) exec(ctx context.Context, query string, args []any) ([]int64, error) {
	var affected []int64
	err := t.conn.Raw(func(dc any) error {
		named := make([]driver.NamedValue, len(args))
		checker := dc.(driver.NamedValueChecker)
		for i, a := range args {
			named[i] = driver.NamedValue{Ordinal: i + 1, Value: a}
			if err := checker.CheckNamedValue(&named[i]); err != nil {
				return err
			}
		}
		res, err := dc.(driver.ExecerContext).ExecContext(ctx, query, named)
		if err != nil {
			return err
		}
		affected = res.(gomysql.Result).AllRowsAffected()
		return nil
	})
	if errors.Is(err, driver.ErrSkip) {
		return nil, errors.New("models: a group commit statement exceeds the driver's packet size")
	}
	return affected, err
}

func (t *mysqlTx) commit(ctx context.Context) error {
	_, err := t.conn.ExecContext(ctx, "COMMIT")
	if err != nil {
		t.discard()
		return err
	}
	return t.conn.Close()
}

func (t *mysqlTx) rollback() {
	ctx, cancel := context.WithTimeout(context.Background(), 5e9)
	defer cancel()
	if _, err := t.conn.ExecContext(ctx, "ROLLBACK"); err != nil {
		t.discard()
		return
	}
	t.conn.Close()
}

// discard closes the connection for good: its transaction's state is unknown.
func (t *mysqlTx) discard() {
	t.conn.Raw(func(any) error { return driver.ErrBadConn })
	t.conn.Close()
}

// sqliteRunner runs the statements one by one: SQLite is in the process,
// so a statement costs no round trip.
type sqliteRunner struct {
	db *gorm.DB
}

func (r *sqliteRunner) close() {}

func (r *sqliteRunner) run(ctx context.Context, stmts []stmt) (openTx, []int64, error) {
	sqlDB, err := r.db.DB()
	if err != nil {
		return nil, nil, err
	}
	tx, err := sqlDB.BeginTx(ctx, nil)
	if err != nil {
		return nil, nil, err
	}
	affected := make([]int64, len(stmts))
	for i, s := range stmts {
		res, err := tx.ExecContext(ctx, s.query, s.args...)
		if err == nil {
			affected[i], err = res.RowsAffected()
		}
		if err != nil {
			tx.Rollback()
			return nil, nil, r.db.Dialector.(gorm.ErrorTranslator).Translate(err)
		}
	}
	return sqliteTx{tx}, affected, nil
}

type sqliteTx struct{ tx *sql.Tx }

func (t sqliteTx) commit(context.Context) error { return t.tx.Commit() }
func (t sqliteTx) rollback()                    { t.tx.Rollback() }
