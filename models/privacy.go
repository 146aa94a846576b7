package models

import (
	"context"
	"errors"

	"gorm.io/gorm"
)

// EraseResult says what EraseLead removed.
type EraseResult struct {
	Erased         bool
	DeletedDevices int64
	DeletedEvents  int64
}

// EraseLead removes the lead with this email, its devices and all their events
// (right to erasure). The definitions' counts and times and the rollups of
// the days those events fell on are corrected in the same transaction, so
// they keep matching the stored events.
func EraseLead(ctx context.Context, db *gorm.DB, appPublicID, email string) (*EraseResult, error) {
	lead, err := LeadByEmail(ctx, db, appPublicID, email)
	if errors.Is(err, ErrNotFound) {
		return &EraseResult{}, nil
	}
	if err != nil {
		return nil, err
	}
	res := &EraseResult{}
	err = withRetry(ctx, func() error {
		*res = EraseResult{}
		return db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
			var deviceIDs []string
			err := forUpdate(tx.Model(&Device{})).Where("app_id = ? AND lead_id = ?", lead.AppID, lead.ID).Pluck("device_id", &deviceIDs).Error
			if err != nil {
				return err
			}
			if len(deviceIDs) > 0 {
				// Held until the commit: a writer storing events of this app
				// needs these rows, so the rollups rebuilt below cannot miss
				// or double-count a concurrent batch.
				var defIDs []uint64
				err := forUpdate(tx.Model(&EventDefinition{})).Where("app_id = ?", lead.AppID).Order("id").Pluck("id", &defIDs).Error
				if err != nil {
					return err
				}
				if err := eraseDeviceEvents(tx, lead.AppID, deviceIDs, res); err != nil {
					return err
				}
				d := tx.Where("app_id = ? AND device_id IN ?", lead.AppID, deviceIDs).Delete(&Device{})
				if d.Error != nil {
					return d.Error
				}
				res.DeletedDevices = d.RowsAffected
			}
			err = tx.Where("to_lead_id = ? OR from_lead_id = ?", lead.ID, lead.ID).Delete(&DeviceMove{}).Error
			if err != nil {
				return err
			}
			if err := tx.Delete(&Lead{}, lead.ID).Error; err != nil {
				return err
			}
			res.Erased = true
			return nil
		})
	})
	return res, err
}

func eraseDeviceEvents(tx *gorm.DB, appID uint64, deviceIDs []string, res *EraseResult) error {
	var perDef []struct {
		DefinitionID uint64
		N            int64
	}
	var erased []*Event
	err := tx.Select("app_id, definition_id, device_id, url, referrer, source, occurred_at").
		Where("app_id = ? AND device_id IN ?", appID, deviceIDs).Find(&erased).Error
	if err != nil {
		return err
	}
	err = tx.Model(&Event{}).Select("definition_id, COUNT(*) AS n").
		Where("app_id = ? AND device_id IN ?", appID, deviceIDs).Group("definition_id").Order("definition_id").Scan(&perDef).Error
	if err != nil {
		return err
	}
	for _, d := range perDef {
		err := tx.Exec(`UPDATE event_definitions SET trigger_count = trigger_count - ? WHERE id = ?`, d.N, d.DefinitionID).Error
		if err != nil {
			return err
		}
	}
	del := tx.Where("app_id = ? AND device_id IN ?", appID, deviceIDs).Delete(&Event{})
	if del.Error != nil {
		return del.Error
	}
	res.DeletedEvents = del.RowsAffected
	if err := eraseFromRollups(tx, appID, erased); err != nil {
		return err
	}
	for _, d := range perDef {
		err := tx.Exec(`UPDATE event_definitions SET
			first_triggered_at = (SELECT MIN(occurred_at) FROM events WHERE definition_id = ?),
			last_triggered_at = (SELECT MAX(occurred_at) FROM events WHERE definition_id = ?)
			WHERE id = ?`, d.DefinitionID, d.DefinitionID, d.DefinitionID).Error
		if err != nil {
			return err
		}
	}
	return nil
}
