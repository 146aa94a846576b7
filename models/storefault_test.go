package models_test

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/crumbs-dev/crumbs/models"
	"github.com/crumbs-dev/crumbs/models/modelstest"
	gomysql "github.com/go-sql-driver/mysql"
	"github.com/ncruces/go-sqlite3"
	"gorm.io/gorm"
)

// hangGuard is how long a fault test waits for an answer before it calls the
// call hung. It is far above every timeout under test, so it measures no
// speed: without the deadlines, calls wait for as long as the store is
// frozen, which is until the test gives up.
const hangGuard = 2 * time.Minute

// openVia opens the shared MySQL test database through dsn with a per-call
// timeout.
func openVia(t *testing.T, dsn string, timeout time.Duration) *gorm.DB {
	t.Helper()
	db, err := models.Open(context.Background(), dsn, models.DBOptions{MaxOpenConns: 8, Timeout: timeout})
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

// faultWriter is a writer on db whose group commits may take timeout.
func faultWriter(t *testing.T, db *gorm.DB, timeout time.Duration) *models.Writer {
	w := models.NewWriter(db, models.NewCatalog(db, time.Minute), models.WriterOptions{CommitTimeout: timeout})
	t.Cleanup(w.Close)
	return w
}

// collect waits for n answers on ch; if they do not all come within
// hangGuard, it lets the store recover and fails the test.
func collect[T any](t *testing.T, ch <-chan T, n int, recover func()) []T {
	t.Helper()
	out := make([]T, 0, n)
	guard := time.After(hangGuard)
	for len(out) < n {
		select {
		case v := <-ch:
			out = append(out, v)
		case <-guard:
			recover()
			t.Fatalf("%d of %d calls still waiting on the faulty store after %s", n-len(out), n, hangGuard)
		}
	}
	return out
}

type faultAnswer struct {
	what string
	err  error
}

// triggerAll sends one trigger per message id, concurrently, and answers on
// the returned channel.
func triggerAll(e *env, w *models.Writer, ids []string) <-chan faultAnswer {
	ch := make(chan faultAnswer, len(ids))
	for _, id := range ids {
		go func() {
			r := w.Trigger(e.ctx, []models.TriggerInput{{AppPublicID: e.app.PublicID, DeviceID: "fault-dev", Code: "view", MessageID: ptr(id)}})[0]
			if r.Err == nil && !r.Accepted {
				r.Err = fmt.Errorf("neither accepted nor refused: %+v", r)
			}
			ch <- faultAnswer{"trigger " + id, r.Err}
		}()
	}
	return ch
}

// ack triggers id until it is accepted, as a client does: on a loaded
// machine a healthy store may still miss a short deadline now and then.
func ack(e *env, w *models.Writer, id string) {
	e.t.Helper()
	for attempt := 1; ; attempt++ {
		r := w.Trigger(e.ctx, []models.TriggerInput{{AppPublicID: e.app.PublicID, DeviceID: "fault-dev", Code: "view", MessageID: ptr(id)}})[0]
		if r.Err == nil && r.Accepted {
			return
		}
		if code, _ := models.Code(r.Err); code != models.CodeUnavailable || attempt == 10 {
			e.t.Fatalf("trigger %s with the store up, attempt %d: %+v", id, attempt, r)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// wantStoredOnce checks that each message id is stored exactly once,
// retrying through w those that were not acknowledged before.
func wantStoredOnce(e *env, w *models.Writer, ids []string) {
	e.t.Helper()
	for _, id := range ids {
		ack(e, w, id)
		if n := e.countEvents("message_id = ?", id); n != 1 {
			e.t.Fatalf("%s stored %d times, want once", id, n)
		}
	}
}

func messageIDs(prefix string, n int) []string {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("%s-%d", prefix, i)
	}
	return ids
}

// TestStoreStopped stops the database under a writer and a reader: both are
// answered UNAVAILABLE, and once it is back, retries store every trigger
// exactly once, the acknowledged ones included.
func TestStoreStopped(t *testing.T) {
	proxy, dsn := modelstest.ProxiedMySQL(t)
	db := openVia(t, dsn, 2*time.Second)
	e := newEnv(t, db)
	w := faultWriter(t, db, 2*time.Second)
	acked := messageIDs("stopped-acked", 3)
	for _, id := range acked {
		ack(e, w, id)
	}

	proxy.Stop()
	refused := messageIDs("stopped-refused", 5)
	answers := triggerAll(e, w, refused)
	reads := make(chan faultAnswer, 1)
	go func() {
		_, err := models.Apps(e.ctx, db, e.owner)
		reads <- faultAnswer{"Apps", err}
	}()
	got := append(collect(t, answers, len(refused), proxy.Start), collect(t, reads, 1, proxy.Start)...)
	for _, a := range got {
		wantCode(t, a.err, models.CodeUnavailable)
	}

	proxy.Start()
	wantStoredOnce(e, w, append(acked, refused...))
}

// TestStoreFrozen freezes the database (connections open, nothing answers)
// under a writer and a reader: each call is answered UNAVAILABLE when its
// deadline passes instead of waiting for the store, although neither the
// caller's context nor anything else bounds it.
func TestStoreFrozen(t *testing.T) {
	proxy, dsn := modelstest.ProxiedMySQL(t)
	db := openVia(t, dsn, 2*time.Second)
	e := newEnv(t, db)
	w := faultWriter(t, db, 2*time.Second)
	acked := messageIDs("frozen-acked", 3)
	for _, id := range acked {
		ack(e, w, id)
	}

	proxy.Freeze()
	refused := messageIDs("frozen-refused", 5)
	answers := triggerAll(e, w, refused)
	reads := make(chan faultAnswer, 2)
	go func() {
		_, err := models.Apps(context.Background(), db, e.owner)
		reads <- faultAnswer{"Apps", err}
	}()
	go func() {
		var n int64
		err := db.Model(&models.Event{}).Where("app_id = ?", e.app.ID).Count(&n).Error
		reads <- faultAnswer{"count", err}
	}()
	got := append(collect(t, answers, len(refused), proxy.Thaw), collect(t, reads, 2, proxy.Thaw)...)
	for _, a := range got {
		if code, _ := models.Code(a.err); code != models.CodeUnavailable {
			proxy.Thaw()
			t.Fatalf("%s on a frozen store: %s (%v), want UNAVAILABLE", a.what, code, a.err)
		}
	}

	proxy.Thaw()
	wantStoredOnce(e, w, append(acked, refused...))
}

// TestWriterAbort aborts a writer whose group commit is stuck on a frozen
// store with no deadline in sight: the waiting trigger is answered at once,
// UNAVAILABLE, and later triggers are refused the same way. Nothing it
// answered so was acknowledged; a retry stores it exactly once.
func TestWriterAbort(t *testing.T) {
	proxy, dsn := modelstest.ProxiedMySQL(t)
	db := openVia(t, dsn, time.Hour)
	e := newEnv(t, db)
	w := models.NewWriter(db, models.NewCatalog(db, time.Minute), models.WriterOptions{CommitTimeout: time.Hour})
	acked := messageIDs("abort-acked", 2)
	for _, id := range acked {
		ack(e, w, id)
	}

	proxy.Freeze()
	stuck := messageIDs("abort-stuck", 3)
	answers := triggerAll(e, w, stuck)
	proxy.WaitHeld(1, hangGuard) // the group commit has reached the store
	w.Abort()
	for _, a := range collect(t, answers, len(stuck), proxy.Thaw) {
		wantCode(t, a.err, models.CodeUnavailable)
		if !strings.Contains(a.err.Error(), "shutting down") {
			t.Fatalf("%s: %v, want the shutdown named", a.what, a.err)
		}
	}
	late := w.Trigger(e.ctx, []models.TriggerInput{{AppPublicID: e.app.PublicID, DeviceID: "fault-dev", Code: "view", MessageID: ptr("abort-late")}})[0]
	wantCode(t, late.Err, models.CodeUnavailable)

	proxy.Thaw()
	w.Close() // returns once the aborted commit has ended
	wantStoredOnce(e, faultWriter(t, db, time.Minute), append(acked, append(stuck, "abort-late")...))
}

// TestEveryStatementHasADeadline watches the context each statement runs
// under: one whose caller brought no deadline gets the store's timeout, one
// with a deadline keeps it, migrations' contexts get none, and a query
// chain reused for a second statement starts from the caller's context
// again (not from the first statement's, which has ended).
func TestEveryStatementHasADeadline(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, shared *gorm.DB) {
		db := reopen(t, shared)
		var seen []time.Duration // time left at each statement; -1: no deadline
		watch := func(tx *gorm.DB) {
			left := time.Duration(-1)
			if d, ok := tx.Statement.Context.Deadline(); ok {
				left = time.Until(d)
			}
			seen = append(seen, left)
		}
		cb := db.Callback()
		for _, err := range []error{
			cb.Query().Before("gorm:query").Register("test:watch", watch),
			cb.Row().Before("gorm:row").Register("test:watch", watch),
			cb.Raw().Before("gorm:raw").Register("test:watch", watch),
			cb.Create().Before("gorm:create").Register("test:watch", watch),
		} {
			if err != nil {
				t.Fatal(err)
			}
		}
		expect := func(what string, lo, hi time.Duration, run func() error) {
			t.Helper()
			seen = nil
			if err := run(); err != nil {
				t.Fatalf("%s: %v", what, err)
			}
			if len(seen) == 0 {
				t.Fatalf("%s: no statement seen", what)
			}
			for _, left := range seen {
				if left < lo || left > hi {
					t.Fatalf("%s: a statement ran with %v left, want between %v and %v", what, left, lo, hi)
				}
			}
		}
		bg := context.Background()
		var apps []*models.App
		var n int64
		expect("find", time.Millisecond, models.DefaultDBTimeout, func() error {
			return db.WithContext(bg).Limit(1).Find(&apps).Error
		})
		expect("raw scan", time.Millisecond, models.DefaultDBTimeout, func() error {
			return db.WithContext(bg).Raw("SELECT COUNT(*) FROM apps").Scan(&n).Error
		})
		expect("exec", time.Millisecond, models.DefaultDBTimeout, func() error {
			return db.WithContext(bg).Exec("UPDATE apps SET name = name WHERE id = 0").Error
		})
		expect("count then find on one chain", time.Millisecond, models.DefaultDBTimeout, func() error {
			q := db.WithContext(bg).Model(&models.App{}).Limit(1)
			if err := q.Count(&n).Error; err != nil {
				return err
			}
			return q.Find(&apps).Error
		})
		long, cancel := context.WithTimeout(bg, time.Hour)
		defer cancel()
		expect("caller's deadline", models.DefaultDBTimeout+time.Minute, time.Hour, func() error {
			return db.WithContext(long).Limit(1).Find(&apps).Error
		})
		expect("without deadline", -1, -1, func() error {
			return db.WithContext(models.WithoutDeadline(bg)).Limit(1).Find(&apps).Error
		})
	})
}

// TestStoreFaultCodes: the driver errors that mean an unreachable, stalled
// or locked store are UNAVAILABLE, however wrapped; other errors are not.
func TestStoreFaultCodes(t *testing.T) {
	wrap := func(err error) error { return fmt.Errorf("models.Something: %w", err) }
	for _, tc := range []struct {
		err  error
		want string
	}{
		{wrap(context.DeadlineExceeded), models.CodeUnavailable},
		{wrap(&net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}), models.CodeUnavailable},
		{wrap(gomysql.ErrInvalidConn), models.CodeUnavailable},
		{wrap(driver.ErrBadConn), models.CodeUnavailable},
		{wrap(&gomysql.MySQLError{Number: 1053, Message: "Server shutdown in progress"}), models.CodeUnavailable},
		{wrap(&gomysql.MySQLError{Number: 1205, Message: "Lock wait timeout exceeded"}), models.CodeUnavailable},
		{wrap(&gomysql.MySQLError{Number: 1226, Message: "User 'crumbs' has exceeded the 'max_user_connections' resource"}), models.CodeUnavailable},
		{wrap(&gomysql.MySQLError{Number: 1203, Message: "User crumbs already has more than 'max_user_connections' active connections"}), models.CodeUnavailable},
		{wrap(&gomysql.MySQLError{Number: 1290, Message: "The MariaDB server is running with the --read-only option"}), models.CodeUnavailable},
		{wrap(sqlite3.BUSY), models.CodeUnavailable},
		{wrap(sqlite3.INTERRUPT), models.CodeUnavailable}, // what an ended context gives, bare
		{wrap(models.ErrShuttingDown), models.CodeUnavailable},
		{wrap(&gomysql.MySQLError{Number: 1146, Message: "Table doesn't exist"}), models.CodeInternal},
		{wrap(sqlite3.CONSTRAINT), models.CodeInternal},
		{errors.New("something else"), models.CodeInternal},
	} {
		if got, _ := models.Code(tc.err); got != tc.want {
			t.Errorf("Code(%v) = %s, want %s", tc.err, got, tc.want)
		}
	}
}

// TestConnectionLimitIsUnavailable runs Crumbs as a database user that may
// hold one connection (MAX_USER_CONNECTIONS 1), as a hosted database's plan
// or a crowded server does: a call that needs a second connection is
// refused by MariaDB (1226) and answered UNAVAILABLE, not
// INTERNAL_SERVER_ERROR, and succeeds once the connection is free.
func TestConnectionLimitIsUnavailable(t *testing.T) {
	dsn := modelstest.MySQLDSN(t)
	cfg, err := gomysql.ParseDSN(dsn)
	if err != nil {
		t.Fatal(err)
	}
	admin := modelstest.MySQL(t)
	user := fmt.Sprintf("crumbs_limit_%d", time.Now().UnixNano()%1e9)
	for _, q := range []string{
		"CREATE USER '" + user + "'@'%' WITH MAX_USER_CONNECTIONS 1",
		"GRANT ALL ON `" + cfg.DBName + "`.* TO '" + user + "'@'%'",
	} {
		if err := admin.Exec(q).Error; err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { admin.Exec("DROP USER '" + user + "'@'%'") })
	cfg.User, cfg.Passwd = user, ""
	db := openVia(t, cfg.FormatDSN(), 5*time.Second)
	e := newEnv(t, modelstest.MySQL(t))

	sqlDB, _ := db.DB()
	held, err := sqlDB.Conn(e.ctx) // the one connection the user may have
	if err != nil {
		t.Fatal(err)
	}
	_, err = models.Apps(e.ctx, db, e.owner)
	wantCode(t, err, models.CodeUnavailable)

	held.Close()
	apps, err := models.Apps(e.ctx, db, e.owner)
	if err != nil || len(apps) != 1 {
		t.Fatalf("with the connection free: %d apps, %v; want the owner's one", len(apps), err)
	}
}

// signInThroughOutage signs in and refreshes a token 30 times from one
// client while fail makes the store fail (each answered UNAVAILABLE), then
// once it is back: both work, not RATE_LIMITED. An attempt the store failed
// judged no password or token, so it is not a failure to throttle; were it
// one, a dashboard refreshing through an outage would lock its office's IP
// out for up to 15 minutes after the store came back.
func signInThroughOutage(t *testing.T, db *gorm.DB, fail func() context.Context, mend func()) {
	t.Helper()
	ctx := context.Background()
	tokens, err := models.NewTokens([][]byte{[]byte("a-test-signing-secret-of-32-bytes!!")}, "crumbs", "crumbs-dashboard", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	const ip, password = "198.51.100.9", "correct horse battery"
	email := fmt.Sprintf("outage-%d@example.com", time.Now().UnixNano())
	user, err := models.CreateUser(ctx, db, email, "", password)
	if err != nil {
		t.Fatal(err)
	}
	session, err := tokens.StartSession(ctx, db, user)
	if err != nil {
		t.Fatal(err)
	}

	failing := fail()
	for i := range 30 {
		_, err := tokens.Login(failing, db, ip, email, password)
		if code, _ := models.Code(err); code != models.CodeUnavailable {
			mend()
			t.Fatalf("login %d with the store failing: %s (%v), want UNAVAILABLE", i+1, code, err)
		}
		_, err = tokens.Refresh(failing, db, ip, session.RefreshToken)
		if code, _ := models.Code(err); code != models.CodeUnavailable {
			mend()
			t.Fatalf("refresh %d with the store failing: %s (%v), want UNAVAILABLE", i+1, code, err)
		}
	}

	mend()
	retry := func(what string, call func() error) {
		t.Helper()
		for attempt := 1; ; attempt++ {
			err := call()
			if err == nil {
				return
			}
			if code, _ := models.Code(err); code != models.CodeUnavailable || attempt == 10 {
				t.Fatalf("%s with the store back, attempt %d: %v", what, attempt, err)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	retry("login", func() error { _, err := tokens.Login(ctx, db, ip, email, password); return err })
	retry("refresh", func() error { _, err := tokens.Refresh(ctx, db, ip, session.RefreshToken); return err })
}

// TestSignInThroughAnOutage: MariaDB stopped under sign-ins, and on both
// stores calls whose deadline ran out (as a frozen or locked store's do).
func TestSignInThroughAnOutage(t *testing.T) {
	t.Run("stopped", func(t *testing.T) {
		proxy, dsn := modelstest.ProxiedMySQL(t)
		db := openVia(t, dsn, 2*time.Second)
		signInThroughOutage(t, db, func() context.Context { proxy.Stop(); return context.Background() }, proxy.Start)
	})
	modelstest.Each(t, func(t *testing.T, db *gorm.DB) {
		signInThroughOutage(t, db, func() context.Context {
			ctx, cancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
			t.Cleanup(cancel)
			return ctx
		}, func() {})
	})
}

// TestFrozenStoreLookupsEndAtTheTimeout freezes the store while a trigger,
// a keyed trigger and a secret key check must look their app up (the
// catalog's entries expire at once here): each is answered UNAVAILABLE
// about one timeout later. The lookups ran under a fixed 10 s bound, in
// which database/sql tried each read on three connections in turn, each
// cut by the driver's read timeout: with CRUMBS_DB_TIMEOUT=2s a trigger
// was answered after 6 s (the store-fault audit).
func TestFrozenStoreLookupsEndAtTheTimeout(t *testing.T) {
	const timeout = time.Second
	proxy, dsn := modelstest.ProxiedMySQL(t)
	db := openVia(t, dsn, timeout)
	e := newEnv(t, db)
	w := models.NewWriter(db, models.NewCatalog(db, time.Nanosecond), models.WriterOptions{CommitTimeout: timeout})
	t.Cleanup(w.Close)
	ack(e, w, "lookup-acked")

	proxy.Freeze()
	defer proxy.Thaw()
	for _, c := range []struct {
		what string
		call func() error
	}{
		{"trigger", func() error {
			return w.Trigger(e.ctx, []models.TriggerInput{{AppPublicID: e.app.PublicID, DeviceID: "fault-dev", Code: "view"}})[0].Err
		}},
		{"keyed trigger", func() error {
			return w.Trigger(e.ctx, []models.TriggerInput{{AppPublicID: e.app.PublicID, DeviceID: "fault-dev", Code: "view", Secret: e.secret}})[0].Err
		}},
		{"secret key check", func() error {
			_, err := w.AppForSecret(context.Background(), e.secret, "192.0.2.1")
			return err
		}},
	} {
		began := time.Now()
		err := c.call()
		took := time.Since(began)
		wantCode(t, err, models.CodeUnavailable)
		if took > 2500*time.Millisecond {
			t.Errorf("%s on a frozen store answered after %s, want about the %s timeout", c.what, took, timeout)
		}
	}
}
