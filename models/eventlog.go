package models

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"gorm.io/gorm"
)

// The events table is an append-only log: the writer acknowledges a trigger
// once its row is committed, and everything derivable from the rows (the
// insights rollups; later automations and retention) is derived afterwards
// by named consumers, each reading the events past its own watermark.
//
// Exactly once. A consumer's watermark (event_log_consumers.position) and
// what it derives from the events up to it are written in one transaction,
// fenced on the watermark it started from, so a flush that was overtaken,
// crashed or lost its lease changes nothing.
//
// Nothing committed late is skipped. Event ids begin with the millisecond
// they were made in, but a group commit may land after events with higher
// ids. So the log is sealed before it is read: sealing up to id H updates
// every row of event_log_slots and thereby waits for the group commits in
// flight (each holds one slot row, claimed in its own transaction with
// "sealed_id < my lowest id"); a group commit that claims its slot after
// the seal finds its ids sealed over and is retried with ids above the seal
// (see idFloor). Once a seal commits, every event with an id up to H is
// either visible or never will be. This needs no clock agreement between
// replicas and no settle window, so the derived data trails the events by
// the consumer's interval, not by a commit deadline.
//
// One consumer at a time. Each consumer name has a lease (owner and expiry
// in its row) that replicas renew while they hold it and take over when it
// expires; the fence above keeps a stale holder harmless. Only row locks
// and single-row conditional updates are used, which TiDB and Vitess have.

// LogConsumer derives data from the event log. Rollups are one
// (RollupsConsumer); automations and retention plug in the same way:
//
//   - pass it in WriterOptions.Consumers (server/run.go does, for every
//     replica), or Start it on Writer.EventLog(); server/run.go exports the
//     lag of every consumer the writer runs (crumbs_derived_lag_*);
//   - Derive must not act outside the database (a flush may be repeated
//     until it commits): side effects such as webhooks are recorded by its
//     writes, in a table of their own, and performed after the commit;
//     the automations consumer's first attempts are made before it, and
//     so made again, with the same webhook-ids, when a flush is repeated
//     (automation_first.go);
//   - whoever changes events or a consumer's derived rows behind its back
//     (erasure) does so in a transaction that first calls lockConsumer for
//     that consumer; retention deletes only events at or below every live
//     watermark and keeps derived rows, so it needs no lock (lifecycle.go);
//     erasures and retention call the erase hooks (RegisterEraseHook).
type LogConsumer struct {
	// Name keys the consumer's watermark and lease in event_log_consumers.
	// Keep it stable: a new name starts over.
	Name string
	// Columns are the event columns Derive needs, as a SELECT list;
	// empty means every column.
	Columns string
	// Batch caps the events of one flush (default 20,000).
	Batch int
	// StartAtEnd makes a consumer new to a database with events start after
	// the newest of them rather than at the first (an automation must not
	// fire for last year's events).
	StartAtEnd bool
	// Derive is given the next events in id order. It reads what it needs
	// outside any transaction and returns the writes that record what it
	// derived; they run in the transaction that moves the watermark past
	// these events, so each event is derived exactly once. Whatever it read
	// may change only under the consumer's row lock (as erasure does, see
	// lockConsumer), which the transaction's fence detects.
	Derive func(ctx context.Context, db *gorm.DB, events []*Event) (commit func(tx *gorm.DB) error, err error)
	// Settled, if set, is told after every flush whose Derive succeeded
	// whether that flush's transaction committed. It is for what a Derive
	// left under way outside the database (the automations' first attempts
	// still in flight at their budget): it goes on to be recorded against
	// the committed rows, or is dropped with them.
	Settled func(committed bool)
}

// EventLogOptions tune the consumers of an EventLog.
type EventLogOptions struct {
	// Interval is how often a consumer looks for new events (default 100ms).
	Interval time.Duration
	// LeaseTTL is how long a replica holds a consumer without renewing it
	// before another may take over (default 10s).
	LeaseTTL time.Duration
	// SealMargin keeps seals this far behind the clock (default 250ms), so
	// group commits of ids made just now rarely find them sealed over.
	SealMargin time.Duration
	// MinAge is how old the oldest event not yet derived must be before a
	// flush (default 500ms): a flush costs per rollup row it touches, so it
	// waits to take many events at once. Lag is about MinAge + Interval.
	MinAge time.Duration
	Log    *slog.Logger
}

// EventLog runs the consumers of one replica.
type EventLog struct {
	db     *gorm.DB
	owner  string
	opts   EventLogOptions
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu        sync.Mutex
	consumers []*consumerRun
	sealed    atomic.Uint64 // the highest seal this process made or saw
}

// eventLogSlots is how many group commits may be in flight at once across
// all replicas without sharing a slot row (sharing only serializes them).
const eventLogSlots = 32

// dbCallTimeout bounds each of the event log's own database calls.
const dbCallTimeout = 30 * time.Second

// NewEventLog returns a runner for consumers over db; add them with Start.
func NewEventLog(db *gorm.DB, opts EventLogOptions) *EventLog {
	if opts.Interval <= 0 {
		opts.Interval = 100 * time.Millisecond
	}
	if opts.LeaseTTL <= 0 {
		opts.LeaseTTL = 10 * time.Second
	}
	if opts.SealMargin <= 0 {
		opts.SealMargin = 250 * time.Millisecond
	}
	if opts.MinAge <= 0 {
		opts.MinAge = 500 * time.Millisecond
	}
	opts.MinAge = max(opts.MinAge, opts.SealMargin)
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	host, _ := os.Hostname()
	owner := fmt.Sprintf("%.30s:%d:%s", host, os.Getpid(), randomToken(6))
	ctx, cancel := context.WithCancel(context.Background())
	return &EventLog{db: db, owner: owner, opts: opts, ctx: ctx, cancel: cancel}
}

// Start registers c and runs it until Close. A consumer new to the database
// gets its row here, so that StartAtEnd means "after the newest event stored
// when Start was first called"; if the store does not answer within a few
// seconds, the consumer's loop registers it later.
func (l *EventLog) Start(c LogConsumer) {
	run := newConsumerRun(l, c)
	ctx, cancel := context.WithTimeout(l.ctx, 5*time.Second)
	run.mu.Lock()
	if err := run.register(ctx); err != nil {
		l.opts.Log.Warn("event log consumer: registering later", "consumer", c.Name, "err", err)
	}
	run.mu.Unlock()
	cancel()
	l.mu.Lock()
	l.consumers = append(l.consumers, run)
	l.mu.Unlock()
	l.wg.Go(func() { run.loop(l.ctx) })
}

// Drain derives every event committed before the call, for each consumer
// whose lease this replica holds or can take, then returns. Consumers held
// by another replica are left to it.
func (l *EventLog) Drain(ctx context.Context) error {
	l.mu.Lock()
	consumers := slicesClone(l.consumers)
	l.mu.Unlock()
	var errs []error
	for _, c := range consumers {
		errs = append(errs, c.drain(ctx, lastIDAt(time.Now())))
	}
	return errors.Join(errs...)
}

// Close stops the consumers and gives up their leases, so that another
// replica takes over at once.
func (l *EventLog) Close() {
	l.cancel()
	l.wg.Wait()
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, c := range l.consumers {
		c.release()
	}
}

// ConsumerStats describe one consumer as this replica sees it.
type ConsumerStats struct {
	Name string
	// Holding is true when this replica holds the consumer's lease; the
	// other fields are then current, else they are as of the last time it did.
	Holding bool
	// Position is the watermark: every event with an id up to it is derived.
	Position uint64
	// Lag is how long the oldest event not yet derived has waited (0 when
	// there is none).
	Lag time.Duration
	// Behind is how many events were past the watermark when last counted
	// (at most once a second, and at most maxBehindCount).
	Behind int64
	// Flushes and Events count the flushes and events derived by this replica.
	Flushes, Events uint64
	// LastFlushEvents and LastFlushDuration describe the latest flush.
	LastFlushEvents   int
	LastFlushDuration time.Duration
	// Errors counts failed steps (each is logged and retried).
	Errors uint64
}

// Stats reports each consumer's state.
func (l *EventLog) Stats() []ConsumerStats {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]ConsumerStats, len(l.consumers))
	for i, c := range l.consumers {
		c.statsMu.Lock()
		out[i] = c.stats
		c.statsMu.Unlock()
	}
	return out
}

// StatsOf reports the named consumer's state, if this replica runs it.
func (l *EventLog) StatsOf(name string) (ConsumerStats, bool) {
	for _, s := range l.Stats() {
		if s.Name == name {
			return s, true
		}
	}
	return ConsumerStats{}, false
}

func newConsumerRun(l *EventLog, c LogConsumer) *consumerRun {
	if c.Batch <= 0 {
		c.Batch = 20_000
	}
	if c.Columns == "" {
		c.Columns = "*"
	}
	return &consumerRun{l: l, spec: c, stats: ConsumerStats{Name: c.Name}}
}

// testHookBeforeDerivedCommit, when set by a test, runs inside a flush's
// transaction after the fence and before the derived writes.
var testHookBeforeDerivedCommit atomic.Pointer[func(tx *gorm.DB, consumer string) error]

// seal makes every event with an id up to want final (see the package
// notes above) and returns the seal, which may be higher than want.
func (l *EventLog) seal(ctx context.Context, want uint64) (uint64, error) {
	if err := sealEventLog(ctx, l.db, want); err != nil {
		return 0, err
	}
	l.noteSealed(want)
	return want, nil
}

// sealEventLog makes every event with an id up to want final: once it
// returns, each is visible or never will be. It waits for the group commits
// holding a slot and makes later ones with ids up to want retry above it.
func sealEventLog(ctx context.Context, db *gorm.DB, want uint64) error {
	err := db.WithContext(ctx).Connection(func(conn *gorm.DB) error {
		if isMySQL(conn) {
			// Waiting for a stuck group commit holds the slots sealed so far,
			// and so the group commits that need them: give up soon instead.
			if err := conn.Exec("SET SESSION innodb_lock_wait_timeout = 2").Error; err != nil {
				return err
			}
			defer conn.WithContext(context.Background()).Exec("SET SESSION innodb_lock_wait_timeout = DEFAULT")
		}
		return conn.Exec("UPDATE event_log_slots SET sealed_id = ? WHERE sealed_id < ?", want, want).Error
	})
	if err != nil {
		return fmt.Errorf("seal event log: %w", err)
	}
	raiseIDFloor(want)
	return nil
}

func (l *EventLog) noteSealed(id uint64) {
	raiseIDFloor(id)
	for {
		cur := l.sealed.Load()
		if cur >= id || l.sealed.CompareAndSwap(cur, id) {
			return
		}
	}
}

// claimLogSlot is the first statement of every transaction that appends
// events whose lowest id is minID: it holds the slot row until the commit,
// so a seal waits for it, and it fails (errSealedOver) if a seal already
// covers minID.
func claimLogSlotSQL(slot int, minID uint64) (string, []any) {
	return "UPDATE event_log_slots SET writes = writes + 1 WHERE slot = ? AND sealed_id < ?", []any{slot, minID}
}

// errSealedOver means a group commit's ids were sealed over before it
// claimed its slot; it is retried with ids above the seal.
var errSealedOver = errors.New("event log sealed over the batch's ids")

// raiseFloorToSeal reads the highest seal so that the next ids exceed it.
func raiseFloorToSeal(ctx context.Context, db *gorm.DB) error {
	var sealed uint64
	if err := db.WithContext(ctx).Raw("SELECT COALESCE(MAX(sealed_id), 0) FROM event_log_slots").Scan(&sealed).Error; err != nil {
		return err
	}
	raiseIDFloor(sealed)
	return nil
}

// lockConsumer locks the named consumer's row inside tx until it commits,
// and returns its watermark: the events with ids up to it are derived,
// the others not yet (and, if deleted in tx, never will be). Whoever
// changes events or derived data behind a consumer's back holds this lock
// (erasure, eraseFromRollups; retention touches neither derived data nor
// events past the lowest live watermark, see lowestWatermark), which also
// makes the consumer's next flush start over.
func lockConsumer(tx *gorm.DB, name string) (uint64, error) {
	if err := tx.Exec("UPDATE event_log_consumers SET generation = generation + 1 WHERE name = ?", name).Error; err != nil {
		return 0, err
	}
	var position uint64
	err := forUpdate(tx.Table("event_log_consumers")).Select("position").Where("name = ?", name).Scan(&position).Error
	return position, err
}

func slicesClone[T any](s []T) []T { return append([]T(nil), s...) }
