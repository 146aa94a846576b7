package models

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"time"

	"gorm.io/gorm"
)

// EraseResult says what an erasure removed, and its receipt.
type EraseResult struct {
	Erased         bool
	DeletedDevices int64
	DeletedEvents  int64
	DeletedLeads   int64
	// Tombstones is how many erased messageIds are remembered so that late
	// resends stay erased (tombstone.go).
	Tombstones int64
	// ReceiptID is the audit record of the erasure (0 when nothing matched,
	// and until it is done).
	ReceiptID uint64
	// ErasureID is the erasure to follow (ErasureStatus); 0 when nothing
	// matched.
	ErasureID uint64
	// Done is true once the erasure has finished: the counts are final.
	// Until then they are what it has removed so far.
	Done bool
	// Failures counts its runs that failed part way, the last with the
	// public error code LastFailureCode at LastFailureAt (nil if none).
	Failures        int
	LastFailureCode *string
	LastFailureAt   *time.Time
}

// eraseChunk bounds the events one transaction of a by-date erasure or a
// retention run deletes.
const eraseChunk = 2000

// EraseLead removes the lead with this email, its devices and all their events
// (right to erasure). The definitions' counts and times and the rollups of
// the days those events fell on are corrected in the transactions that
// delete the events, so they keep matching the stored events. The erased
// messageIds are kept as tombstones, and a receipt is written. Editors,
// owners and the app's secret key.
//
// The events go in transactions of at most eraseChunk events
// (eraseEventsInChunks), so a lead with millions of events is erased in
// bounded memory and statements that each fit the database timeout, without
// holding its devices' rows for long; the last transaction erases what was
// stored meanwhile with the devices and the lead. The erasure is an
// EraseJob: a failure part way leaves it pending with fewer events, and
// erasing the lead again (or an Eraser) finishes it.
//
// EraseLead runs the erasure in ctx and returns when it is done; the
// server's requests go through an Eraser, which runs it detached and
// answers within a bound.
func EraseLead(ctx context.Context, db *gorm.DB, v Viewer, appPublicID, email string) (*EraseResult, error) {
	job, err := startEraseLead(ctx, db, v, appPublicID, email)
	return eraseNow(ctx, db, job, err)
}

// EraseDevice removes one device with all its events and its moves
// between leads; its lead, if any, stays with its other devices. Erasing
// an unknown device is not an error (Erased is false, no receipt). Its
// events go in chunks, as EraseLead's, and it returns when done.
// Editors, owners and the app's secret key.
func EraseDevice(ctx context.Context, db *gorm.DB, v Viewer, appPublicID, deviceID string) (*EraseResult, error) {
	job, err := startEraseDevice(ctx, db, v, appPublicID, deviceID)
	return eraseNow(ctx, db, job, err)
}

// EraseBefore removes every event of the app that occurred before before,
// then the devices last seen before it that have no events left, and the
// leads updated before it that have no devices left. It works in
// transactions of at most eraseChunk events, each correcting the rollups
// and the definitions like EraseLead, so it never holds locks for long; a
// failure part way leaves a consistent, partly erased app, and running it
// again finishes it. One receipt covers the whole run. It returns when
// done. Owners only.
func EraseBefore(ctx context.Context, db *gorm.DB, v Viewer, appPublicID string, before time.Time) (*EraseResult, error) {
	job, err := startEraseBefore(ctx, db, v, appPublicID, before)
	return eraseNow(ctx, db, job, err)
}

// startEraseLead checks the viewer and stores the erasure of the lead, or
// joins the pending one; nil when there is no such lead.
func startEraseLead(ctx context.Context, db *gorm.DB, v Viewer, appPublicID, email string) (*EraseJob, error) {
	if _, err := v.App(ctx, db, appPublicID, RoleEditor); err != nil {
		return nil, err
	}
	lead, err := LeadByEmail(ctx, db, v, appPublicID, email)
	if err != nil || lead == nil {
		return nil, err
	}
	job := newEraseJob(&v, lead.AppID, AuditEraseLead, lead.EmailKey, strconv.FormatUint(lead.ID, 10))
	job.LeadID, job.Erased = lead.ID, true
	return createEraseJob(ctx, db, job)
}

// startEraseDevice checks the viewer and stores the erasure of the
// device, or joins the pending one; nil when nothing of it is stored.
func startEraseDevice(ctx context.Context, db *gorm.DB, v Viewer, appPublicID, deviceID string) (*EraseJob, error) {
	app, err := v.App(ctx, db, appPublicID, RoleEditor)
	if err != nil {
		return nil, err
	}
	if err := ValidateDeviceID(deviceID); err != nil {
		return nil, err
	}
	var found []int
	err = db.WithContext(ctx).Raw(`SELECT 1 WHERE EXISTS (SELECT 1 FROM devices WHERE app_id = ? AND device_id = ?)
		OR EXISTS (SELECT 1 FROM events WHERE app_id = ? AND device_id = ?)
		OR EXISTS (SELECT 1 FROM device_moves WHERE app_id = ? AND device_id = ?)`,
		app.ID, deviceID, app.ID, deviceID, app.ID, deviceID).Scan(&found).Error
	if err != nil || len(found) == 0 {
		return nil, err
	}
	job := newEraseJob(&v, app.ID, AuditEraseDevice, deviceID, SubjectHash(deviceID))
	job.DeviceID, job.Erased = deviceID, true
	return createEraseJob(ctx, db, job)
}

// startEraseBefore checks the viewer and the date and stores the erasure,
// or joins the pending one of the same date.
func startEraseBefore(ctx context.Context, db *gorm.DB, v Viewer, appPublicID string, before time.Time) (*EraseJob, error) {
	app, err := v.App(ctx, db, appPublicID, RoleOwner)
	if err != nil {
		return nil, err
	}
	if before.IsZero() || before.After(Now().Add(24*time.Hour)) {
		return nil, Invalid("before", "must be a time no later than tomorrow")
	}
	before = StoreTime(before)
	subject := before.UTC().Format(time.RFC3339Nano)
	job := newEraseJob(&v, app.ID, AuditEraseBefore, subject, SubjectHash(subject))
	job.Before = &before
	return createEraseJob(ctx, db, job)
}

// runEraseJob carries the job out from where it stands: every step is
// safe to run again. renew is called after every committed transaction
// and stops the run when it fails (the lease was lost).
func runEraseJob(ctx context.Context, db *gorm.DB, job *EraseJob, renew func() error) (*EraseResult, error) {
	switch job.Kind {
	case AuditEraseLead:
		return runEraseLead(ctx, db, job, renew)
	case AuditEraseDevice:
		return runEraseDevice(ctx, db, job, renew)
	case AuditEraseBefore:
		return runEraseBefore(ctx, db, job, renew)
	}
	return nil, fmt.Errorf("models.runEraseJob: unknown kind %q", job.Kind)
}

func runEraseLead(ctx context.Context, db *gorm.DB, job *EraseJob, renew func() error) (*EraseResult, error) {
	// The events go first, in transactions of at most eraseChunk; the last
	// transaction erases what came meanwhile with the devices and the lead.
	var owned []string
	if err := db.WithContext(ctx).Model(&Device{}).Where("app_id = ? AND lead_id = ?", job.AppID, job.LeadID).Order("device_id").Pluck("device_id", &owned).Error; err != nil {
		return nil, err
	}
	if err := eraseEventsInChunks(ctx, db, job, job.LeadID, owned, renew); err != nil {
		return nil, err
	}
	var email []string
	if err := db.WithContext(ctx).Model(&Lead{}).Where("id = ?", job.LeadID).Pluck("email_key", &email).Error; err != nil {
		return nil, err
	}
	email = append(email, "")
	pages, expired, err := expiredPagesNaming(ctx, db, job.AppID, email[0])
	if err != nil {
		return nil, err
	}
	var res *EraseResult
	var deviceIDs []string
	err = withRetry(ctx, func() error {
		return db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
			part := &EraseResult{}
			err := forUpdate(tx.Model(&Device{})).Where("app_id = ? AND lead_id = ?", job.AppID, job.LeadID).Pluck("device_id", &deviceIDs).Error
			if err != nil {
				return err
			}
			if err := eraseDevices(tx, job.AppID, deviceIDs, part); err != nil {
				return err
			}
			// The moves naming the lead, and those of its devices between
			// other leads before they came to it.
			err = tx.Where("to_lead_id = ? OR from_lead_id = ? OR (app_id = ? AND device_id IN ?)", job.LeadID, job.LeadID, job.AppID, deviceIDs).
				Delete(&DeviceMove{}).Error
			if err != nil {
				return err
			}
			d := tx.Delete(&Lead{}, job.LeadID)
			if d.Error != nil {
				return d.Error
			}
			part.DeletedLeads = d.RowsAffected
			if err := eraseExpiredPages(tx, job.AppID, expired, pages); err != nil {
				return err
			}
			res, err = finishEraseJob(tx, job, part, true, Erasure{AppID: job.AppID, Kind: AuditEraseLead, DeviceIDs: deviceIDs})
			return err
		})
	})
	if err != nil {
		return nil, err
	}
	forgetRecentDevices(db, job.AppID, deviceIDs)
	return res, nil
}

func runEraseDevice(ctx context.Context, db *gorm.DB, job *EraseJob, renew func() error) (*EraseResult, error) {
	ids := []string{job.DeviceID}
	if err := eraseEventsInChunks(ctx, db, job, 0, ids, renew); err != nil {
		return nil, err
	}
	var res *EraseResult
	err := withRetry(ctx, func() error {
		return db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
			part := &EraseResult{}
			var found []string
			if err := forUpdate(tx.Model(&Device{})).Where("app_id = ? AND device_id = ?", job.AppID, job.DeviceID).Pluck("device_id", &found).Error; err != nil {
				return err
			}
			if err := eraseDevices(tx, job.AppID, ids, part); err != nil {
				return err
			}
			moves := tx.Where("app_id = ? AND device_id = ?", job.AppID, job.DeviceID).Delete(&DeviceMove{})
			if moves.Error != nil {
				return moves.Error
			}
			var err error
			res, err = finishEraseJob(tx, job, part, len(found) > 0 || moves.RowsAffected > 0, Erasure{AppID: job.AppID, Kind: AuditEraseDevice, DeviceIDs: ids})
			return err
		})
	})
	if err != nil {
		return nil, err
	}
	forgetRecentDevices(db, job.AppID, ids)
	return res, nil
}

func runEraseBefore(ctx context.Context, db *gorm.DB, job *EraseJob, renew func() error) (*EraseResult, error) {
	before := *job.Before
	cond := eraseCond{where: "app_id = ? AND occurred_at < ?", args: []any{job.AppID, before}}
	for {
		var n int64
		err := withRetry(ctx, func() error {
			return db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
				part := &EraseResult{}
				var err error
				if n, err = eraseEvents(tx, job.AppID, cond, eraseChunk, true, part); err != nil {
					return err
				}
				return tally(tx, job.ID, part)
			})
		})
		if err == nil {
			err = renew()
		}
		if err != nil {
			return nil, err
		}
		if n < eraseChunk {
			break
		}
	}
	if err := removeIdle(ctx, db, job.AppID, before, job.ID, &EraseResult{}); err != nil {
		return nil, err
	}
	var res *EraseResult
	err := withRetry(ctx, func() error {
		return db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
			var err error
			res, err = finishEraseJob(tx, job, &EraseResult{}, false, Erasure{AppID: job.AppID, Kind: AuditEraseBefore, Before: &before})
			return err
		})
	})
	return res, err
}

// eraseEventsInChunks deletes the events of the devices, device by device
// and oldest first along the (app_id, device_id, occurred_at) index, in
// transactions of at most eraseChunk events that each correct the rollups
// and definitions, keep tombstones, as eraseEvents does, and add to the
// job's counts. With leadID, a device's events go only while, under its
// row's lock, it still belongs to that lead (an identify may move it to
// another lead meanwhile).
func eraseEventsInChunks(ctx context.Context, db *gorm.DB, job *EraseJob, leadID uint64, deviceIDs []string, renew func() error) error {
	for _, device := range deviceIDs {
		cond := eraseCond{where: "app_id = ? AND device_id = ?", args: []any{job.AppID, device}}
		for {
			var n int64
			err := withRetry(ctx, func() error {
				return db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
					n = 0
					if leadID != 0 {
						var owned []string
						err := forUpdate(tx.Model(&Device{})).Where("app_id = ? AND device_id = ? AND lead_id = ?", job.AppID, device, leadID).Pluck("device_id", &owned).Error
						if err != nil || len(owned) == 0 {
							return err
						}
					}
					part := &EraseResult{}
					var err error
					if n, err = eraseEvents(tx, job.AppID, cond, eraseChunk, true, part); err != nil {
						return err
					}
					return tally(tx, job.ID, part)
				})
			})
			if err == nil && n > 0 {
				err = renew()
			}
			if err != nil {
				return err
			}
			if n < eraseChunk {
				break
			}
		}
	}
	return nil
}

// writeReceipt stores the receipt with res's counts and sets res.ReceiptID.
func writeReceipt(tx *gorm.DB, r *AuditRecord, res *EraseResult) error {
	r.Events, r.Devices, r.Leads, r.Tombstones = res.DeletedEvents, res.DeletedDevices, res.DeletedLeads, res.Tombstones
	if err := tx.Create(r).Error; err != nil {
		return err
	}
	res.ReceiptID = r.ID
	return nil
}

// eraseDevices deletes the devices (locked by the caller) with their
// events, in the erase's transaction.
func eraseDevices(tx *gorm.DB, appID uint64, deviceIDs []string, res *EraseResult) error {
	if len(deviceIDs) == 0 {
		return nil
	}
	cond := eraseCond{where: "app_id = ? AND device_id IN ?", args: []any{appID, deviceIDs}}
	if _, err := eraseEvents(tx, appID, cond, 0, true, res); err != nil {
		return err
	}
	d := tx.Where("app_id = ? AND device_id IN ?", appID, deviceIDs).Delete(&Device{})
	if d.Error != nil {
		return d.Error
	}
	res.DeletedDevices += d.RowsAffected
	return nil
}

// eraseCond selects the events an erasure deletes.
type eraseCond struct {
	where string
	args  []any
}

// eraseEvents deletes the events matching cond (at most limit when limit
// is positive, oldest first) and returns how many. With correct, it takes
// them out of the rollups and the definitions' counters (an erasure);
// without, the aggregates keep counting them (retention). Their
// messageIds received within the tombstone lifetime become tombstones.
// It locks the app's row first (expiredBefore), so erasures and retention
// runs of the app take turns, then the rest in the writer's order (events,
// rollup rows in key order, definitions last), so an erase and a group
// commit of the same app rarely deadlock, and retry when they do.
func eraseEvents(tx *gorm.DB, appID uint64, cond eraseCond, limit int, correct bool, res *EraseResult) (int64, error) {
	expired, err := expiredBefore(tx, appID)
	if err != nil {
		return 0, err
	}
	var erased []*Event
	q := forUpdate(tx.Select("id, app_id, definition_id, device_id, message_id, url, referrer, source, occurred_at, received_at")).
		Where(cond.where, cond.args...)
	if limit > 0 {
		q = q.Order("occurred_at, id").Limit(limit)
	}
	if err := q.Find(&erased).Error; err != nil {
		return 0, err
	}
	if len(erased) == 0 {
		return 0, nil
	}
	ids := make([]uint64, len(erased))
	perDef := map[uint64]int64{}
	for i, e := range erased {
		ids[i] = e.ID
		perDef[e.DefinitionID]++
	}
	var deleted int64
	for chunk := range slices.Chunk(ids, 500) {
		del := tx.Where("app_id = ? AND id IN ?", appID, chunk).Delete(&Event{})
		if del.Error != nil {
			return 0, del.Error
		}
		deleted += del.RowsAffected
	}
	res.DeletedEvents += deleted
	n, err := writeTombstones(tx, appID, erased, Now())
	if err != nil {
		return 0, err
	}
	res.Tombstones += n
	// Webhook deliveries name the events; they go with them, whether or
	// not the rollups are corrected (retention keeps the counts).
	if err := eraseDeliveries(tx, ids); err != nil {
		return 0, err
	}
	if !correct {
		return int64(len(erased)), nil
	}
	if err := eraseFromRollups(tx, appID, erased, expired); err != nil {
		return 0, err
	}
	for _, id := range slices.Sorted(maps.Keys(perDef)) {
		err := tx.Exec(`UPDATE event_definitions SET trigger_count = trigger_count - ?,
			first_triggered_at = (SELECT MIN(occurred_at) FROM events WHERE definition_id = ?),
			last_triggered_at = (SELECT MAX(occurred_at) FROM events WHERE definition_id = ?)
			WHERE id = ?`, perDef[id], id, id, id).Error
		if err != nil {
			return 0, err
		}
	}
	return int64(len(erased)), nil
}

// removeIdle deletes, in chunks, the app's devices last seen before cutoff
// that have no events left (with their moves), then its leads updated
// before cutoff that have no devices left. It adds what it deleted to res,
// and to the erasure jobID's counts in the same transactions (tally).
func removeIdle(ctx context.Context, db *gorm.DB, appID uint64, cutoff time.Time, jobID uint64, res *EraseResult) error {
	for lastDevice := ""; ; {
		var ids []string
		err := db.WithContext(ctx).Model(&Device{}).
			Where("app_id = ? AND device_id > ? AND last_seen_at < ? AND NOT EXISTS (SELECT 1 FROM events e WHERE e.app_id = devices.app_id AND e.device_id = devices.device_id)", appID, lastDevice, cutoff).
			Order("device_id").Limit(500).Pluck("device_id", &ids).Error
		if err != nil {
			return err
		}
		if len(ids) == 0 {
			break
		}
		lastDevice = ids[len(ids)-1]
		var part EraseResult
		err = withRetry(ctx, func() error {
			part = EraseResult{}
			return db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
				var locked []string
				// Recheck under the lock: a trigger may have come since.
				err := forUpdate(tx.Model(&Device{})).
					Where("app_id = ? AND device_id IN ? AND last_seen_at < ? AND NOT EXISTS (SELECT 1 FROM events e WHERE e.app_id = devices.app_id AND e.device_id = devices.device_id)", appID, ids, cutoff).
					Pluck("device_id", &locked).Error
				if err != nil || len(locked) == 0 {
					return err
				}
				if err := tx.Where("app_id = ? AND device_id IN ?", appID, locked).Delete(&DeviceMove{}).Error; err != nil {
					return err
				}
				d := tx.Where("app_id = ? AND device_id IN ?", appID, locked).Delete(&Device{})
				if d.Error != nil {
					return d.Error
				}
				part.DeletedDevices = d.RowsAffected
				forgetRecentDevices(db, appID, locked)
				return tally(tx, jobID, &part)
			})
		})
		if err != nil {
			return err
		}
		res.DeletedDevices += part.DeletedDevices
		if len(ids) < 500 {
			break
		}
	}
	for lastLead := uint64(0); ; {
		var ids []uint64
		err := db.WithContext(ctx).Model(&Lead{}).
			Where("app_id = ? AND id > ? AND updated_at < ? AND NOT EXISTS (SELECT 1 FROM devices d WHERE d.app_id = leads.app_id AND d.lead_id = leads.id)", appID, lastLead, cutoff).
			Order("id").Limit(500).Pluck("id", &ids).Error
		if err != nil {
			return err
		}
		if len(ids) == 0 {
			return nil
		}
		lastLead = ids[len(ids)-1]
		var part EraseResult
		err = withRetry(ctx, func() error {
			part = EraseResult{}
			return db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
				var locked []uint64
				err := forUpdate(tx.Model(&Lead{})).
					Where("id IN ? AND updated_at < ? AND NOT EXISTS (SELECT 1 FROM devices d WHERE d.app_id = leads.app_id AND d.lead_id = leads.id)", ids, cutoff).
					Pluck("id", &locked).Error
				if err != nil || len(locked) == 0 {
					return err
				}
				if err := tx.Where("to_lead_id IN ? OR from_lead_id IN ?", locked, locked).Delete(&DeviceMove{}).Error; err != nil {
					return err
				}
				d := tx.Where("id IN ?", locked).Delete(&Lead{})
				if d.Error != nil {
					return d.Error
				}
				part.DeletedLeads = d.RowsAffected
				return tally(tx, jobID, &part)
			})
		})
		if err != nil {
			return err
		}
		res.DeletedLeads += part.DeletedLeads
		if len(ids) < 500 {
			return nil
		}
	}
}
