package models

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"time"

	"gorm.io/gorm"
)

// Audit kinds: what a receipt records.
const (
	AuditEraseLead   = "erase_lead"
	AuditEraseDevice = "erase_device"
	AuditEraseBefore = "erase_before"
	AuditRetention   = "retention"
	AuditExport      = "export"
)

// Actor kinds of a receipt.
const (
	ActorUser      = "user"
	ActorSecretKey = "secret_key"
	ActorSystem    = "system" // the retention job
)

// AuditRecord is the receipt of one erasure, export or retention run. It
// holds no personal data: the subject (an email, a device id, a date, an
// export's filter) is kept only as its SHA-256, which proves what was asked
// to whoever knows the subject.
type AuditRecord struct {
	ID          uint64 `gorm:"primaryKey"`
	AppID       uint64 `gorm:"not null;index:idx_audit_records_app_id"`
	Kind        string `gorm:"size:32;not null"`
	ActorKind   string `gorm:"size:16;not null"`
	ActorUserID *uint64
	SubjectHash string `gorm:"size:64;not null"`
	// Counts of what was erased or exported.
	Events     int64     `gorm:"not null"`
	Devices    int64     `gorm:"not null"`
	Leads      int64     `gorm:"not null"`
	Tombstones int64     `gorm:"not null"`
	CreatedAt  time.Time `gorm:"not null"`
}

// SubjectHash is the hex SHA-256 a receipt keeps instead of its subject.
func SubjectHash(subject string) string {
	sum := sha256.Sum256([]byte(subject))
	return hex.EncodeToString(sum[:])
}

// newAuditRecord starts a receipt of kind for what v asked about subject.
func newAuditRecord(v *Viewer, appID uint64, kind, subject string) *AuditRecord {
	r := &AuditRecord{AppID: appID, Kind: kind, ActorKind: ActorSystem, SubjectHash: SubjectHash(subject), CreatedAt: Now()}
	switch {
	case v == nil:
	case v.UserID != 0:
		id := v.UserID
		r.ActorKind, r.ActorUserID = ActorUser, &id
	default:
		r.ActorKind = ActorSecretKey
	}
	return r
}

// AuditPage is one page of an app's receipts, newest first.
type AuditPage struct {
	Records     []*AuditRecord
	HasNextPage bool
}

// AuditLog lists the app's receipts, newest first, after the receipt id
// after (exclusive) when given. Owners only.
func AuditLog(ctx context.Context, db *gorm.DB, v Viewer, appPublicID string, first int, after string) (*AuditPage, error) {
	app, err := v.App(ctx, db, appPublicID, RoleOwner)
	if err != nil {
		return nil, err
	}
	if first < 0 || first > 200 {
		return nil, Invalid("first", "must be 0 to 200")
	}
	q := db.WithContext(ctx).Where("app_id = ?", app.ID)
	if after != "" {
		id, err := ParseID("after", after)
		if err != nil {
			return nil, err
		}
		q = q.Where("id < ?", id)
	}
	var rows []*AuditRecord
	if err := q.Order("id DESC").Limit(first + 1).Find(&rows).Error; err != nil {
		return nil, err
	}
	page := &AuditPage{Records: rows}
	if len(rows) > first {
		page.Records, page.HasNextPage = rows[:first], true
	}
	return page, nil
}
