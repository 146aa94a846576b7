package models

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"gorm.io/gorm"
)

// consumerRun is one consumer in this replica.
type consumerRun struct {
	l    *EventLog
	spec LogConsumer

	mu         sync.Mutex // one step at a time: the loop, Drain and Close
	holding    bool
	leaseUntil time.Time
	position   uint64
	generation uint64
	registered bool

	statsMu sync.Mutex
	stats   ConsumerStats
	counted time.Time // when Behind was last counted
}

// maxBehindCount bounds the count of events past a watermark: beyond it the
// count would cost more than it tells.
const maxBehindCount = 100_000

func (c *consumerRun) loop(ctx context.Context) {
	timer := time.NewTimer(0)
	defer timer.Stop()
	failures := 0
	var warned time.Time // a failing store is logged at most once a second
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		more, err := c.step(ctx)
		if err == nil {
			err = c.countBehind(ctx)
		}
		wait := c.l.opts.Interval
		switch {
		case err != nil && ctx.Err() == nil:
			failures++
			c.mu.Lock() // note reads holding and position
			c.note(func(s *ConsumerStats) { s.Errors++ })
			c.mu.Unlock()
			if time.Since(warned) >= time.Second {
				warned = time.Now()
				c.l.opts.Log.Warn("event log consumer", "consumer", c.spec.Name, "err", err, "failures", failures)
			}
			wait = min(c.l.opts.Interval<<min(failures, 6), c.l.opts.LeaseTTL)
		case more:
			failures, wait = 0, 0
			if c.isHolding() {
				// Catching up: still leave the store some room.
				wait = c.lastFlush() / 4
			}
		default:
			failures = 0
			if !c.isHolding() {
				// Look for an expired lease now and then only.
				wait = max(wait, c.l.opts.LeaseTTL/10)
			} else {
				// A flush costs per rollup row it touches, whatever the
				// number of events: at most one in five time units, as long
				// as that keeps the lag well under two seconds.
				wait = max(wait, min(4*c.lastFlush(), 600*time.Millisecond))
			}
		}
		timer.Reset(wait)
	}
}

func (c *consumerRun) lastFlush() time.Duration {
	c.statsMu.Lock()
	defer c.statsMu.Unlock()
	return c.stats.LastFlushDuration
}

func (c *consumerRun) isHolding() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.holding
}

// note updates the stats; the caller holds c.mu.
func (c *consumerRun) note(f func(*ConsumerStats)) {
	c.statsMu.Lock()
	f(&c.stats)
	c.stats.Name, c.stats.Holding, c.stats.Position = c.spec.Name, c.holding, c.position
	c.statsMu.Unlock()
}

// step takes or renews the lease and derives the next events, if any are
// old enough to seal. more reports that events remain beyond the batch.
func (c *consumerRun) step(ctx context.Context) (more bool, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := time.Now()
	if !c.holding || now.After(c.leaseUntil.Add(-c.l.opts.LeaseTTL/2)) {
		if err := c.acquire(ctx, now); err != nil || !c.holding {
			c.note(func(*ConsumerStats) {})
			return false, err
		}
	}
	return c.flush(ctx, lastIDAt(now.Add(-c.l.opts.MinAge)), lastIDAt(now.Add(-c.l.opts.SealMargin)))
}

// countBehind counts the events past the watermark, for the lag metric,
// once a second at most and only while this replica holds the lease.
func (c *consumerRun) countBehind(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.holding || time.Since(c.counted) < time.Second {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, dbCallTimeout)
	defer cancel()
	var n int64
	err := c.l.db.WithContext(ctx).Raw("SELECT COUNT(*) FROM (SELECT id FROM events WHERE id > ? ORDER BY id LIMIT ?) behind",
		c.position, maxBehindCount).Scan(&n).Error
	if err != nil {
		return err
	}
	c.counted = time.Now()
	c.note(func(s *ConsumerStats) { s.Behind = n })
	return nil
}

// drain derives everything up to want, if this replica holds the lease or
// can take it.
func (c *consumerRun) drain(ctx context.Context, want uint64) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.acquire(ctx, time.Now()); err != nil || !c.holding {
		return err
	}
	for {
		more, err := c.flush(ctx, want, want)
		if err != nil || !more {
			return err
		}
	}
}

// register creates the consumer's row on first use.
func (c *consumerRun) register(ctx context.Context) error {
	if c.registered {
		return nil
	}
	db := c.l.db.WithContext(ctx)
	var start uint64
	if c.spec.StartAtEnd {
		if err := db.Raw("SELECT COALESCE(MAX(id), 0) FROM events").Scan(&start).Error; err != nil {
			return err
		}
	}
	conflict := " ON CONFLICT (name) DO NOTHING"
	if isMySQL(db) {
		conflict = " ON DUPLICATE KEY UPDATE name = name"
	}
	err := db.Exec("INSERT INTO event_log_consumers (name, position, generation, lease_owner, lease_until) VALUES (?, ?, 0, '', 0)"+conflict,
		c.spec.Name, start).Error
	c.registered = err == nil
	return err
}

// acquire takes or renews the lease and, when newly taken, loads the
// consumer's watermark.
func (c *consumerRun) acquire(ctx context.Context, now time.Time) error {
	ctx, cancel := context.WithTimeout(ctx, dbCallTimeout)
	defer cancel()
	if err := c.register(ctx); err != nil {
		return err
	}
	db := c.l.db.WithContext(ctx)
	until := now.Add(c.l.opts.LeaseTTL)
	res := db.Exec("UPDATE event_log_consumers SET lease_owner = ?, lease_until = ? WHERE name = ? AND (lease_owner = ? OR lease_until < ?)",
		c.l.owner, until.UnixMilli(), c.spec.Name, c.l.owner, now.UnixMilli())
	if res.Error != nil {
		return res.Error
	}
	if res.RowsAffected == 0 {
		c.holding = false
		return nil
	}
	if !c.holding {
		if err := c.load(ctx); err != nil {
			return err
		}
	}
	c.holding, c.leaseUntil = true, until
	c.note(func(*ConsumerStats) {})
	return nil
}

// load reads the consumer's watermark and generation, and whether this
// replica still holds its lease.
func (c *consumerRun) load(ctx context.Context) error {
	var row struct {
		Position, Generation uint64
		LeaseOwner           string
		LeaseUntil           int64
	}
	err := c.l.db.WithContext(ctx).Raw("SELECT position, generation, lease_owner, lease_until FROM event_log_consumers WHERE name = ?", c.spec.Name).Scan(&row).Error
	if err != nil {
		return err
	}
	c.position, c.generation = row.Position, row.Generation
	c.holding = row.LeaseOwner == c.l.owner && row.LeaseUntil > time.Now().UnixMilli()
	c.leaseUntil = time.UnixMilli(row.LeaseUntil)
	return nil
}

// release gives the lease up.
func (c *consumerRun) release() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.holding {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c.l.db.WithContext(ctx).Exec("UPDATE event_log_consumers SET lease_until = 0 WHERE name = ? AND lease_owner = ?", c.spec.Name, c.l.owner)
	c.holding = false
}

// errFenced means another flush or an erasure moved the consumer on first.
var errFenced = errors.New("event log: consumer moved by another transaction")

// flush derives the next batch of events up to want, sealing the log first
// where needed, if the oldest event not derived yet has an id up to ready.
// more reports that events up to want remain.
func (c *consumerRun) flush(ctx context.Context, ready, want uint64) (more bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, dbCallTimeout)
	defer cancel()
	start := time.Now()
	db := c.l.db.WithContext(ctx)
	var next uint64
	if err := db.Raw("SELECT id FROM events WHERE id > ? ORDER BY id LIMIT 1", c.position).Scan(&next).Error; err != nil {
		return false, err
	}
	if next == 0 || next > ready {
		c.note(func(s *ConsumerStats) {
			s.Lag = 0
			if next != 0 {
				s.Lag = max(time.Since(idTime(next)), 0)
			}
		})
		return false, nil
	}
	sealed := c.l.sealed.Load()
	if next > sealed {
		if sealed, err = c.l.seal(ctx, want); err != nil {
			return false, err
		}
	}
	var events []*Event
	err = db.Select(c.spec.Columns).Where("id > ? AND id <= ?", c.position, sealed).Order("id").Limit(c.spec.Batch).Find(&events).Error
	if err != nil {
		return false, err
	}
	to := sealed
	if len(events) == c.spec.Batch {
		to = events[len(events)-1].ID
	}
	write, err := c.spec.Derive(ctx, db, events)
	if err != nil {
		return false, fmt.Errorf("derive %s: %w", c.spec.Name, err)
	}
	leaseUntil := time.Now().Add(c.l.opts.LeaseTTL)
	err = db.Transaction(func(tx *gorm.DB) error {
		res := tx.Exec(`UPDATE event_log_consumers SET position = ?, generation = generation + 1, lease_until = ?
			WHERE name = ? AND position = ? AND generation = ? AND lease_owner = ?`,
			to, leaseUntil.UnixMilli(), c.spec.Name, c.position, c.generation, c.l.owner)
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected != 1 {
			return errFenced
		}
		if hook := testHookBeforeDerivedCommit.Load(); hook != nil {
			if err := (*hook)(tx, c.spec.Name); err != nil {
				return err
			}
		}
		return write(tx)
	})
	if c.spec.Settled != nil {
		c.spec.Settled(err == nil)
	}
	if errors.Is(err, errFenced) {
		// An erasure or another replica came first: reload and try again,
		// if the lease is still ours.
		if err := c.load(ctx); err != nil {
			return false, err
		}
		return c.holding, nil
	}
	if err != nil {
		return false, err
	}
	c.position, c.leaseUntil = to, leaseUntil
	c.generation++
	took := time.Since(start)
	more = to < want && (len(events) == c.spec.Batch || sealed < want)
	c.note(func(s *ConsumerStats) {
		s.Flushes++
		s.Events += uint64(len(events))
		s.LastFlushEvents, s.LastFlushDuration = len(events), took
		s.Lag = 0
		if more && len(events) > 0 {
			s.Lag = max(time.Since(idTime(events[len(events)-1].ID)), 0)
		}
	})
	return more, nil
}
