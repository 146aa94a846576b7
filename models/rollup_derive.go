package models

import (
	"context"

	"gorm.io/gorm"
)

// rollupsConsumerName names the event log consumer that derives rollups.
const rollupsConsumerName = "rollups"

// rollupEventColumns are the event columns rollups are made of.
const rollupEventColumns = "id, app_id, definition_id, device_id, url, referrer, source, occurred_at"

// RollupsConsumer derives the insights rollups (rollup.go) from the event
// log: each flush counts thousands of events into a few hundred rollup
// rows, reads those rows' device sketches once, and writes them back with
// one multi-row upsert per 500 rows, in the transaction that moves the
// consumer's watermark. Insights add the events past the watermark
// themselves (rollup_read.go), so their answers do not wait for it.
func RollupsConsumer() LogConsumer {
	return LogConsumer{Name: rollupsConsumerName, Columns: rollupEventColumns, Derive: deriveRollups}
}

func deriveRollups(ctx context.Context, db *gorm.DB, events []*Event) (func(tx *gorm.DB) error, error) {
	b := newRollupBatch()
	for _, e := range events {
		b.add(e)
	}
	// The stored sketches are read outside the transaction: only holders of
	// the consumer's row lock change rollups, and the flush's fence fails if
	// one did meanwhile.
	deltas, err := mergeStoredSketches(db, b)
	if err != nil {
		return nil, err
	}
	return func(tx *gorm.DB) error { return upsertRollupDeltas(tx, deltas) }, nil
}
