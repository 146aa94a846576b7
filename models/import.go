package models

import (
	"context"
	"encoding/json"
	"slices"
	"strings"

	"gorm.io/gorm"
)

var importIDs = newIDGenerator()

// ImportEvents stores already validated events of existing definitions and
// devices together with their rollups, in one transaction of multi-row
// statements. It is for bulk loads (the seed command): it neither dedupes
// by messageId nor touches devices or definition counters, which the
// loader sets itself. Events without an id get one.
func ImportEvents(ctx context.Context, db *gorm.DB, events []*Event) error {
	return withRetry(ctx, func() error {
		return db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
			b := newRollupBatch()
			for chunk := range slices.Chunk(events, 1000) {
				var sb strings.Builder
				sb.WriteString(insertEventsSQL)
				args := make([]any, 0, len(chunk)*12)
				for i, e := range chunk {
					if i > 0 {
						sb.WriteByte(',')
					}
					sb.WriteString("(?,?,?,?,?,?,?,?,?,?,?,?)")
					if e.ID == 0 {
						e.ID = importIDs.next()
					}
					props, err := json.Marshal(e.Properties)
					if err != nil {
						return err
					}
					if e.Properties == nil {
						props = []byte("{}")
					}
					args = append(args, e.ID, e.AppID, e.DefinitionID, e.DeviceID, e.MessageID, e.URL, e.Referrer, e.Title,
						string(props), e.Source, StoreTime(e.OccurredAt), StoreTime(e.ReceivedAt))
					b.add(e)
				}
				if err := tx.Exec(sb.String(), args...).Error; err != nil {
					return err
				}
			}
			return writeRollups(tx, b)
		})
	})
}
