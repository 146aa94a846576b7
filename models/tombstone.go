package models

import (
	"context"
	"maps"
	"slices"
	"strings"
	"time"

	"gorm.io/gorm"
)

// TombstoneLifetime is how long an erased messageId is remembered. An
// erasure keeps, in erased_messages, the messageIds (ids only, no personal
// data) of the erased events received within this lifetime; a trigger
// resent with one of them later is answered accepted and duplicate, with
// no event id, and nothing is stored. Clients retry for far less (the
// WordPress plugin gives up on a queued event after 7 days; the browser
// client within its page's life), so a resend after this lifetime
// cannot be a retry. The lifecycle job (lifecycle.go) deletes tombstones
// older than this.
const TombstoneLifetime = 30 * 24 * time.Hour

// ErasedMessage is a tombstone of one erased messageId.
type ErasedMessage struct {
	AppID     uint64    `gorm:"primaryKey;autoIncrement:false"`
	MessageID string    `gorm:"primaryKey;size:128"`
	ErasedAt  time.Time `gorm:"not null;index:idx_erased_messages_erased_at"`
	// Hits counts the resends refused since the erasure.
	Hits int64 `gorm:"not null;default:0"`
}

// writeTombstones records the messageIds of erased events received within
// the tombstone lifetime, and returns how many it wrote.
func writeTombstones(tx *gorm.DB, appID uint64, erased []*Event, now time.Time) (int64, error) {
	since := now.Add(-TombstoneLifetime)
	var ids []string
	for _, e := range erased {
		if e.MessageID != nil && e.ReceivedAt.After(since) {
			ids = append(ids, *e.MessageID)
		}
	}
	slices.Sort(ids)
	ids = slices.Compact(ids)
	conflict := " ON CONFLICT (app_id, message_id) DO UPDATE SET erased_at = excluded.erased_at"
	if isMySQL(tx) {
		conflict = " ON DUPLICATE KEY UPDATE erased_at = VALUES(erased_at)"
	}
	for chunk := range slices.Chunk(ids, 500) {
		var sb strings.Builder
		sb.WriteString("INSERT INTO erased_messages (app_id, message_id, erased_at, hits) VALUES ")
		args := make([]any, 0, len(chunk)*3)
		for i, id := range chunk {
			if i > 0 {
				sb.WriteByte(',')
			}
			sb.WriteString("(?,?,?,0)")
			args = append(args, appID, id, now)
		}
		sb.WriteString(conflict)
		if err := tx.Exec(sb.String(), args...).Error; err != nil {
			return 0, err
		}
	}
	return int64(len(ids)), nil
}

// erasedMessagesSQL is the group commit's check for resends of erased
// messageIds: it counts a hit on each tombstone of the batch's messageIds,
// so its affected rows are the tombstoned triggers (0 almost always), and
// with a locking write it sees erasures committed since the batch began.
func erasedMessagesSQL(store []*pending) []stmt {
	byApp := map[uint64][]any{}
	for _, p := range store {
		if p.event.MessageID != nil {
			byApp[p.event.AppID] = append(byApp[p.event.AppID], *p.event.MessageID)
		}
	}
	var out []stmt
	for _, appID := range slices.Sorted(maps.Keys(byApp)) {
		ids := byApp[appID]
		for chunk := range slices.Chunk(ids, 500) {
			q := "UPDATE erased_messages SET hits = hits + 1 WHERE app_id = ? AND message_id IN (?" + strings.Repeat(",?", len(chunk)-1) + ")"
			out = append(out, stmt{q, append([]any{appID}, chunk...)})
		}
	}
	return out
}

// findErased marks the triggers whose messageId has a tombstone, and
// returns how many it found.
func (w *Writer) findErased(ctx context.Context, store []*pending) (int, error) {
	byApp := map[uint64]map[string][]*pending{}
	for _, p := range store {
		if p.event.MessageID == nil {
			continue
		}
		if byApp[p.event.AppID] == nil {
			byApp[p.event.AppID] = map[string][]*pending{}
		}
		byApp[p.event.AppID][*p.event.MessageID] = append(byApp[p.event.AppID][*p.event.MessageID], p)
	}
	found := 0
	for appID, byMessage := range byApp {
		var ids []string
		err := w.db.WithContext(ctx).Model(&ErasedMessage{}).
			Where("app_id = ? AND message_id IN ?", appID, slices.Collect(maps.Keys(byMessage))).Pluck("message_id", &ids).Error
		if err != nil {
			return found, err
		}
		var hit []string
		for _, id := range ids {
			for _, p := range byMessage[id] { // exact matches only
				p.erased = true
				hit = append(hit, id)
				found++
			}
		}
		// The check's hits were rolled back with the attempt: count them.
		if len(hit) > 0 {
			err := w.db.WithContext(ctx).Exec("UPDATE erased_messages SET hits = hits + 1 WHERE app_id = ? AND message_id IN ?", appID, hit).Error
			if err != nil {
				return found, err
			}
		}
	}
	return found, nil
}

// pruneTombstones deletes tombstones older than the lifetime, in chunks.
func pruneTombstones(ctx context.Context, db *gorm.DB, now time.Time) (int64, error) {
	var total int64
	for {
		var keys []struct {
			AppID     uint64
			MessageID string
		}
		err := db.WithContext(ctx).Model(&ErasedMessage{}).Select("app_id, message_id").
			Where("erased_at < ?", now.Add(-TombstoneLifetime)).Limit(1000).Scan(&keys).Error
		if err != nil || len(keys) == 0 {
			return total, err
		}
		for _, k := range keys {
			d := db.WithContext(ctx).Where("app_id = ? AND message_id = ? AND erased_at < ?", k.AppID, k.MessageID, now.Add(-TombstoneLifetime)).
				Delete(&ErasedMessage{})
			if d.Error != nil {
				return total, d.Error
			}
			total += d.RowsAffected
		}
		if len(keys) < 1000 {
			return total, nil
		}
	}
}
