package models

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"gorm.io/gorm"
)

// The AppDeleter removes the rows of apps marked deleted (appdelete.go).
// Every replica runs one; one at a time works on an app, holding the lease
// delete-app:<id> in job_leases, renewed after every chunk. It empties the
// app's tables (appTables) in chunks of at most Chunk rows, each chunk one
// statement or one short transaction, so a kill -9 loses at most a chunk
// in flight and the next run (this replica restarted, or another once the
// lease lapsed) goes on from what is left: the mark on the app row is the
// job's only state. Once Settle has passed since the deletion (the
// catalog's TTL plus a margin, after which no replica holds the app in a
// cache and no write it started is in flight), a last pass empties what
// arrived meanwhile, and the app row goes in a transaction that finds
// every table empty of it. A run that fails (a store fault) is logged and
// tried again at the next interval.

// appTable is a table holding an app's rows, by its app_id column. A table
// whose rows other tables hang on (deliveries' attempts, rules' actions,
// erasures' leases) goes by id, with those rows in the same transaction.
type appTable struct {
	name string
	// children deletes the rows that hang on the rows with these ids.
	children func(tx *gorm.DB, ids []uint64) error
}

// appTables lists every table with rows of an app, in the order the job
// empties them: what refers to events first, then the events, then what
// they refer to. TestDeleteAppLeavesNoRow checks it against the schema.
var appTables = []appTable{
	{name: "automation_deliveries", children: func(tx *gorm.DB, ids []uint64) error {
		return tx.Where("delivery_id IN ?", ids).Delete(&DeliveryAttempt{}).Error
	}},
	{name: "automation_rules", children: func(tx *gorm.DB, ids []uint64) error {
		return tx.Where("rule_id IN ?", ids).Delete(&AutomationAction{}).Error
	}},
	{name: "erase_jobs", children: func(tx *gorm.DB, ids []uint64) error {
		names := make([]string, len(ids))
		for i, id := range ids {
			names[i] = (&EraseJob{ID: id}).leaseName()
		}
		return tx.Exec("DELETE FROM job_leases WHERE name IN ?", names).Error
	}},
	{name: "events"},
	{name: "erased_messages"},
	{name: "device_moves"},
	{name: "devices"},
	{name: "leads"},
	{name: "rollups"},
	{name: "unknown_codes"},
	{name: "refused_origins"},
	{name: "goals"},
	{name: "event_matchers"},
	{name: "event_definitions"},
	{name: "ingest_tokens"},
	{name: "invitations"},
	{name: "memberships"},
	{name: "audit_records"},
}

// AppDeleterOptions tune an AppDeleter.
type AppDeleterOptions struct {
	// Interval between looks for apps to delete (default 30s); DeleteApp's
	// caller wakes it at once (Kick).
	Interval time.Duration
	// LeaseTTL is how long a replica holds an app's deletion without
	// renewing it (default 1m): after a crash, it resumes this long after
	// its last chunk.
	LeaseTTL time.Duration
	// Settle is how long after the deletion the app row is kept, so that
	// what a replica's cache still let in is removed too (default the
	// catalog's TTL, CRUMBS_CACHE_TTL, plus a minute or twice the store's
	// deadline: AppDeleteSettle).
	Settle time.Duration
	// Chunk is the most rows one statement deletes (default 1000).
	Chunk int
	// Owner names this replica in the leases (default a random id).
	Owner string
	Log   *slog.Logger
}

// AppDeleteSettle is how long after its deletion an app's row is kept,
// given the catalog's TTL and the store's deadline (CRUMBS_DB_TIMEOUT): a
// replica's cache may accept the app's ingestion that long, and a write it
// started may commit later, a group commit up to the deadline after it
// was queued, a dashboard mutation after its access check and its
// transaction have each taken up to the deadline. A minute covers that at
// the default deadline of 10s; twice a longer deadline is waited instead,
// else the app row went while such a write was still to insert its rows.
func AppDeleteSettle(cacheTTL, dbTimeout time.Duration) time.Duration {
	return cacheTTL + max(time.Minute, 2*dbTimeout)
}

// AppDeleter removes the data of deleted apps in the background.
type AppDeleter struct {
	db     *gorm.DB
	opts   AppDeleterOptions
	kick   chan struct{}
	cancel context.CancelFunc
	done   chan struct{}
	once   sync.Once
}

// NewAppDeleter returns the job over db. Run runs it; tests call RunOnce.
func NewAppDeleter(db *gorm.DB, opts AppDeleterOptions) *AppDeleter {
	if opts.Interval <= 0 {
		opts.Interval = 30 * time.Second
	}
	if opts.LeaseTTL <= 0 {
		opts.LeaseTTL = time.Minute
	}
	if opts.Settle <= 0 {
		opts.Settle = AppDeleteSettle(0, 0)
	}
	if opts.Chunk <= 0 {
		opts.Chunk = 1000
	}
	if opts.Owner == "" {
		opts.Owner = randomToken(12)
	}
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	return &AppDeleter{db: db, opts: opts, kick: make(chan struct{}, 1), done: make(chan struct{})}
}

// Start runs the job in a goroutine until Close.
func (d *AppDeleter) Start() {
	ctx, cancel := context.WithCancel(context.Background())
	d.cancel = cancel
	go func() {
		defer close(d.done)
		d.Run(ctx)
	}()
}

// Close stops a started job between two chunks and waits for it; its
// leases are released, so another replica takes over at once.
func (d *AppDeleter) Close() {
	d.once.Do(func() {
		if d.cancel != nil {
			d.cancel()
			<-d.done
		}
	})
}

// Kick makes the job look for deleted apps now.
func (d *AppDeleter) Kick() {
	select {
	case d.kick <- struct{}{}:
	default:
	}
}

// Run runs the job every interval, and when kicked, until ctx ends.
func (d *AppDeleter) Run(ctx context.Context) {
	t := time.NewTicker(d.opts.Interval)
	defer t.Stop()
	for {
		if _, err := d.RunOnce(ctx, time.Now()); err != nil && ctx.Err() == nil {
			d.opts.Log.Warn("deleting an app's data failed part way; it is resumed later", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-d.kick:
		}
	}
}

// AppDeleteRun says what one run did.
type AppDeleteRun struct {
	// Rows is the number of rows deleted, app rows included.
	Rows int64
	// Gone holds the ids of the apps whose row went.
	Gone []uint64
	// Pending holds the ids of the apps left for a later run: held by
	// another replica, or within Settle.
	Pending []uint64
}

// RunOnce works on every app marked deleted, as of now (tests move the
// clock forward). An app another replica holds is left to it.
func (d *AppDeleter) RunOnce(ctx context.Context, now time.Time) (*AppDeleteRun, error) {
	run := &AppDeleteRun{}
	var apps []App
	if err := d.db.WithContext(ctx).Select("id", "deleted_at").Where("deleted_at IS NOT NULL").Order("id").Find(&apps).Error; err != nil {
		return run, fmt.Errorf("models.AppDeleter: %w", err)
	}
	var errs []error
	for _, app := range apps {
		gone, err := d.deleteApp(ctx, app.ID, *app.DeletedAt, now, run)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("models.AppDeleter: app %d: %w", app.ID, err))
			run.Pending = append(run.Pending, app.ID)
		case gone:
			run.Gone = append(run.Gone, app.ID)
			d.opts.Log.Info("deleted app removed", "app", app.ID, "deleted_at", app.DeletedAt)
		default:
			run.Pending = append(run.Pending, app.ID)
		}
		if ctx.Err() != nil {
			break
		}
	}
	return run, errors.Join(errs...)
}

// errAppLeaseLost says another replica took an app's deletion over.
var errAppLeaseLost = newError(ErrConflict, "another replica took over the app's deletion")

// deleteApp empties the app's tables and, once Settle has passed since
// deletedAt, removes its row; it reports whether the row went. Renewals
// move the lease on by the time the run has taken.
func (d *AppDeleter) deleteApp(ctx context.Context, appID uint64, deletedAt, now time.Time, run *AppDeleteRun) (bool, error) {
	lease := "delete-app:" + strconv.FormatUint(appID, 10)
	started := time.Now()
	clock := func() time.Time { return now.Add(time.Since(started)) }
	ok, err := takeJobLease(ctx, d.db, lease, d.opts.Owner, clock(), d.opts.LeaseTTL)
	if err != nil || !ok {
		return false, err
	}
	renew := func() error {
		ok, err := takeJobLease(ctx, d.db, lease, d.opts.Owner, clock(), d.opts.LeaseTTL)
		if err == nil && !ok {
			err = errAppLeaseLost
		}
		return err
	}
	settled := !now.Before(deletedAt.Add(d.opts.Settle))
	// Twice at most: a row that arrives between the last pass and the
	// final transaction (none should, once settled) sends the job round
	// once more, and then to the next run.
	for range 2 {
		if err := d.emptyTables(ctx, appID, run, renew); err != nil {
			if !errors.Is(err, errAppLeaseLost) {
				releaseJobLease(d.db, lease, d.opts.Owner, clock())
			}
			return false, err
		}
		if !settled {
			releaseJobLease(d.db, lease, d.opts.Owner, clock())
			return false, nil
		}
		gone, err := d.removeApp(ctx, appID, lease)
		if err != nil {
			releaseJobLease(d.db, lease, d.opts.Owner, clock())
			return false, err
		}
		if gone {
			run.Rows++
			clearCatalogs(d.db)
			return true, nil
		}
	}
	releaseJobLease(d.db, lease, d.opts.Owner, clock())
	return false, nil
}

// emptyTables deletes the app's rows from every table, a chunk at a time,
// renewing the lease after each.
func (d *AppDeleter) emptyTables(ctx context.Context, appID uint64, run *AppDeleteRun, renew func() error) error {
	for _, t := range appTables {
		for {
			if err := ctx.Err(); err != nil {
				return err
			}
			var n int64
			err := withRetry(ctx, func() error {
				var err error
				n, err = d.deleteChunk(ctx, t, appID)
				return err
			})
			if err != nil {
				return fmt.Errorf("%s: %w", t.name, err)
			}
			run.Rows += n
			if err := renew(); err != nil {
				return err
			}
			if n < int64(d.opts.Chunk) {
				break
			}
		}
	}
	return nil
}

// deleteChunk deletes at most Chunk of the app's rows of t and says how
// many went. Each statement runs under the store's deadline.
func (d *AppDeleter) deleteChunk(ctx context.Context, t appTable, appID uint64) (int64, error) {
	db := d.db.WithContext(ctx)
	if t.children == nil {
		query := "DELETE FROM " + t.name + " WHERE app_id = ? LIMIT ?"
		if !isMySQL(db) {
			// SQLite has DELETE … LIMIT only when built for it.
			query = "DELETE FROM " + t.name + " WHERE rowid IN (SELECT rowid FROM " + t.name + " WHERE app_id = ? LIMIT ?)"
		}
		res := db.Exec(query, appID, d.opts.Chunk)
		return res.RowsAffected, res.Error
	}
	var n int64
	err := db.Transaction(func(tx *gorm.DB) error {
		var ids []uint64
		if err := tx.Table(t.name).Where("app_id = ?", appID).Order("id").Limit(d.opts.Chunk).Pluck("id", &ids).Error; err != nil || len(ids) == 0 {
			return err
		}
		if err := t.children(tx, ids); err != nil {
			return err
		}
		res := tx.Exec("DELETE FROM "+t.name+" WHERE id IN ?", ids)
		n = res.RowsAffected
		return res.Error
	})
	return n, err
}

// removeApp deletes the app's row, and its lease, if no table holds a row
// of it any more; it reports whether it did. The app's row is locked
// first.
func (d *AppDeleter) removeApp(ctx context.Context, appID uint64, lease string) (bool, error) {
	gone := false
	err := withRetry(ctx, func() error {
		gone = false
		if left, err := d.rowsLeft(ctx, appID); err != nil || left {
			return err
		}
		return d.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
			var ids []uint64
			if err := forUpdate(tx.Model(&App{})).Where("id = ? AND deleted_at IS NOT NULL", appID).Pluck("id", &ids).Error; err != nil || len(ids) == 0 {
				return err
			}
			for _, t := range appTables {
				var left []int
				if err := tx.Raw("SELECT 1 FROM "+t.name+" WHERE app_id = ? LIMIT 1", appID).Scan(&left).Error; err != nil || len(left) > 0 {
					return err
				}
			}
			if err := tx.Exec("DELETE FROM apps WHERE id = ?", appID).Error; err != nil {
				return err
			}
			gone = true
			return tx.Exec("DELETE FROM job_leases WHERE name = ?", lease).Error
		})
	})
	return gone, err
}

// rowsLeft reports whether a table still holds a row of the app that a
// write in flight inserted: on MySQL removeApp's reads see a snapshot, in
// which a row inserted before it and committed after (or not yet) is not
// there, and the app row went with the row left behind it. Locking reads
// see the latest rows and wait for those not committed yet. They run under
// READ COMMITTED, in a transaction of their own that writes nothing:
// under REPEATABLE READ each would also lock the gap around the app's
// (empty) range in its index, where the neighbouring apps' new rows go,
// and hold every group commit with an event of theirs until removeApp
// ended; and a transaction that writes under READ COMMITTED fails where
// the binary log is in STATEMENT format. SQLite has one connection, so
// nothing is in flight there.
func (d *AppDeleter) rowsLeft(ctx context.Context, appID uint64) (bool, error) {
	if !isMySQL(d.db) {
		return false, nil
	}
	left := false
	err := d.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		for _, t := range appTables {
			var rows []int
			if err := tx.Raw("SELECT 1 FROM "+t.name+" WHERE app_id = ? LIMIT 1 FOR UPDATE", appID).Scan(&rows).Error; err != nil {
				return err
			}
			if len(rows) > 0 {
				left = true
				return nil
			}
		}
		return nil
	}, &sql.TxOptions{Isolation: sql.LevelReadCommitted})
	return left, err
}
