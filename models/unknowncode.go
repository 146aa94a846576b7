package models

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/agnivade/levenshtein"
	"gorm.io/gorm"
)

// UnknownCode counts triggers refused because their code is not defined, so
// owners can spot typos in their snippets.
type UnknownCode struct {
	AppID       uint64    `gorm:"primaryKey;autoIncrement:false"`
	Code        string    `gorm:"primaryKey;size:64"`
	Count       int64     `gorm:"not null"`
	FirstSeenAt time.Time `gorm:"not null"`
	LastSeenAt  time.Time `gorm:"not null;index"`
	// TypoOf is the defined code someone of the app marked this one a typo
	// of (MarkUnknownCodeTypo): the sender should be fixed, not the code
	// defined. Counting goes on.
	TypoOf *string `gorm:"size:64"`
	// Suggestion is the closest defined code, when near enough to be a typo.
	Suggestion *string `gorm:"-"`
}

// MarkUnknownCodeTypo marks an unknown code of the app as a typo of one
// of its defined codes, or clears the mark when typoOf is nil. Editors and
// owners (and the secret key) may; the mark is shared by everyone of the app.
func MarkUnknownCodeTypo(ctx context.Context, db *gorm.DB, v Viewer, appPublicID, code string, typoOf *string) (*UnknownCode, error) {
	app, err := v.App(ctx, db, appPublicID, RoleEditor)
	if err != nil {
		return nil, err
	}
	defined, err := definedCodes(ctx, db, app.ID)
	if err != nil {
		return nil, err
	}
	if typoOf != nil && !slices.Contains(defined, *typoOf) {
		return nil, Invalid("typoOf", "must be a defined code of this app")
	}
	if err := db.WithContext(ctx).Model(&UnknownCode{}).Where("app_id = ? AND code = ?", app.ID, code).UpdateColumn("typo_of", typoOf).Error; err != nil {
		return nil, err
	}
	var u UnknownCode
	if err := db.WithContext(ctx).Where("app_id = ? AND code = ?", app.ID, code).Take(&u).Error; err != nil {
		if errors.Is(err, gorm.ErrRecordNotFound) {
			return nil, newError(ErrNotFound, "unknown code %q not found", truncate(code, 64))
		}
		return nil, err
	}
	u.Suggestion = closestCode(u.Code, defined)
	return &u, nil
}

// UnknownCodes lists an app's unknown codes, most recently seen first.
func UnknownCodes(ctx context.Context, db *gorm.DB, appID uint64, first int) ([]*UnknownCode, error) {
	if err := checkFirst(first); err != nil {
		return nil, err
	}
	var codes []*UnknownCode
	err := db.WithContext(ctx).Where("app_id = ?", appID).Order("last_seen_at DESC, code").Limit(first).Find(&codes).Error
	if err != nil || len(codes) == 0 {
		return codes, err
	}
	defined, err := definedCodes(ctx, db, appID)
	if err != nil {
		return nil, err
	}
	for _, c := range codes {
		c.Suggestion = closestCode(c.Code, defined)
	}
	return codes, nil
}

// definedCodes are the app's defined codes, in order.
func definedCodes(ctx context.Context, db *gorm.DB, appID uint64) ([]string, error) {
	var defined []string
	err := db.WithContext(ctx).Model(&EventDefinition{}).Where("app_id = ?", appID).Order("code").Pluck("code", &defined).Error
	return defined, err
}

// closestCode returns the defined code nearest to code by edit distance,
// if it is close enough to be a typo: at most a third of the code's length
// (at least 1, at most 3) edits. Ties go to the first code alphabetically.
func closestCode(code string, defined []string) *string {
	limit := min(max(len(code)/3, 1), 3)
	var best *string
	bestDist := limit + 1
	for i, d := range defined {
		if dist := levenshtein.ComputeDistance(code, d); dist < bestDist {
			best, bestDist = &defined[i], dist
		}
	}
	return best
}

// maxUnknownCodes is how many distinct unknown codes an app keeps: the least
// recently seen go first, so junk sent by anyone who knows the appId cannot
// grow the table or bury real typos. The writer counts and trims them in its
// group commits (countUnknownCodesSQL, writer_tx.go).
const maxUnknownCodes = 1000
