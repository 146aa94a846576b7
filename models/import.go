package models

import (
	"context"
	"encoding/json"
	"errors"
	"math/rand/v2"

	"gorm.io/gorm"
)

var importIDs = newIDGenerator()

// ImportEvents stores already validated events of existing definitions and
// devices in one transaction of multi-row statements. It is for bulk loads
// (the seed command): it neither dedupes by messageId nor touches devices
// or definition counters, which the loader sets itself. Their rollups are
// derived by the event log's consumer like those of any other events
// (EventLog.Drain waits for them). Events get new ids.
func ImportEvents(ctx context.Context, db *gorm.DB, events []*Event) error {
	if len(events) == 0 {
		return nil
	}
	props := make([]string, len(events))
	for i, e := range events {
		e.OccurredAt, e.ReceivedAt = StoreTime(e.OccurredAt), StoreTime(e.ReceivedAt)
		props[i] = "{}"
		if e.Properties != nil {
			encoded, err := json.Marshal(e.Properties)
			if err != nil {
				return err
			}
			props[i] = string(encoded)
		}
	}
	slot := rand.IntN(eventLogSlots)
	for {
		err := withRetry(ctx, func() error {
			return db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
				// Fresh ids per attempt, claimed in the event log (eventlog.go).
				for _, e := range events {
					e.ID = importIDs.next()
				}
				query, args := claimLogSlotSQL(slot, events[0].ID)
				res := tx.Exec(query, args...)
				if res.Error != nil {
					return res.Error
				}
				if res.RowsAffected != 1 {
					return errSealedOver
				}
				return insertEvents(tx, events, props, 1000)
			})
		})
		if !errors.Is(err, errSealedOver) {
			return err
		}
		if err := raiseFloorToSeal(ctx, db); err != nil {
			return err
		}
	}
}
