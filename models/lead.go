package models

import (
	"context"
	"encoding/json"
	"errors"
	"net/mail"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// Lead is an identified person, by email, in one app. It owns one or more devices.
type Lead struct {
	ID        uint64     `gorm:"primaryKey"`
	AppID     uint64     `gorm:"not null;uniqueIndex:idx_leads_app_email,priority:1"`
	Email     string     `gorm:"size:254;not null"`
	EmailKey  string     `gorm:"size:254;not null;uniqueIndex:idx_leads_app_email,priority:2"`
	Name      *string    `gorm:"size:200"`
	Fields    JSONObject `gorm:"type:text;not null"`
	CreatedAt time.Time  `gorm:"not null"`
	UpdatedAt time.Time  `gorm:"not null"`
}

// IdentifyInput attaches a device to the lead with Email.
type IdentifyInput struct {
	AppPublicID string
	DeviceID    string
	Email       string
	Name        *string
	Fields      map[string]any
	UserAgent   string
	// Secret and Origin: identifying by email needs the app's secret key,
	// or a browser (an Origin header) on one of the app's allowed origins.
	Secret string
	Origin string
	// ClientIP is the sender's address, for per-IP rate limits.
	ClientIP string
	// Verified says the caller proved another way that it acts for the app
	// (an ingest token): it is treated as holding the secret key.
	Verified bool
	// Limits are the per-IP and per-device limits the request is under
	// (the writer's, shared with triggers); nil means none.
	Limits *RateLimits
}

// IdentifyResult is what Identify did.
type IdentifyResult struct {
	Lead   *Lead
	Device *Device
	Moved  bool
}

// maxFieldsBytes bounds a lead's fields as JSON, after merging.
const maxFieldsBytes = 8 << 10

// NormalizeEmail validates an email address and returns it with its lookup key.
func NormalizeEmail(raw string) (email, key string, err error) {
	email = strings.TrimSpace(raw)
	addr, perr := mail.ParseAddress(email)
	if perr != nil || addr.Address != email || len(email) > 254 {
		return "", "", Invalid("email", "is not a valid email address")
	}
	return email, strings.ToLower(email), nil
}

// Identify finds or creates the lead by email (case-insensitively) and attaches
// the device to it, recording a move when the device belonged to another lead.
// It is an anonymous write like a trigger, under the same per-IP and
// per-device limits (the same buckets: an identify costs one trigger), from
// which a caller with the secret key is exempt.
func Identify(ctx context.Context, db *gorm.DB, catalog *Catalog, in IdentifyInput) (*IdentifyResult, error) {
	limits := in.Limits
	if err := checkAppID(in.AppPublicID); err != nil {
		return nil, err
	}
	if err := ValidateDeviceID(in.DeviceID); err != nil {
		return nil, err
	}
	email, key, err := NormalizeEmail(in.Email)
	if err != nil {
		return nil, err
	}
	if in.Name != nil {
		name := strings.TrimSpace(*in.Name)
		if utf8.RuneCountInString(name) > 200 || strings.IndexFunc(name, unicode.IsControl) >= 0 {
			return nil, Invalid("name", "must be at most 200 characters, without control characters")
		}
		name = strings.ToValidUTF8(name, "\uFFFD")
		in.Name = &name
	}
	if in.Fields != nil {
		if in.Fields, err = cleanJSONObject("fields", in.Fields); err != nil {
			return nil, err
		}
		if b, _ := json.Marshal(in.Fields); len(b) > maxFieldsBytes {
			return nil, Invalid("fields", "must be at most %d bytes as JSON", maxFieldsBytes)
		}
	}
	keyed := in.Secret != "" || in.Verified
	if !keyed && in.Origin == "" {
		return nil, newError(ErrUnauthenticated, "identify from a server needs the app's secret key")
	}
	now := Now()
	if err := limits.beforeLookup(in.ClientIP, keyed, now); err != nil {
		return nil, err
	}
	app, err := catalog.App(ctx, in.AppPublicID)
	if err != nil {
		limits.lookupFailed(in.ClientIP, keyed, err, now)
		return nil, err
	}
	switch {
	case in.Verified:
	case in.Secret != "" && !app.SecretMatches(in.Secret):
		limits.lookupFailed(in.ClientIP, true, ErrUnauthenticated, now)
		return nil, newError(ErrUnauthenticated, "the secret key is not this app's current key")
	case in.Secret == "" && !app.OriginAllowed(in.Origin):
		return nil, &refusedOriginError{newError(ErrForbidden, "origin %q may not identify visitors of this app", truncate(in.Origin, 100)), app.ID, in.Origin}
	}
	if err := limits.allowDevice(in.AppPublicID+"\x00"+in.DeviceID, keyed, now); err != nil {
		return nil, err
	}
	var res *IdentifyResult
	err = withRetry(ctx, func() error {
		res = &IdentifyResult{}
		return db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
			lead, err := findOrCreateLead(tx, app.ID, email, key)
			if err != nil {
				return err
			}
			applyLeadInput(lead, in)
			if b, _ := json.Marshal(lead.Fields); len(b) > maxFieldsBytes {
				return Invalid("fields", "would make the lead's fields larger than %d bytes as JSON", maxFieldsBytes)
			}
			if err := tx.Select("Name", "Fields", "UpdatedAt").Save(lead).Error; err != nil {
				return err
			}
			now := Now()
			device := &Device{AppID: app.ID, DeviceID: in.DeviceID, UserAgent: truncate(in.UserAgent, 500), FirstSeenAt: now, LastSeenAt: now}
			if err := tx.Clauses(clause.OnConflict{DoNothing: true}).Create(device).Error; err != nil {
				return err
			}
			if err := forUpdate(tx).Where("app_id = ? AND device_id = ?", app.ID, in.DeviceID).Take(device).Error; err != nil {
				return err
			}
			if device.LeadID == nil || *device.LeadID != lead.ID {
				if device.LeadID != nil {
					res.Moved = true
					move := &DeviceMove{AppID: app.ID, DeviceID: in.DeviceID, FromLeadID: device.LeadID, ToLeadID: lead.ID, MovedAt: now}
					if err := tx.Create(move).Error; err != nil {
						return err
					}
				}
				device.LeadID = &lead.ID
				err := tx.Model(&Device{}).Where("app_id = ? AND device_id = ?", app.ID, in.DeviceID).Update("lead_id", lead.ID).Error
				if err != nil {
					return err
				}
			}
			res.Lead, res.Device = lead, device
			return nil
		})
	})
	return res, err
}

func findOrCreateLead(tx *gorm.DB, appID uint64, email, key string) (*Lead, error) {
	var lead Lead
	err := tx.Where("app_id = ? AND email_key = ?", appID, key).Take(&lead).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		lead = Lead{AppID: appID, Email: email, EmailKey: key, Fields: JSONObject{}}
		err = tx.Create(&lead).Error
	}
	return &lead, err
}

// Identify is the package's Identify with this writer's catalog and
// limits, counting a browser refused for its origin in the app's
// refusedOrigins as a trigger is.
func (w *Writer) Identify(ctx context.Context, db *gorm.DB, in IdentifyInput) (*IdentifyResult, error) {
	in.Limits = w.limits
	res, err := Identify(ctx, db, w.catalog, in)
	w.origins.count(err, Now())
	return res, err
}

func applyLeadInput(lead *Lead, in IdentifyInput) {
	if in.Name != nil {
		lead.Name = in.Name
		if *in.Name == "" {
			lead.Name = nil
		}
	}
	if lead.Fields == nil {
		lead.Fields = JSONObject{}
	}
	for k, v := range in.Fields {
		if v == nil {
			delete(lead.Fields, k)
		} else {
			lead.Fields[k] = v
		}
	}
	lead.UpdatedAt = Now()
}

// forUpdate locks the selected rows on MySQL; SQLite's write transactions
// are already exclusive.
func forUpdate(tx *gorm.DB) *gorm.DB {
	if isMySQL(tx) {
		return tx.Clauses(clause.Locking{Strength: "UPDATE"})
	}
	return tx
}

// LeadByID returns one lead, if the viewer may see its app.
func LeadByID(ctx context.Context, db *gorm.DB, v Viewer, id string) (*Lead, error) {
	return viewByID(ctx, db, v, id, RoleViewer, "lead", func(l *Lead) uint64 { return l.AppID })
}

// LeadByEmail returns the lead of the app with this email, case-insensitively,
// or nil when there is none.
func LeadByEmail(ctx context.Context, db *gorm.DB, v Viewer, appPublicID, email string) (*Lead, error) {
	app, err := v.App(ctx, db, appPublicID, RoleViewer)
	if err != nil {
		return nil, err
	}
	_, key, err := NormalizeEmail(email)
	if err != nil {
		return nil, err
	}
	var lead Lead
	err = db.WithContext(ctx).Where("app_id = ? AND email_key = ?", app.ID, key).Take(&lead).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, nil
	}
	return &lead, err
}

// LeadsByID loads leads by id, for dataloaders.
func LeadsByID(ctx context.Context, db *gorm.DB, ids []uint64) (map[uint64]*Lead, error) {
	return loadByID(ctx, db, ids, func(l *Lead) uint64 { return l.ID })
}

// LeadPage is one page of leads, newest first.
type LeadPage struct {
	Leads       []*Lead
	HasNextPage bool
}

// Leads lists an app's leads, newest first; search matches email or name.
func Leads(ctx context.Context, db *gorm.DB, v Viewer, appPublicID, search string, first int, after string) (*LeadPage, error) {
	app, err := v.App(ctx, db, appPublicID, RoleViewer)
	if err != nil {
		return nil, err
	}
	if err := checkFirst(first); err != nil {
		return nil, err
	}
	q := db.WithContext(ctx).Where("app_id = ?", app.ID)
	if after != "" {
		id, err := ParseID("after", after)
		if err != nil {
			return nil, err
		}
		q = q.Where("id < ?", id)
	}
	if s := strings.TrimSpace(search); s != "" {
		if len(s) > 254 {
			return nil, Invalid("search", "must be at most 254 characters")
		}
		pattern := "%" + escapeLike(strings.ToLower(s)) + "%"
		q = q.Where("(email_key LIKE ? ESCAPE '!' OR LOWER(name) LIKE ? ESCAPE '!')", pattern, pattern)
	}
	var leads []*Lead
	if err := q.Order("id DESC").Limit(first + 1).Find(&leads).Error; err != nil {
		return nil, err
	}
	page := &LeadPage{Leads: leads}
	if len(leads) > first {
		page.Leads, page.HasNextPage = leads[:first], true
	}
	return page, nil
}

func escapeLike(s string) string {
	return strings.NewReplacer("!", "!!", "%", "!%", "_", "!_").Replace(s)
}

func checkFirst(first int) error {
	if first < 1 || first > 500 {
		return Invalid("first", "must be between 1 and 500")
	}
	return nil
}

// LeadStats summarizes a lead's activity over all its devices.
type LeadStats struct {
	EventCount  int64
	FirstSeenAt *time.Time
	LastSeenAt  *time.Time
}

// LeadStatsByID computes the stats of each lead, for dataloaders.
func LeadStatsByID(ctx context.Context, db *gorm.DB, ids []uint64) (map[uint64]*LeadStats, error) {
	rows, err := db.WithContext(ctx).Table("devices AS d").
		Select("d.lead_id, COUNT(e.id), MIN(e.occurred_at), MAX(e.occurred_at)").
		Joins("JOIN events AS e ON e.app_id = d.app_id AND e.device_id = d.device_id").
		Where("d.lead_id IN ?", ids).Group("d.lead_id").Rows()
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := make(map[uint64]*LeadStats, len(ids))
	for rows.Next() {
		var id uint64
		var s LeadStats
		var first, last dbTime
		if err := rows.Scan(&id, &s.EventCount, &first, &last); err != nil {
			return nil, err
		}
		s.FirstSeenAt, s.LastSeenAt = first.ptr(), last.ptr()
		out[id] = &s
	}
	return out, rows.Err()
}
