package models

import (
	"context"
	"fmt"
	"time"

	"gorm.io/gorm"
)

// Hooks for the external tests (package models_test), which can use
// modelstest; this file is compiled only into the package's test binary.

// WrapCatalogLoad runs before(ctx, publicID) ahead of every store read of
// the catalog, with the context the read will use.
func WrapCatalogLoad(c *Catalog, before func(ctx context.Context, publicID string)) {
	load := c.load
	c.load = func(ctx context.Context, publicID string) (*catalogEntry, error) {
		before(ctx, publicID)
		return load(ctx, publicID)
	}
}

// MaxCatalogMisses is how many unknown app ids a catalog remembers.
const MaxCatalogMisses = maxCatalogMisses

// RememberCatalogMiss records publicID as unknown, as a failed lookup does.
func RememberCatalogMiss(c *Catalog, publicID string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.rememberMiss(publicID, catalogMiss{at: time.Now(), generation: c.generation.Load()})
}

// CatalogMisses returns how many unknown app ids c remembers.
func CatalogMisses(c *Catalog) int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.misses)
}

// SetDerivedCommitHook makes every event log flush call f inside its
// transaction, after the fence and before the derived writes, until the
// returned function is called.
func SetDerivedCommitHook(f func(tx *gorm.DB, consumer string) error) (restore func()) {
	testHookBeforeDerivedCommit.Store(&f)
	return func() { testHookBeforeDerivedCommit.Store(nil) }
}

// Add registers c without running it: Step and Drain do.
func (l *EventLog) Add(c LogConsumer) {
	l.mu.Lock()
	l.consumers = append(l.consumers, newConsumerRun(l, c))
	l.mu.Unlock()
}

// Step runs one flush of each of l's consumers (taking their leases if it
// can), deriving events up to now. more reports that some remain.
func (l *EventLog) Step(ctx context.Context) (more bool, err error) {
	l.mu.Lock()
	consumers := slicesClone(l.consumers)
	l.mu.Unlock()
	for _, c := range consumers {
		c.mu.Lock()
		if err = c.acquire(ctx, time.Now()); err == nil && c.holding {
			var m bool
			want := lastIDAt(time.Now())
			m, err = c.flush(ctx, want, want)
			more = more || m
		}
		c.mu.Unlock()
		if err != nil {
			return more, err
		}
	}
	return more, nil
}

// RollupsWatermark returns the rollups consumer's position.
func RollupsWatermark(db *gorm.DB) uint64 {
	pos, _, _ := rollupsWatermark(db)
	return pos
}

// RollupsMatchEvents compares the app's stored rollups with rollups
// computed from its raw events with ids up to the rollups watermark:
// counts must be equal and sketches estimate the same number.
func RollupsMatchEvents(ctx context.Context, db *gorm.DB, appID uint64) error {
	db = db.WithContext(ctx)
	derived := RollupsWatermark(db)
	want := newRollupBatch()
	if derived > 0 {
		if err := want.addStored(db, appID, time.Unix(0, 0), time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC), derived); err != nil {
			return err
		}
	}
	type row struct {
		Kind         string
		Grain        int8
		DefinitionID uint64
		Bucket       time.Time
		Dim          int64
		Value        string
		Count        int64
		Sketch       []byte
	}
	var rows []row
	if err := db.Table("rollups").Where("app_id = ?", appID).Scan(&rows).Error; err != nil {
		return err
	}
	if len(rows) != len(want.byKey) {
		return fmt.Errorf("%d rollup rows stored, %d expected from the raw events", len(rows), len(want.byKey))
	}
	for _, r := range rows {
		k := rollupKey{appID, r.Kind, r.Grain, r.DefinitionID, r.Bucket.Unix(), r.Dim}
		d := want.byKey[k]
		if d == nil {
			return fmt.Errorf("unexpected rollup row %+v", k)
		}
		if d.count != r.Count || d.value != r.Value {
			return fmt.Errorf("%+v: stored %q %d, raw events %q %d", k, r.Value, r.Count, d.value, d.count)
		}
		if k.sketched() {
			var acc sketchAcc
			if err := acc.add(r.Sketch); err != nil {
				return err
			}
			var exp sketchAcc
			if err := exp.merge(d.devices); err != nil {
				return err
			}
			if acc.estimate() != exp.estimate() {
				return fmt.Errorf("%+v: stored sketch estimates %d devices, raw events %d", k, acc.estimate(), exp.estimate())
			}
		}
	}
	return nil
}

// SetWriterHooks makes every writer call beforeStatements before a group
// commit sends its statements and beforeCommit between its statements and
// its COMMIT (nil: nothing), until restore is called.
func SetWriterHooks(beforeStatements, beforeCommit func()) (restore func()) {
	if beforeStatements != nil {
		testHookBeforeStatements.Store(&beforeStatements)
	}
	if beforeCommit != nil {
		testHookBeforeCommit.Store(&beforeCommit)
	}
	return func() {
		testHookBeforeStatements.Store(nil)
		testHookBeforeCommit.Store(nil)
	}
}

// LastIDAt is the greatest event id that can be made at or before t.
func LastIDAt(t time.Time) uint64 { return lastIDAt(t) }

// ClearCatalogs is what every models function that writes apps or
// definitions calls after its write.
func ClearCatalogs(db *gorm.DB) { clearCatalogs(db) }

// CountBehind takes l's consumers' leases if it can and counts the events
// past their watermarks now (see ConsumerStats.Behind).
func (l *EventLog) CountBehind(ctx context.Context) error {
	l.mu.Lock()
	consumers := slicesClone(l.consumers)
	l.mu.Unlock()
	for _, c := range consumers {
		c.mu.Lock()
		err := c.acquire(ctx, time.Now())
		c.counted = time.Time{}
		c.mu.Unlock()
		if err == nil {
			err = c.countBehind(ctx)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// LiveSubscribers returns how many live streams and shared polls run.
func LiveSubscribers() (streams, polls int) { return liveSubscribers() }

// MatchesRule evaluates one rule on an event in Go, as automations and
// funnels do; code is the event's definition code.
func MatchesRule(r Rule, code string, e *Event) bool { return matchRule(r, code, e) }

// EnqueueReplay records replayed deliveries of (eventID, actionID, ruleID)
// as replayRule does after matching the events.
func EnqueueReplay(db *gorm.DB, appID uint64, pairs [][3]uint64) error {
	return db.Transaction(func(tx *gorm.DB) error { return enqueueDeliveries(tx, appID, pairs, true) })
}
