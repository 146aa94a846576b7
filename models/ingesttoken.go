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

// IngestToken lets a webhook sender (Zapier, a back office, a billing
// system) record events for one app through a URL that holds the token:
// /webhooks/{token}/{integration}/track. Only its SHA-256 is stored; the
// token itself is shown once, when it is made.
type IngestToken struct {
	ID        uint64     `gorm:"primaryKey"`
	AppID     uint64     `gorm:"not null;index:idx_ingest_tokens_app"`
	Name      string     `gorm:"size:100;not null"`
	TokenHash string     `gorm:"size:64;not null;uniqueIndex:idx_ingest_tokens_hash"`
	Hint      string     `gorm:"size:16;not null"`
	CreatedAt time.Time  `gorm:"not null"`
	RevokedAt *time.Time `gorm:"index:idx_ingest_tokens_app_revoked"`
}

// ingestTokenPrefix starts every ingest token, so one is told from a key.
const ingestTokenPrefix = "it_"

// maxIngestTokens bounds an app's live tokens.
const maxIngestTokens = 50

// CreateIngestToken makes a named token for the app and returns it with the
// token itself, which is shown only now. Owners and editors only (signed in:
// a secret key cannot mint credentials that outlive its rotation).
func CreateIngestToken(ctx context.Context, db *gorm.DB, v Viewer, appPublicID, name string) (*IngestToken, string, error) {
	if _, err := v.RequireUser(); err != nil {
		return nil, "", err
	}
	name = strings.TrimSpace(name)
	if name == "" || utf8.RuneCountInString(name) > 100 || strings.IndexFunc(name, unicode.IsControl) >= 0 || !utf8.ValidString(name) {
		return nil, "", Invalid("name", "must be 1 to 100 characters, without control characters")
	}
	app, err := v.App(ctx, db, appPublicID, RoleEditor)
	if err != nil {
		return nil, "", err
	}
	var live int64
	if err := db.WithContext(ctx).Model(&IngestToken{}).Where("app_id = ? AND revoked_at IS NULL", app.ID).Count(&live).Error; err != nil {
		return nil, "", err
	}
	if live >= maxIngestTokens {
		return nil, "", Invalid("name", "an app has at most %d live ingest tokens: revoke one first", maxIngestTokens)
	}
	token := ingestTokenPrefix + randomToken(32)
	t := &IngestToken{AppID: app.ID, Name: name, TokenHash: hashSecret(token), Hint: token[:7], CreatedAt: Now()}
	if err := db.WithContext(ctx).Create(t).Error; err != nil {
		return nil, "", err
	}
	return t, token, nil
}

// IngestTokens lists the app's tokens, live ones first, newest first, to
// its owners and editors.
func IngestTokens(ctx context.Context, db *gorm.DB, v Viewer, appPublicID string) ([]*IngestToken, error) {
	app, err := v.App(ctx, db, appPublicID, RoleEditor)
	if err != nil {
		return nil, err
	}
	var out []*IngestToken
	err = db.WithContext(ctx).Where("app_id = ?", app.ID).
		Order("CASE WHEN revoked_at IS NULL THEN 0 ELSE 1 END, id DESC").Limit(200).Find(&out).Error
	return out, err
}

// RevokeIngestToken stops a token: at once on this replica (the cache is
// cleared here), within CRUMBS_CACHE_TTL on others. Revoking a revoked
// token changes nothing. Owners and editors only.
func RevokeIngestToken(ctx context.Context, db *gorm.DB, v Viewer, id string) (*IngestToken, error) {
	if _, err := v.RequireUser(); err != nil {
		return nil, err
	}
	t, err := viewByID(ctx, db, v, id, RoleEditor, "ingest token", func(t *IngestToken) uint64 { return t.AppID })
	if err != nil {
		return nil, err
	}
	if t.RevokedAt == nil {
		now := Now()
		if err := db.WithContext(ctx).Model(t).Where("revoked_at IS NULL").Update("revoked_at", now).Error; err != nil {
			return nil, err
		}
		t.RevokedAt = &now
	}
	clearCatalogs(db)
	return t, nil
}

// tokenEntry is a remembered answer of AppForIngestToken.
type tokenEntry struct {
	publicID   string
	at         time.Time
	generation uint64
}

// AppForIngestToken returns the public id of the app a live ingest token
// belongs to. A token that is unknown or revoked costs the client IP a
// failed lookup, as a wrong secret key does, and once those are over the
// per-IP rate the IP's requests are refused before the store is read.
// Answers are remembered for the catalog's TTL (CRUMBS_CACHE_TTL).
func (w *Writer) AppForIngestToken(ctx context.Context, token, clientIP string) (string, error) {
	refused := newError(ErrUnauthenticated, "the ingest token is unknown or revoked")
	if !strings.HasPrefix(token, ingestTokenPrefix) || len(token) > 64 || !printable(token) {
		return "", refused
	}
	now := Now()
	if err := w.limits.checkBeforeLookup(clientIP, true, now); err != nil {
		return "", err
	}
	c := w.catalog
	hash := hashSecret(token)
	gen := c.generation.Load()
	if v, ok := c.tokens.Load(hash); ok {
		if e := v.(tokenEntry); e.generation == gen && time.Since(e.at) < c.ttl {
			return e.publicID, nil
		}
	}
	lookupCtx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	var row struct{ PublicID string }
	err := c.db.WithContext(lookupCtx).Table("ingest_tokens").Select("apps.public_id").
		Joins("JOIN apps ON apps.id = ingest_tokens.app_id AND apps.deleted_at IS NULL").
		Where("ingest_tokens.token_hash = ? AND ingest_tokens.revoked_at IS NULL", hash).Take(&row).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		w.limits.lookupFailed(clientIP, true, refused, now)
		return "", refused
	}
	if err != nil {
		return "", err
	}
	n := 0
	c.tokens.Range(func(any, any) bool { n++; return n < maxRememberedSecrets })
	if n >= maxRememberedSecrets {
		c.tokens.Clear()
	}
	c.tokens.Store(hash, tokenEntry{publicID: row.PublicID, at: time.Now(), generation: gen})
	return row.PublicID, nil
}
