package models

import (
	"cmp"
	"context"
	"slices"
	"strings"
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
	// Suggestion is the closest defined code, when near enough to be a typo.
	Suggestion *string `gorm:"-"`
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
	var defined []string
	if err := db.WithContext(ctx).Model(&EventDefinition{}).Where("app_id = ?", appID).Order("code").Pluck("code", &defined).Error; err != nil {
		return nil, err
	}
	for _, c := range codes {
		c.Suggestion = closestCode(c.Code, defined)
	}
	return codes, nil
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
// grow the table or bury real typos.
const maxUnknownCodes = 1000

// countUnknownCodes adds the refused triggers to their (app, code) counters and
// marks them refused, then trims each app touched to maxUnknownCodes.
func countUnknownCodes(tx *gorm.DB, refused []*pending) error {
	type key struct {
		appID uint64
		code  string
	}
	counts := map[key]*UnknownCode{}
	var rows []*UnknownCode
	for _, p := range refused {
		p.result = TriggerResult{Err: newError(ErrUnknownEventCode, "event code %q is not defined in this app", p.code)}
		k := key{p.event.AppID, p.code}
		c := counts[k]
		if c == nil {
			c = &UnknownCode{AppID: k.appID, Code: k.code, FirstSeenAt: p.event.ReceivedAt, LastSeenAt: p.event.ReceivedAt}
			counts[k] = c
			rows = append(rows, c)
		}
		c.Count++
	}
	slices.SortFunc(rows, func(a, b *UnknownCode) int {
		return cmp.Or(cmp.Compare(a.AppID, b.AppID), strings.Compare(a.Code, b.Code))
	})
	var conflict string
	if isMySQL(tx) {
		conflict = ` ON DUPLICATE KEY UPDATE count = count + VALUES(count), last_seen_at = GREATEST(last_seen_at, VALUES(last_seen_at))`
	} else {
		conflict = ` ON CONFLICT (app_id, code) DO UPDATE SET count = count + excluded.count, last_seen_at = max(last_seen_at, excluded.last_seen_at)`
	}
	for _, c := range rows {
		err := tx.Exec(`INSERT INTO unknown_codes (app_id, code, count, first_seen_at, last_seen_at) VALUES (?,?,?,?,?)`+conflict,
			c.AppID, c.Code, c.Count, c.FirstSeenAt, c.LastSeenAt).Error
		if err != nil {
			return err
		}
	}
	for i, c := range rows {
		if i == 0 || c.AppID != rows[i-1].AppID {
			if err := trimUnknownCodes(tx, c.AppID); err != nil {
				return err
			}
		}
	}
	return nil
}

// trimUnknownCodes drops an app's least recently seen unknown codes beyond
// maxUnknownCodes (ties: the code sorting last goes first, the reverse of
// the inbox's order).
func trimUnknownCodes(tx *gorm.DB, appID uint64) error {
	var n int64
	if err := tx.Model(&UnknownCode{}).Where("app_id = ?", appID).Count(&n).Error; err != nil {
		return err
	}
	if n <= maxUnknownCodes {
		return nil
	}
	var evict []string
	err := tx.Model(&UnknownCode{}).Where("app_id = ?", appID).Order("last_seen_at, code DESC").
		Limit(int(n-maxUnknownCodes)).Pluck("code", &evict).Error
	if err != nil {
		return err
	}
	return tx.Where("app_id = ? AND code IN ?", appID, evict).Delete(&UnknownCode{}).Error
}
