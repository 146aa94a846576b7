package models

import (
	"context"
	"maps"
	"slices"

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
// they keep matching the stored events. Editors, owners and the app's secret key.
func EraseLead(ctx context.Context, db *gorm.DB, v Viewer, appPublicID, email string) (*EraseResult, error) {
	if _, err := v.App(ctx, db, appPublicID, RoleEditor); err != nil {
		return nil, err
	}
	lead, err := LeadByEmail(ctx, db, v, appPublicID, email)
	if err != nil || lead == nil {
		return &EraseResult{}, err
	}
	res := &EraseResult{}
	var deviceIDs []string
	err = withRetry(ctx, func() error {
		*res, deviceIDs = EraseResult{}, nil
		return db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
			err := forUpdate(tx.Model(&Device{})).Where("app_id = ? AND lead_id = ?", lead.AppID, lead.ID).Pluck("device_id", &deviceIDs).Error
			if err != nil {
				return err
			}
			if len(deviceIDs) > 0 {
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
	if err != nil {
		return nil, err
	}
	forgetRecentDevices(db, lead.AppID, deviceIDs)
	return res, nil
}

// eraseDeviceEvents deletes the devices' events and takes them out of the
// rollups and the definitions' counters. It takes its locks in the writer's
// order (devices, events, rollup rows in key order, definitions last), so
// an erase and a group commit of the same app rarely deadlock, and retry
// when they do.
func eraseDeviceEvents(tx *gorm.DB, appID uint64, deviceIDs []string, res *EraseResult) error {
	var erased []*Event
	err := forUpdate(tx.Select("id, app_id, definition_id, device_id, url, referrer, source, occurred_at")).
		Where("app_id = ? AND device_id IN ?", appID, deviceIDs).Find(&erased).Error
	if err != nil {
		return err
	}
	perDef := map[uint64]int64{}
	for _, e := range erased {
		perDef[e.DefinitionID]++
	}
	del := tx.Where("app_id = ? AND device_id IN ?", appID, deviceIDs).Delete(&Event{})
	if del.Error != nil {
		return del.Error
	}
	res.DeletedEvents = del.RowsAffected
	if err := eraseFromRollups(tx, appID, erased); err != nil {
		return err
	}
	ids := make([]uint64, len(erased))
	for i, e := range erased {
		ids[i] = e.ID
	}
	if err := eraseDeliveries(tx, ids); err != nil {
		return err
	}
	for _, id := range slices.Sorted(maps.Keys(perDef)) {
		err := tx.Exec(`UPDATE event_definitions SET trigger_count = trigger_count - ?,
			first_triggered_at = (SELECT MIN(occurred_at) FROM events WHERE definition_id = ?),
			last_triggered_at = (SELECT MAX(occurred_at) FROM events WHERE definition_id = ?)
			WHERE id = ?`, perDef[id], id, id, id).Error
		if err != nil {
			return err
		}
	}
	return nil
}
