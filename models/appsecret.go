package models

import (
	"context"
	"errors"
	"strings"
	"time"

	"gorm.io/gorm"
)

// secretEntry is a remembered answer of AppForSecret.
type secretEntry struct {
	publicID   string
	at         time.Time
	generation uint64
}

// maxRememberedSecrets bounds the secrets the catalog remembers; past it
// the map is emptied (keys of live apps are few, wrong ones are not kept).
const maxRememberedSecrets = 10000

// AppForSecret returns the public id of the app whose current secret key
// this is, for endpoints where the key is the only credential (Segment's
// write key). Like a trigger with a wrong key, a key that matches no app
// costs the client IP a failed lookup, and once those are over the per-IP
// rate its requests are refused before the store is read. Answers are
// remembered for the catalog's TTL; rotating a key clears them on this
// replica at once (the trigger that follows checks the key again against
// the app, so a rotated key on another replica stops within the TTL).
func (w *Writer) AppForSecret(ctx context.Context, secret, clientIP string) (string, error) {
	if !strings.HasPrefix(secret, "sk_") || len(secret) > 128 || !printable(secret) {
		return "", newError(ErrUnauthenticated, "the key is not an app's secret key")
	}
	now := Now()
	if err := w.limits.checkBeforeLookup(clientIP, true, now); err != nil {
		return "", err
	}
	c := w.catalog
	hash := hashSecret(secret)
	gen := c.generation.Load()
	if v, ok := c.secrets.Load(hash); ok {
		if e := v.(secretEntry); e.generation == gen && time.Since(e.at) < c.ttl {
			return e.publicID, nil
		}
	}
	var app App
	lookupCtx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	err := c.db.WithContext(lookupCtx).Select("public_id").Where("secret_hash = ?", hash).Take(&app).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		err = newError(ErrUnauthenticated, "the key is not an app's current secret key")
		w.limits.lookupFailed(clientIP, true, err, now)
		return "", err
	}
	if err != nil {
		return "", err
	}
	n := 0
	c.secrets.Range(func(any, any) bool { n++; return n < maxRememberedSecrets })
	if n >= maxRememberedSecrets {
		c.secrets.Clear()
	}
	c.secrets.Store(hash, secretEntry{publicID: app.PublicID, at: time.Now(), generation: gen})
	return app.PublicID, nil
}
