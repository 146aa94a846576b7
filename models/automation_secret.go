package models

import (
	"context"
	"crypto/rand"
	"database/sql/driver"
	"encoding/base64"
	"slices"
	"time"

	"gorm.io/gorm"
)

// Rotation keeps every secret rotated out signing for signingOverlap after
// its rotation, at most maxRetiredSecrets of them: receivers switch at
// leisure, even after several rotations in a day.
const (
	signingOverlap    = 24 * time.Hour
	maxRetiredSecrets = 3
)

// newSigningSecret returns a Standard Webhooks secret: whsec_ and 24
// random bytes in base64.
func newSigningSecret() string {
	b := make([]byte, 24)
	rand.Read(b)
	return "whsec_" + base64.StdEncoding.EncodeToString(b)
}

// RetiredSecret is a signing secret rotated out; it signs until Until.
type RetiredSecret struct {
	Secret string    `json:"secret"`
	Until  time.Time `json:"until"`
}

// RetiredSecrets are stored as JSON, oldest first; NULL (an action saved
// by a release before migration 2026120503) reads as none.
type RetiredSecrets []RetiredSecret

// Value implements driver.Valuer.
func (l RetiredSecrets) Value() (driver.Value, error) {
	if l == nil {
		return "[]", nil
	}
	return jsonValue([]RetiredSecret(l))
}

// Scan implements sql.Scanner.
func (l *RetiredSecrets) Scan(src any) error {
	*l = nil
	return scanJSON(src, (*[]RetiredSecret)(l))
}

// retiredSecrets are the secrets rotated out that still sign at now,
// oldest first, at most maxRetiredSecrets. PreviousSecret counts among
// them: replicas of the releases before migration 2026120503 rotate into
// it alone while a rolling upgrade runs.
func (a *AutomationAction) retiredSecrets(now time.Time) []RetiredSecret {
	var out []RetiredSecret
	for _, r := range a.RetiredSecrets {
		if now.Before(r.Until) {
			out = append(out, r)
		}
	}
	if a.PreviousSecret != "" && a.PreviousUntil != nil && now.Before(*a.PreviousUntil) &&
		!slices.ContainsFunc(out, func(r RetiredSecret) bool { return r.Secret == a.PreviousSecret }) {
		out = append(out, RetiredSecret{Secret: a.PreviousSecret, Until: *a.PreviousUntil})
		slices.SortStableFunc(out, func(x, y RetiredSecret) int { return x.Until.Compare(y.Until) })
	}
	return out[max(0, len(out)-maxRetiredSecrets):]
}

// RetiredSecretExpiries are when the secrets rotated out that still sign
// stop signing, oldest first.
func (a *AutomationAction) RetiredSecretExpiries() []time.Time {
	retired := a.retiredSecrets(time.Now())
	out := make([]time.Time, len(retired))
	for i, r := range retired {
		out[i] = r.Until
	}
	return out
}

// rotateSecret replaces the signing secret; the old one signs for
// signingOverlap from now, with those rotated out before that still sign,
// the oldest dropped beyond maxRetiredSecrets. PreviousSecret and
// PreviousUntil are the newest retired secret, which is what replicas of
// the releases before migration 2026120503 sign with.
func (a *AutomationAction) rotateSecret(now time.Time) {
	until := now.Add(signingOverlap)
	retired := append(a.retiredSecrets(now), RetiredSecret{Secret: a.Secret, Until: until})
	a.RetiredSecrets = retired[max(0, len(retired)-maxRetiredSecrets):]
	a.PreviousSecret, a.PreviousUntil = a.Secret, &until
	a.Secret = newSigningSecret()
}

// signingSecrets are the secrets that sign a delivery sent at now: the
// current one and every retired one that has not expired.
func (a *AutomationAction) signingSecrets(now time.Time) []string {
	out := []string{a.Secret}
	for _, r := range a.retiredSecrets(now) {
		out = append(out, r.Secret)
	}
	return out
}

// RotateActionSecretFor gives a webhook action a new signing secret, shown
// in the answer only, for editors of the app. The old one keeps signing
// for 24 hours, as do those rotated out before it, up to the newest
// three. The action is read locked, so rotations at once each keep the
// secret the one before made.
func RotateActionSecretFor(ctx context.Context, db *gorm.DB, v Viewer, appPublicID, id string) (*ActionSecret, error) {
	return inApp(ctx, db, v, appPublicID, RoleEditor, func(app *App) (*ActionSecret, error) {
		var a *AutomationAction
		err := withRetry(ctx, func() error {
			return db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
				var err error
				if a, err = automationActionByID(ctx, forUpdate(tx), app, "id", id); err != nil {
					return err
				}
				if a.Kind != ActionWebhook {
					return Invalid("id", "only webhooks are signed")
				}
				a.rotateSecret(Now())
				return tx.Select("Secret", "RetiredSecrets", "PreviousSecret", "PreviousUntil", "UpdatedAt").Save(a).Error
			})
		})
		if err != nil {
			return nil, err
		}
		return &ActionSecret{Action: a, Secret: a.Secret}, nil
	})
}
