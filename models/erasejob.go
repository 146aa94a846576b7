package models

import (
	"context"
	"errors"
	"strconv"
	"time"

	"gorm.io/gorm"
)

// EraseJob is one erasure, from the request that asks for it until its
// receipt. It is stored before the first event goes, so an erasure outlives
// the request (eraser.go runs it detached, and resumes it after a crash),
// and its counts grow in the transactions that delete, so they stay exact
// whichever replica finishes it. The receipt is written once, with the
// complete counts, in the transaction that marks the job done.
type EraseJob struct {
	ID    uint64 `gorm:"primaryKey"`
	AppID uint64 `gorm:"not null;uniqueIndex:idx_erase_jobs_pending,priority:1"`
	// Kind is AuditEraseLead, AuditEraseDevice or AuditEraseBefore.
	Kind string `gorm:"size:32;not null;uniqueIndex:idx_erase_jobs_pending,priority:2"`
	// PendingKey names the subject while the erasure runs and is NULL once
	// it is done: one erasure of a subject runs at a time, and asking again
	// meanwhile joins it.
	PendingKey *string `gorm:"size:64;uniqueIndex:idx_erase_jobs_pending,priority:3"`
	// The subject: the lead, the device (cleared when done, so no device id
	// is kept past the erasure), or the date.
	LeadID   uint64 `gorm:"not null"`
	DeviceID string `gorm:"size:128;not null"`
	Before   *time.Time
	// Who asked, and the subject's hash, for the receipt.
	ActorKind   string `gorm:"size:16;not null"`
	ActorUserID *uint64
	SubjectHash string `gorm:"size:64;not null"`
	Erased      bool   `gorm:"not null"`
	// Counts of what the committed transactions removed so far.
	Events     int64 `gorm:"not null"`
	Devices    int64 `gorm:"not null"`
	Leads      int64 `gorm:"not null"`
	Tombstones int64 `gorm:"not null"`
	ReceiptID  *uint64
	CreatedAt  time.Time  `gorm:"not null"`
	DoneAt     *time.Time `gorm:"index:idx_erase_jobs_done"`
	// Failures counts the runs that failed part way (what they committed
	// stays); LastFailureCode is the public error code of the last one,
	// at LastFailureAt. The Eraser waits longer after each before it
	// resumes the erasure (eraseRetryDelay).
	Failures        int     `gorm:"not null;default:0"`
	LastFailureCode *string `gorm:"size:32"`
	LastFailureAt   *time.Time
}

// result is what the job says so far.
func (j *EraseJob) result() *EraseResult {
	res := &EraseResult{
		ErasureID: j.ID, Done: j.DoneAt != nil,
		Erased:        j.Erased || j.Events+j.Devices+j.Leads > 0,
		DeletedEvents: j.Events, DeletedDevices: j.Devices, DeletedLeads: j.Leads, Tombstones: j.Tombstones,
	}
	if j.ReceiptID != nil {
		res.ReceiptID = *j.ReceiptID
	}
	res.Failures, res.LastFailureCode, res.LastFailureAt = j.Failures, j.LastFailureCode, j.LastFailureAt
	return res
}

// noteEraseFailure counts a run of the job that failed with err, with the
// public code of err (no text: an erase hook's or the store's error may
// say more than a caller may read; the server log has it).
func noteEraseFailure(db *gorm.DB, jobID uint64, err error) error {
	ctx, cancel := context.WithTimeout(context.Background(), dbCallTimeout)
	defer cancel()
	code, _ := Code(err)
	return db.WithContext(ctx).Exec("UPDATE erase_jobs SET failures = failures + 1, last_failure_code = ?, last_failure_at = ? WHERE id = ? AND done_at IS NULL",
		code, Now(), jobID).Error
}

// eraseRetryDelay is how long after its last failure an erasure that
// failed n times is resumed: half the lease after the first, doubling up
// to an hour, so that one that keeps failing (an erase hook that always
// errs) neither stops for good nor fills the log.
func eraseRetryDelay(n int, leaseTTL time.Duration) time.Duration {
	d := leaseTTL / 2
	for i := 1; i < n && d < time.Hour; i++ {
		d *= 2
	}
	return min(d, time.Hour)
}

// eraseDue says whether the pending job may be resumed at now.
func (j *EraseJob) eraseDue(now time.Time, leaseTTL time.Duration) bool {
	return j.Failures == 0 || j.LastFailureAt == nil || !now.Before(j.LastFailureAt.Add(eraseRetryDelay(j.Failures, leaseTTL)))
}

// leaseName is the job_leases row of the replica running the job.
func (j *EraseJob) leaseName() string { return "erase:" + strconv.FormatUint(j.ID, 10) }

// newEraseJob starts a job of kind for what v asked about subject; key
// names the subject among the app's pending erasures of that kind.
func newEraseJob(v *Viewer, appID uint64, kind, subject, key string) *EraseJob {
	r := newAuditRecord(v, appID, kind, subject)
	return &EraseJob{AppID: appID, Kind: kind, PendingKey: &key, ActorKind: r.ActorKind, ActorUserID: r.ActorUserID,
		SubjectHash: r.SubjectHash, CreatedAt: Now()}
}

// createEraseJob stores the job, or returns the pending erasure of the
// same subject if there is one (two requests to erase one person run one
// erasure and share its receipt).
func createEraseJob(ctx context.Context, db *gorm.DB, job *EraseJob) (*EraseJob, error) {
	for range 3 {
		err := db.WithContext(ctx).Create(job).Error
		if !errors.Is(err, gorm.ErrDuplicatedKey) {
			return job, err
		}
		var pending []*EraseJob
		err = db.WithContext(ctx).Where("app_id = ? AND kind = ? AND pending_key = ?", job.AppID, job.Kind, *job.PendingKey).Limit(1).Find(&pending).Error
		if err != nil {
			return nil, err
		}
		if len(pending) == 1 {
			return pending[0], nil
		}
		job.ID = 0 // it finished meanwhile: start another
	}
	return nil, newError(ErrConflict, "models.createEraseJob: the same erasure keeps finishing and starting")
}

// errEraseDone says another run of the job has finished it: what this one
// did in its transaction is rolled back.
var errEraseDone = errors.New("models: the erasure was finished by another run")

// tally adds what a transaction removed to the job's counts, in that
// transaction, so the counts hold exactly what committed. jobID 0 is a
// retention run, which counts in memory.
func tally(tx *gorm.DB, jobID uint64, part *EraseResult) error {
	if jobID == 0 || part.DeletedEvents+part.DeletedDevices+part.DeletedLeads+part.Tombstones == 0 {
		return nil
	}
	res := tx.Exec("UPDATE erase_jobs SET events = events + ?, devices = devices + ?, leads = leads + ?, tombstones = tombstones + ? WHERE id = ? AND done_at IS NULL",
		part.DeletedEvents, part.DeletedDevices, part.DeletedLeads, part.Tombstones, jobID)
	if res.Error == nil && res.RowsAffected != 1 {
		return errEraseDone
	}
	return res.Error
}

// finishEraseJob ends the job in tx, the erasure's last transaction: with
// part, what tx removed, it reads the complete counts (the erasure erased
// something when erased or when they are not zero), calls the erase
// hooks and writes the receipt when something was erased (an erasure by
// date always has one), and marks the job done. Another run that finished
// it first makes it fail with errEraseDone, so the receipt is written once.
func finishEraseJob(tx *gorm.DB, job *EraseJob, part *EraseResult, erased bool, e Erasure) (*EraseResult, error) {
	var row EraseJob
	if err := forUpdate(tx).Where("id = ? AND done_at IS NULL", job.ID).Limit(1).Find(&row).Error; err != nil {
		return nil, err
	}
	if row.ID == 0 {
		return nil, errEraseDone
	}
	row.Events += part.DeletedEvents
	row.Devices += part.DeletedDevices
	row.Leads += part.DeletedLeads
	row.Tombstones += part.Tombstones
	row.Erased = erased || row.Events+row.Devices+row.Leads > 0
	if row.Erased || row.Kind == AuditEraseBefore {
		if err := runEraseHooks(tx, e); err != nil {
			return nil, err
		}
		r := &AuditRecord{AppID: row.AppID, Kind: row.Kind, ActorKind: row.ActorKind, ActorUserID: row.ActorUserID, SubjectHash: row.SubjectHash,
			Events: row.Events, Devices: row.Devices, Leads: row.Leads, Tombstones: row.Tombstones, CreatedAt: Now()}
		if err := tx.Create(r).Error; err != nil {
			return nil, err
		}
		row.ReceiptID = &r.ID
	}
	now := Now()
	err := tx.Model(&EraseJob{}).Where("id = ?", row.ID).Updates(map[string]any{
		"pending_key": nil, "device_id": "", "erased": row.Erased, "events": row.Events, "devices": row.Devices,
		"leads": row.Leads, "tombstones": row.Tombstones, "receipt_id": row.ReceiptID, "done_at": now,
	}).Error
	if err != nil {
		return nil, err
	}
	if err := tx.Exec("DELETE FROM job_leases WHERE name = ?", row.leaseName()).Error; err != nil {
		return nil, err
	}
	row.DoneAt = &now
	return row.result(), nil
}

// loadEraseJob reads the job as it stands.
func loadEraseJob(ctx context.Context, db *gorm.DB, id uint64) (*EraseJob, error) {
	var job EraseJob
	if err := db.WithContext(ctx).Where("id = ?", id).Limit(1).Find(&job).Error; err != nil {
		return nil, err
	}
	if job.ID == 0 {
		return nil, newError(ErrNotFound, "erasure %d not found", id)
	}
	return &job, nil
}

// ErasureStatus says how far the app's erasure id has gone: its counts so far,
// and once done, the final ones and the receipt. Whoever may start an
// erasure of its kind may follow it: editors, owners and the app's secret
// key for a lead or a device, owners for an erasure by date.
func ErasureStatus(ctx context.Context, db *gorm.DB, v Viewer, appPublicID, id string) (*EraseResult, error) {
	app, err := v.App(ctx, db, appPublicID, RoleEditor)
	if err != nil {
		return nil, err
	}
	jobID, err := ParseID("id", id)
	if err != nil {
		return nil, err
	}
	job, err := loadEraseJob(ctx, db, jobID)
	if err != nil {
		return nil, err
	}
	if job.AppID != app.ID {
		return nil, newError(ErrNotFound, "erasure %s not found", id)
	}
	if job.Kind == AuditEraseBefore {
		if _, err := v.App(ctx, db, appPublicID, RoleOwner); err != nil {
			return nil, err
		}
	}
	return job.result(), nil
}

// pruneEraseJobs deletes the records of erasures done longer than
// TombstoneLifetime ago; their receipts stay.
func pruneEraseJobs(ctx context.Context, db *gorm.DB, now time.Time) error {
	for {
		var ids []uint64
		err := db.WithContext(ctx).Model(&EraseJob{}).Where("done_at < ?", now.Add(-TombstoneLifetime)).Order("done_at").Limit(1000).Pluck("id", &ids).Error
		if err != nil || len(ids) == 0 {
			return err
		}
		if err := db.WithContext(ctx).Where("id IN ?", ids).Delete(&EraseJob{}).Error; err != nil {
			return err
		}
	}
}
