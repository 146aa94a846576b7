package models

import (
	"context"
	"encoding/json"

	"gorm.io/gorm"
)

var importIDs = newIDGenerator()

// ImportEvents stores already validated events of existing definitions and
// devices together with their rollups, in one transaction of multi-row
// statements. It is for bulk loads (the seed command): it neither dedupes
// by messageId nor touches devices or definition counters, which the
// loader sets itself. Events without an id get one.
func ImportEvents(ctx context.Context, db *gorm.DB, events []*Event) error {
	props := make([]string, len(events))
	b := newRollupBatch()
	for i, e := range events {
		if e.ID == 0 {
			e.ID = importIDs.next()
		}
		e.OccurredAt, e.ReceivedAt = StoreTime(e.OccurredAt), StoreTime(e.ReceivedAt)
		props[i] = "{}"
		if e.Properties != nil {
			encoded, err := json.Marshal(e.Properties)
			if err != nil {
				return err
			}
			props[i] = string(encoded)
		}
		b.add(e)
	}
	return withRetry(ctx, func() error {
		return db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
			if err := insertEvents(tx, events, props, 1000); err != nil {
				return err
			}
			return writeRollups(tx, b)
		})
	})
}
