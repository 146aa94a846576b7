package models

import (
	"context"
	"log/slog"
	"math"
	"time"

	"gorm.io/gorm"
)

// Retention. An app with retentionDays set keeps raw events for that many
// days. The lifecycle job (Lifecycle, run by every replica; one at a time
// holds its lease) deletes, per app, the events that occurred before the
// cutoff (now minus the retention, truncated to the UTC hour so whole
// hours of the rollups lose their raw events at once), in transactions of
// at most eraseChunk events. The rollups' counts and sketches and the
// definitions' trigger counts are aggregates without personal data and
// are kept, so insights of expired days still show their numbers. Events
// that a log consumer has not derived yet (ids past the lowest watermark)
// are left for a later run. The app keeps the latest cutoff a run has
// applied (apps.expired_before, set in the transactions that delete): an
// hour before it may have lost raw events, so an erasure that later
// touches it (a backdated event, one left for a later run) cannot rebuild
// its device sketches from the events left and keeps them
// (rollup_erase.go). It never moves back, whatever the retention becomes.
// Devices last seen before the cutoff with no events left, and leads
// updated before it with no devices left, go too.
// Each run that removes something writes a receipt (kind retention, actor
// system). The job also deletes tombstones older than TombstoneLifetime.

// LifecycleOptions tune the lifecycle job.
type LifecycleOptions struct {
	// Interval between runs (default 1h).
	Interval time.Duration
	// LeaseTTL is how long a replica holds the job without renewing it
	// (default 5m); it renews after every chunk.
	LeaseTTL time.Duration
	// Owner names this replica in the lease (default a random id).
	Owner string
	Log   *slog.Logger
}

// Lifecycle runs retention and tombstone expiry.
type Lifecycle struct {
	db   *gorm.DB
	opts LifecycleOptions
}

const lifecycleLease = "lifecycle"

// NewLifecycle returns the job over db.
func NewLifecycle(db *gorm.DB, opts LifecycleOptions) *Lifecycle {
	if opts.Interval <= 0 {
		opts.Interval = time.Hour
	}
	if opts.LeaseTTL <= 0 {
		opts.LeaseTTL = 5 * time.Minute
	}
	if opts.Owner == "" {
		opts.Owner = randomToken(12)
	}
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	return &Lifecycle{db: db, opts: opts}
}

// Run runs the job every interval until ctx ends.
func (l *Lifecycle) Run(ctx context.Context) {
	t := time.NewTicker(l.opts.Interval)
	defer t.Stop()
	for {
		if _, err := l.RunOnce(ctx, time.Now()); err != nil && ctx.Err() == nil {
			l.opts.Log.Warn("lifecycle job failed; retrying at the next interval", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// LifecycleRun says what one run did.
type LifecycleRun struct {
	// Ran is false when another replica holds the lease.
	Ran        bool
	Apps       int
	Events     int64
	Devices    int64
	Leads      int64
	Tombstones int64 // expired tombstones deleted
	ReceiptIDs []uint64
}

// RunOnce runs the job once as of now (tests move the clock forward), if
// this replica gets the lease.
func (l *Lifecycle) RunOnce(ctx context.Context, now time.Time) (*LifecycleRun, error) {
	run := &LifecycleRun{}
	// Renewals move the lease on by the time the run has taken, so a long
	// run keeps it while it makes progress.
	started := time.Now()
	clock := func() time.Time { return now.Add(time.Since(started)) }
	ok, err := l.lease(ctx, now)
	if err != nil || !ok {
		return run, err
	}
	defer func() { l.release(clock()) }()
	run.Ran = true
	now = StoreTime(now)
	var apps []App
	if err := l.db.WithContext(ctx).Where("retention_days IS NOT NULL AND retention_days > 0 AND deleted_at IS NULL").Order("id").Find(&apps).Error; err != nil {
		return run, err
	}
	for i := range apps {
		res, err := l.retainApp(ctx, &apps[i], now, clock)
		if err != nil {
			return run, err
		}
		run.Apps++
		run.Events += res.DeletedEvents
		run.Devices += res.DeletedDevices
		run.Leads += res.DeletedLeads
		if res.ReceiptID != 0 {
			run.ReceiptIDs = append(run.ReceiptIDs, res.ReceiptID)
		}
	}
	n, err := pruneTombstones(ctx, l.db, now)
	run.Tombstones = n
	if err != nil {
		return run, err
	}
	return run, pruneEraseJobs(ctx, l.db, now)
}

// RetentionCutoff is the time before which an app with this retention
// keeps no raw events, as of now.
func RetentionCutoff(days int, now time.Time) time.Time {
	return now.UTC().AddDate(0, 0, -days).Truncate(time.Hour)
}

func (l *Lifecycle) retainApp(ctx context.Context, app *App, now time.Time, clock func() time.Time) (*EraseResult, error) {
	cutoff := RetentionCutoff(*app.RetentionDays, now)
	res := &EraseResult{}
	for {
		var n int64
		part := &EraseResult{}
		err := withRetry(ctx, func() error {
			*part = EraseResult{}
			return l.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
				derived, err := lowestWatermark(tx, clock())
				if err != nil {
					return err
				}
				cond := eraseCond{where: "app_id = ? AND occurred_at < ? AND id <= ?", args: []any{app.ID, cutoff, derived}}
				if n, err = eraseEvents(tx, app.ID, cond, eraseChunk, false, part); err != nil {
					return err
				}
				return markExpired(tx, app.ID, cutoff)
			})
		})
		if err != nil {
			return nil, err
		}
		res.DeletedEvents += part.DeletedEvents
		res.Tombstones += part.Tombstones
		if ok, err := l.lease(ctx, clock()); err != nil || !ok {
			if err == nil {
				err = errLeaseLost
			}
			return nil, err
		}
		if n < eraseChunk {
			break
		}
	}
	if err := removeIdle(ctx, l.db, app.ID, cutoff, 0, res); err != nil {
		return nil, err
	}
	if res.DeletedEvents+res.DeletedDevices+res.DeletedLeads == 0 {
		return res, nil
	}
	err := withRetry(ctx, func() error {
		return l.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
			if err := runEraseHooks(tx, Erasure{AppID: app.ID, Kind: AuditRetention, Before: &cutoff}); err != nil {
				return err
			}
			r := newAuditRecord(nil, app.ID, AuditRetention, cutoff.Format(time.RFC3339))
			r.CreatedAt = now
			return writeReceipt(tx, r, res)
		})
	})
	return res, err
}

// markExpired records, with the deletion of the app's events that
// occurred before cutoff, that hours before it may have lost raw events
// (those it leaves now, not derived yet, go at a later run); a run with an
// earlier cutoff (a longer retention) leaves the mark where it is. The
// app's row is already locked (eraseEvents).
func markExpired(tx *gorm.DB, appID uint64, cutoff time.Time) error {
	return tx.Exec("UPDATE apps SET expired_before = ? WHERE id = ? AND (expired_before IS NULL OR expired_before < ?)",
		cutoff, appID, cutoff).Error
}

// expiredBefore locks the app's row until tx ends and returns the latest
// cutoff retention has applied (zero if it never ran). Every transaction
// that deletes events takes it first (eraseEvents), so erasures and
// retention runs of one app take turns instead of interleaving their
// locks, and what an erasure reads stays true until it commits: each run
// that deleted raw events committed its mark with them, and no run can
// delete more meanwhile.
func expiredBefore(tx *gorm.DB, appID uint64) (time.Time, error) {
	var at dbTime
	err := forUpdate(tx.Table("apps")).Select("expired_before").Where("id = ?", appID).Row().Scan(&at)
	return at.Time, err
}

// lowestWatermark is the position of the live consumer furthest behind:
// events past it are not derived by every consumer yet. Live are the
// rollups and every consumer a replica held within the last hour (a
// replica holds each consumer it runs, renewing its lease every few
// seconds), so a consumer removed from the code, whose row stays, does not
// hold retention back forever. Watermarks only grow, so a plain read is
// safe; deleting events at or below it changes nothing a consumer will
// read again.
func lowestWatermark(tx *gorm.DB, now time.Time) (uint64, error) {
	var low *uint64
	err := tx.Raw("SELECT MIN(position) FROM event_log_consumers WHERE name = ? OR lease_until > ?",
		rollupsConsumerName, now.Add(-time.Hour).UnixMilli()).Scan(&low).Error
	if err != nil {
		return 0, err
	}
	if low == nil {
		return math.MaxInt64, nil
	}
	return *low, nil
}

var errLeaseLost = newError(ErrConflict, "another replica took over the lifecycle job")

// lease takes or renews the job's lease: one replica at a time runs it.
func (l *Lifecycle) lease(ctx context.Context, now time.Time) (bool, error) {
	return takeJobLease(ctx, l.db, lifecycleLease, l.opts.Owner, now, l.opts.LeaseTTL)
}

// release ends the lease early so another replica may run the next time.
func (l *Lifecycle) release(now time.Time) {
	releaseJobLease(l.db, lifecycleLease, l.opts.Owner, now)
}
