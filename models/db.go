package models

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	gomysql "github.com/go-sql-driver/mysql"
	"github.com/ncruces/go-sqlite3"
	"github.com/ncruces/go-sqlite3/driver"
	"github.com/ncruces/go-sqlite3/gormlite"
	"gorm.io/driver/mysql"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"
)

// DBOptions tune the connection pool.
type DBOptions struct {
	MaxOpenConns int
	// Timeout bounds every database call: a statement whose context has no
	// deadline gets one this far ahead, MySQL connections give up dialing,
	// reading or writing after it (which also bounds BEGIN and COMMIT), and
	// SQLite waits at most this long for a lock. Zero means
	// DefaultDBTimeout; negative means none (for long maintenance work).
	Timeout time.Duration
}

// sqliteTimeLayout is fixed-width UTC, so stored times sort correctly as text.
const sqliteTimeLayout = "2006-01-02 15:04:05.000"

// Open connects to the database named by rawURL and returns a gorm handle:
//
//	mysql://user:pass@host:3306/dbname?param=value   MySQL, MariaDB, TiDB, Vitess
//	user:pass@tcp(host:3306)/dbname                  the same, in go-sql-driver form
//	sqlite:path/to/crumbs.db                         embedded SQLite (pure Go)
//
// An empty URL means sqlite:crumbs.db.
func Open(ctx context.Context, rawURL string, opts DBOptions) (*gorm.DB, error) {
	if opts.Timeout == 0 {
		opts.Timeout = DefaultDBTimeout
	}
	dialector, err := dialectorFor(rawURL, opts.Timeout)
	if err != nil {
		return nil, err
	}
	return open(ctx, dialector, opts)
}

func open(ctx context.Context, dialector gorm.Dialector, opts DBOptions) (*gorm.DB, error) {
	db, err := gorm.Open(dialector, &gorm.Config{
		TranslateError:         true,
		SkipDefaultTransaction: true,
		PrepareStmt:            false,
		Logger:                 logger.Discard,
		NowFunc:                func() time.Time { return Now() },
	})
	if err != nil {
		return nil, fmt.Errorf("open database: %w", err)
	}
	if opts.Timeout > 0 {
		if err := db.Use(&deadlines{timeout: opts.Timeout}); err != nil {
			return nil, fmt.Errorf("open database: %w", err)
		}
	}
	sqlDB, err := db.DB()
	if err != nil {
		return nil, err
	}
	if db.Dialector.Name() == "sqlite" {
		// One writer at a time is SQLite's model; a single connection also keeps
		// transactions from failing with SQLITE_BUSY under load.
		sqlDB.SetMaxOpenConns(1)
	} else {
		n := opts.MaxOpenConns
		if n <= 0 {
			n = 16
		}
		sqlDB.SetMaxOpenConns(n)
		sqlDB.SetMaxIdleConns(n)
		sqlDB.SetConnMaxLifetime(30 * time.Minute)
	}
	pingCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := sqlDB.PingContext(pingCtx); err != nil {
		sqlDB.Close()
		return nil, fmt.Errorf("connect to database: %w", err)
	}
	return db, nil
}

func dialectorFor(rawURL string, timeout time.Duration) (gorm.Dialector, error) {
	switch {
	case rawURL == "":
		return sqliteDialector("crumbs.db", timeout)
	case strings.HasPrefix(rawURL, "sqlite:"):
		path := strings.TrimPrefix(strings.TrimPrefix(rawURL, "sqlite:"), "//")
		if path == "" {
			return nil, errors.New("database url: sqlite: needs a file path, e.g. sqlite:crumbs.db")
		}
		return sqliteDialector(path, timeout)
	case strings.HasPrefix(rawURL, "mysql://"):
		dsn, err := mysqlDSNFromURL(rawURL, timeout)
		if err != nil {
			return nil, err
		}
		return mysql.Open(dsn), nil
	case strings.Contains(rawURL, "@tcp(") || strings.Contains(rawURL, "@unix("):
		cfg, err := gomysql.ParseDSN(rawURL)
		if err != nil {
			return nil, fmt.Errorf("database url: %w", err)
		}
		return mysql.Open(mysqlDefaults(cfg, timeout).FormatDSN()), nil
	}
	return nil, fmt.Errorf("database url: unsupported form %q (use mysql://... or sqlite:path)", redactURL(rawURL))
}

func sqliteDialector(path string, timeout time.Duration) (gorm.Dialector, error) {
	// WAL with synchronous=FULL: an acknowledged commit survives power loss.
	// A lock held by another process is waited for as long as any call may
	// take.
	busy := DefaultDBTimeout
	if timeout > 0 {
		busy = timeout
	}
	q := url.Values{}
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(FULL)")
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", busy.Milliseconds()))
	q.Add("_pragma", "foreign_keys(1)")
	q.Set("_txlock", "immediate")
	q.Set("_timefmt", sqliteTimeLayout)
	if err := createPrivately(path); err != nil {
		return nil, fmt.Errorf("database url: %w", err)
	}
	// The WAL, which holds the latest commits, is given the database file's
	// mode, as C SQLite does (the pure-Go engine's default is 0666 less the
	// umask, whatever the database's mode).
	q.Set("modeof", path)
	sqlDB, err := driver.Open("file:"+path+"?"+q.Encode(), sqliteFunctions)
	if err != nil {
		return nil, fmt.Errorf("database url: %w", err)
	}
	return gormlite.OpenDB(sqlDB), nil
}

// sqliteFunctions adds to each SQLite connection the functions that rules
// call there, so that SQLite reads values exactly as Go does:
// crumbs_number(text), the number in a value (textNumber; NULL when it
// holds none), and crumbs_text_match(operator, text, value), contains,
// starts_with or ends_with ignoring case (textMatches; NULL on NULL text).
func sqliteFunctions(c *sqlite3.Conn) error {
	const flags = sqlite3.DETERMINISTIC | sqlite3.INNOCUOUS
	err := c.CreateFunction("crumbs_number", 1, flags, func(ctx sqlite3.Context, arg ...sqlite3.Value) {
		if arg[0].Type() == sqlite3.NULL {
			ctx.ResultNull()
			return
		}
		if f, ok := textNumber(arg[0].Text()); ok {
			ctx.ResultFloat(f)
			return
		}
		ctx.ResultNull()
	})
	if err != nil {
		return err
	}
	return c.CreateFunction("crumbs_text_match", 3, flags, func(ctx sqlite3.Context, arg ...sqlite3.Value) {
		if arg[1].Type() == sqlite3.NULL {
			ctx.ResultNull()
			return
		}
		ctx.ResultBool(textMatches(arg[0].Text(), arg[1].Text(), arg[2].Text()))
	})
}

func mysqlDSNFromURL(raw string, timeout time.Duration) (string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		// url.Error repeats the whole URL, password included, and this
		// error ends up in the log.
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err
		}
		return "", fmt.Errorf("database url %s: %v", redactURL(raw), err)
	}
	cfg := gomysql.NewConfig()
	if u.User != nil {
		cfg.User = u.User.Username()
		cfg.Passwd, _ = u.User.Password()
	}
	cfg.Net = "tcp"
	cfg.Addr = u.Host
	if u.Port() == "" {
		cfg.Addr = u.Host + ":3306"
	}
	cfg.DBName = strings.TrimPrefix(u.Path, "/")
	if cfg.DBName == "" {
		return "", errors.New("database url: mysql:// needs a database name, e.g. mysql://root@127.0.0.1:3306/crumbs")
	}
	cfg.Params = map[string]string{}
	for k, v := range u.Query() {
		cfg.Params[k] = v[0]
	}
	return mysqlDefaults(cfg, timeout).FormatDSN(), nil
}

// mysqlDefaults sets what Crumbs relies on. Timeouts the URL sets itself are
// kept; a negative timeout sets none.
func mysqlDefaults(cfg *gomysql.Config, timeout time.Duration) *gomysql.Config {
	if cfg.Params == nil {
		cfg.Params = map[string]string{}
	}
	if timeout > 0 {
		// A frozen server would otherwise hold a connection for as long as
		// TCP retransmits (many minutes): COMMIT and BEGIN take no context.
		cfg.Timeout = cmp.Or(cfg.Timeout, timeout)
		cfg.ReadTimeout = cmp.Or(cfg.ReadTimeout, timeout)
		cfg.WriteTimeout = cmp.Or(cfg.WriteTimeout, timeout)
		// A statement waiting for a lock outlives its deadline on the
		// server: the driver gives up and drops the connection, but the
		// server's thread waits on, holding its connection slot, until the
		// lock goes or the server's own wait ends (a year for table and
		// metadata locks, 50 s for rows). A long lock under traffic piled
		// up such threads until max_connections refused everyone. The
		// server gives up at the timeout too, in whole seconds.
		secs := strconv.Itoa(int(math.Ceil(timeout.Seconds())))
		for _, v := range lockWaitVariables {
			if _, set := cfg.Params[v]; !set {
				cfg.Params[v] = secs
			}
		}
	}
	cfg.ParseTime = true
	cfg.Loc = time.UTC
	cfg.Params["charset"] = "utf8mb4"
	cfg.Collation = "utf8mb4_bin"
	cfg.InterpolateParams = true
	return cfg
}

// lockWaitVariables are the session variables bounding how long MySQL waits
// for a lock: table and metadata locks (LOCK TABLES, FLUSH TABLES WITH READ
// LOCK, a DDL), and InnoDB's row locks.
var lockWaitVariables = []string{"lock_wait_timeout", "innodb_lock_wait_timeout"}

func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err == nil && u.User != nil {
		u.User = url.User(u.User.Username())
		return u.String()
	}
	if err != nil {
		// Unparsable: whatever follows the scheme may hold a password.
		scheme, _, ok := strings.Cut(raw, "://")
		if !ok || strings.ContainsAny(scheme, "@:/") {
			return "(not shown: not a URL)"
		}
		return scheme + "://(not shown: not a URL)"
	}
	return raw
}

// unbounded returns a handle on db's database for work that may rightly take
// minutes (migrations): on MySQL a pool of its own without the driver's I/O
// timeouts, closed by the returned function. Its callers pass a context made
// by WithoutDeadline.
func unbounded(ctx context.Context, db *gorm.DB) (*gorm.DB, func(), error) {
	d, ok := db.Dialector.(*mysql.Dialector)
	if !ok || d.DSNConfig == nil {
		return db, func() {}, nil
	}
	cfg := d.DSNConfig.Clone()
	cfg.ReadTimeout, cfg.WriteTimeout = 0, 0
	for _, v := range lockWaitVariables {
		delete(cfg.Params, v) // the server's own waits
	}
	long, err := open(ctx, mysql.Open(cfg.FormatDSN()), DBOptions{MaxOpenConns: 4, Timeout: -1})
	if err != nil {
		return nil, nil, err
	}
	return long, func() {
		if sqlDB, err := long.DB(); err == nil {
			sqlDB.Close()
		}
	}, nil
}

// Ping reports whether the database answers.
func Ping(ctx context.Context, db *gorm.DB) error {
	sqlDB, err := db.DB()
	if err != nil {
		return err
	}
	return sqlDB.PingContext(ctx)
}

func isMySQL(db *gorm.DB) bool { return db.Dialector.Name() == "mysql" }

// sqlDialect is what rule conditions and searches are written for.
type sqlDialect struct {
	mysql bool
	// fold is a collation whose LOWER lower-cases letters as Go's
	// strings.ToLower does, or "" where the server has none.
	fold string
}

// foldCollations lower-case letters as Go's unicode tables do: MariaDB's
// UCA 14.0 collation (10.10 and later) on every letter Go knows, MySQL 8's
// UCA 9.0 on all but those added since. The tables' binary collation folds
// far fewer: on MariaDB 10.11 utf8mb4_nopad_bin's LOWER left 737 of Go's
// 2,879 cased letters as they were (Ƞ, ẞ, Cherokee, Georgian Mtavruli,
// every letter outside the BMP such as Deseret 𐐀).
var foldCollations = []string{"utf8mb4_uca1400_as_cs", "utf8mb4_0900_as_cs"}

// foldByPool remembers each MySQL pool's fold collation (the pool, not the
// *gorm.DB: every session of it copies its Config).
var foldByPool sync.Map // gorm.ConnPool -> string

// dialectOf returns db's dialect, asking a MySQL server once per pool
// which fold collation it has.
func dialectOf(db *gorm.DB) (sqlDialect, error) {
	if !isMySQL(db) {
		return sqlDialect{}, nil
	}
	if fold, ok := foldByPool.Load(db.Config.ConnPool); ok {
		return sqlDialect{mysql: true, fold: fold.(string)}, nil
	}
	// MariaDB lists its UCA 14.0 collations without the character set
	// (uca1400_as_cs), for every character set.
	var have []string
	err := db.Raw("SELECT COLLATION_NAME FROM information_schema.COLLATION_CHARACTER_SET_APPLICABILITY WHERE CHARACTER_SET_NAME = 'utf8mb4' AND COLLATION_NAME IN ?",
		append(slices.Clone(foldCollations), "uca1400_as_cs")).Scan(&have).Error
	if err != nil {
		return sqlDialect{}, fmt.Errorf("models.dialectOf: %w", err)
	}
	d := sqlDialect{mysql: true}
	for _, c := range foldCollations {
		if slices.Contains(have, c) || slices.Contains(have, strings.TrimPrefix(c, "utf8mb4_")) {
			d.fold = c
			break
		}
	}
	foldByPool.Store(db.Config.ConnPool, d.fold)
	return d, nil
}

// lower is MySQL's expression for expr lower-cased. With a fold collation
// it is compared byte for byte (a UCA collation's LIKE would skip
// characters such as U+200D that Go's strings.Contains sees).
func (d sqlDialect) lower(expr string) string {
	if d.fold == "" {
		return "LOWER(" + expr + ")"
	}
	return "CAST(LOWER(CONVERT(" + expr + " USING utf8mb4) COLLATE " + d.fold + ") AS BINARY)"
}

// noPadCollations are the binary utf8mb4 collations that compare strings
// byte for byte, trailing spaces included (NO PAD), in order of preference:
// MariaDB's, then MySQL 8's (also TiDB's with its new collation framework).
// utf8mb4_bin is PAD SPACE on MySQL and MariaDB: 'a' = 'a ' there, so a
// messageId or deviceId with a trailing space would match another's row.
var noPadCollations = []string{"utf8mb4_nopad_bin", "utf8mb4_0900_bin"}

// padSpaceCollation is the fallback on servers that have no NO PAD binary
// collation (MySQL 5.7, TiDB without the new collation framework).
const padSpaceCollation = "utf8mb4_bin"

// ExactCollation returns the collation Crumbs gives its tables on a
// MySQL-protocol server: the first of noPadCollations the server has, or
// utf8mb4_bin where it has none (exact is false then).
func ExactCollation(ctx context.Context, db *gorm.DB) (collation string, exact bool, err error) {
	var have []string
	err = db.WithContext(ctx).Raw("SELECT COLLATION_NAME FROM information_schema.COLLATIONS WHERE COLLATION_NAME IN ?", noPadCollations).
		Scan(&have).Error
	if err != nil {
		return "", false, fmt.Errorf("models.ExactCollation: %w", err)
	}
	for _, c := range noPadCollations {
		if slices.Contains(have, c) {
			return c, true, nil
		}
	}
	return padSpaceCollation, false, nil
}

// Now is the current time as the store keeps it: UTC, millisecond precision.
func Now() time.Time { return StoreTime(time.Now()) }

// StoreTime converts t to the precision and zone the store keeps.
func StoreTime(t time.Time) time.Time { return t.UTC().Truncate(time.Millisecond) }
