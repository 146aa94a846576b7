package models

import (
	"context"
	"errors"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"gorm.io/gorm"
)

// Device is one browser or install, known by its client-generated id within an app.
type Device struct {
	AppID       uint64    `gorm:"primaryKey;autoIncrement:false;index:idx_devices_app_lead_seen,priority:1"`
	DeviceID    string    `gorm:"primaryKey;size:128"`
	LeadID      *uint64   `gorm:"index:idx_devices_app_lead_seen,priority:2"`
	UserAgent   string    `gorm:"size:512;not null"`
	FirstSeenAt time.Time `gorm:"not null;index:idx_devices_app_lead_seen,priority:4"`
	LastSeenAt  time.Time `gorm:"not null;index:idx_devices_app_lead_seen,priority:3"`
}

// DeviceMove records a device re-identified from one lead to another.
type DeviceMove struct {
	ID         uint64    `gorm:"primaryKey"`
	AppID      uint64    `gorm:"not null;index:idx_device_moves_app_device,priority:1"`
	DeviceID   string    `gorm:"size:128;not null;index:idx_device_moves_app_device,priority:2"`
	FromLeadID *uint64   `gorm:"index"`
	ToLeadID   uint64    `gorm:"not null;index"`
	MovedAt    time.Time `gorm:"not null"`
}

// ValidateDeviceID checks a client-generated device id: 1 to 128 bytes of
// printable UTF-8.
func ValidateDeviceID(id string) error {
	if id == "" || len(id) > 128 || !printable(id) {
		return Invalid("deviceId", "must be 1 to 128 printable characters")
	}
	return nil
}

// validateSentDeviceID is ValidateDeviceID for the ids that triggers and
// identifies store: "." and ".." are refused too, since no URL path can hold
// them (browsers resolve them as "this" and "the parent" folder), so the
// dashboard could never open such a device's page. Look-ups and erasures
// still take them, for devices stored before.
func validateSentDeviceID(id string) error {
	if id == "." || id == ".." {
		return Invalid("deviceId", "must not be \".\" or \"..\"")
	}
	return ValidateDeviceID(id)
}

// ValidateSentDeviceID is the check a device id a trigger or identify
// stores passes, for callers that name a device before sending it on.
func ValidateSentDeviceID(id string) error { return validateSentDeviceID(id) }

// printable reports whether s is valid UTF-8 of printable characters only,
// as identifiers (device ids, message ids) must be: they are compared
// exactly and stored in utf8mb4 columns, which refuse invalid UTF-8.
func printable(s string) bool {
	return utf8.ValidString(s) && strings.IndexFunc(s, func(r rune) bool { return !unicode.IsPrint(r) }) < 0
}

// DeviceByID returns one device of the app with this public id.
func DeviceByID(ctx context.Context, db *gorm.DB, v Viewer, appPublicID, deviceID string) (*Device, error) {
	app, err := v.App(ctx, db, appPublicID, RoleViewer)
	if err != nil {
		return nil, err
	}
	if err := ValidateDeviceID(deviceID); err != nil {
		return nil, err
	}
	var d Device
	err = db.WithContext(ctx).Where("app_id = ? AND device_id = ?", app.ID, deviceID).Take(&d).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, newError(ErrNotFound, "device not found")
	}
	return &d, err
}

// DeviceKey names a device across apps, for dataloaders.
type DeviceKey struct {
	AppID    uint64
	DeviceID string
}

// DevicesByKey loads devices by (app, device id), for dataloaders.
func DevicesByKey(ctx context.Context, db *gorm.DB, keys []DeviceKey) (map[DeviceKey]*Device, error) {
	byApp := map[uint64][]string{}
	for _, k := range keys {
		byApp[k.AppID] = append(byApp[k.AppID], k.DeviceID)
	}
	out := make(map[DeviceKey]*Device, len(keys))
	for appID, ids := range byApp {
		var devices []*Device
		if err := db.WithContext(ctx).Where("app_id = ? AND device_id IN ?", appID, ids).Find(&devices).Error; err != nil {
			return nil, err
		}
		for _, d := range devices {
			out[DeviceKey{d.AppID, d.DeviceID}] = d
		}
	}
	return out, nil
}

// DevicesByLead loads the devices of each lead, for dataloaders.
func DevicesByLead(ctx context.Context, db *gorm.DB, leadIDs []uint64) (map[uint64][]*Device, error) {
	var devices []*Device
	if err := db.WithContext(ctx).Where("lead_id IN ?", leadIDs).Order("first_seen_at, device_id").Find(&devices).Error; err != nil {
		return nil, err
	}
	out := make(map[uint64][]*Device, len(leadIDs))
	for _, d := range devices {
		out[*d.LeadID] = append(out[*d.LeadID], d)
	}
	return out, nil
}

// DeviceMovesByLead loads the moves to or away from each lead, newest first.
func DeviceMovesByLead(ctx context.Context, db *gorm.DB, leadIDs []uint64) (map[uint64][]*DeviceMove, error) {
	var moves []*DeviceMove
	err := db.WithContext(ctx).Where("to_lead_id IN ? OR from_lead_id IN ?", leadIDs, leadIDs).
		Order("moved_at DESC, id DESC").Find(&moves).Error
	if err != nil {
		return nil, err
	}
	out := make(map[uint64][]*DeviceMove, len(leadIDs))
	for _, m := range moves {
		out[m.ToLeadID] = append(out[m.ToLeadID], m)
		if m.FromLeadID != nil && *m.FromLeadID != m.ToLeadID {
			out[*m.FromLeadID] = append(out[*m.FromLeadID], m)
		}
	}
	return out, nil
}
