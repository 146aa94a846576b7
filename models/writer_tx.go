package models

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"

	"gorm.io/gorm"
)

type messageKey struct {
	appID uint64
	id    string
}

// writeTx stores one batch inside tx. Every result is set from scratch, so a
// retried transaction answers from what the final attempt saw.
func (w *Writer) writeTx(tx *gorm.DB, items []*pending) error {
	var unknown, store []*pending
	firstByMessage := map[messageKey]*pending{}
	dupOf := map[*pending]*pending{}
	for _, p := range items {
		p.result = TriggerResult{}
		if p.unknown {
			unknown = append(unknown, p)
			continue
		}
		if p.event.MessageID != nil {
			k := messageKey{p.event.AppID, *p.event.MessageID}
			if first := firstByMessage[k]; first != nil {
				dupOf[p] = first
				continue
			}
			firstByMessage[k] = p
		}
		store = append(store, p)
	}

	store, err := w.dropStoredMessages(tx, store, firstByMessage)
	if err != nil {
		return err
	}
	store, refusedUnknown, err := w.countDefinitions(tx, store)
	if err != nil {
		return err
	}
	unknown = append(unknown, refusedUnknown...)
	if err := upsertDevices(tx, store); err != nil {
		return err
	}
	events := make([]*Event, len(store))
	for i, p := range store {
		p.event.ID = w.ids.next()
		p.result = TriggerResult{Accepted: true, EventID: p.event.ID}
		events[i] = &p.event
	}
	if len(events) > 0 {
		if err := tx.CreateInBatches(events, 500).Error; err != nil {
			return err
		}
	}
	if err := countUnknownCodes(tx, unknown); err != nil {
		return err
	}
	for p, first := range dupOf {
		p.result = first.result
		if first.result.Accepted {
			p.result.Duplicate = true
		}
	}
	return nil
}

// dropStoredMessages answers triggers whose messageId is already stored as
// duplicates and returns the rest.
func (w *Writer) dropStoredMessages(tx *gorm.DB, store []*pending, byMessage map[messageKey]*pending) ([]*pending, error) {
	if len(byMessage) == 0 {
		return store, nil
	}
	idsByApp := map[uint64][]string{}
	for k := range byMessage {
		idsByApp[k.appID] = append(idsByApp[k.appID], k.id)
	}
	for appID, ids := range idsByApp {
		var found []struct {
			ID        uint64
			MessageID string
		}
		err := tx.Model(&Event{}).Select("id, message_id").
			Where("app_id = ? AND message_id IN ?", appID, ids).Scan(&found).Error
		if err != nil {
			return nil, err
		}
		for _, f := range found {
			p := byMessage[messageKey{appID, f.MessageID}]
			p.result = TriggerResult{Accepted: true, Duplicate: true, EventID: f.ID}
		}
	}
	return slices.DeleteFunc(store, func(p *pending) bool { return p.result.Duplicate }), nil
}

// countDefinitions bumps each definition's trigger count and times, only while
// it exists and is enabled. The UPDATE takes the row lock that a delete or a
// disable also needs, so neither can interleave with storing these events:
// a definition with events is never deleted, and no event outlives its
// definition. Triggers of definitions found disabled or deleted are refused.
func (w *Writer) countDefinitions(tx *gorm.DB, store []*pending) (kept, unknown []*pending, err error) {
	byDef := map[uint64][]*pending{}
	for _, p := range store {
		byDef[p.event.DefinitionID] = append(byDef[p.event.DefinitionID], p)
	}
	defIDs := make([]uint64, 0, len(byDef))
	for id := range byDef {
		defIDs = append(defIDs, id)
	}
	slices.Sort(defIDs) // a fixed lock order keeps concurrent writers from deadlocking
	refused := map[uint64]bool{}
	for _, id := range defIDs {
		group := byDef[id]
		first, last := group[0].event.OccurredAt, group[0].event.OccurredAt
		for _, p := range group[1:] {
			first, last = minTime(first, p.event.OccurredAt), maxTime(last, p.event.OccurredAt)
		}
		res := tx.Exec(`UPDATE event_definitions SET trigger_count = trigger_count + ?,
			first_triggered_at = CASE WHEN first_triggered_at IS NULL OR first_triggered_at > ? THEN ? ELSE first_triggered_at END,
			last_triggered_at = CASE WHEN last_triggered_at IS NULL OR last_triggered_at < ? THEN ? ELSE last_triggered_at END
			WHERE id = ? AND enabled = ?`, len(group), first, first, last, last, id, true)
		if res.Error != nil {
			return nil, nil, res.Error
		}
		if res.RowsAffected > 0 {
			continue
		}
		refused[id] = true
		w.catalog.Invalidate()
		// A locking read sees the latest commit; a plain one would read the
		// transaction's snapshot, which may predate a concurrent delete.
		var enabled []bool
		if err := forUpdate(tx.Model(&EventDefinition{})).Where("id = ?", id).Pluck("enabled", &enabled).Error; err != nil {
			return nil, nil, err
		}
		if len(enabled) > 0 && enabled[0] {
			return nil, nil, fmt.Errorf("definition %d is enabled but was not updated", id)
		}
		for _, p := range group {
			if len(enabled) == 0 {
				p.unknown = true
				unknown = append(unknown, p)
			} else {
				p.result.Err = newError(ErrEventDisabled, "event %q is disabled", p.code)
			}
		}
	}
	kept = slices.DeleteFunc(store, func(p *pending) bool { return refused[p.event.DefinitionID] })
	return kept, unknown, nil
}

type deviceSeen struct {
	appID       uint64
	deviceID    string
	ua          string
	first, last time.Time
}

// upsertDevices creates devices on first sight and widens their seen times.
func upsertDevices(tx *gorm.DB, store []*pending) error {
	byKey := map[DeviceKey]*deviceSeen{}
	var seen []*deviceSeen
	for _, p := range store {
		k := DeviceKey{p.event.AppID, p.event.DeviceID}
		d := byKey[k]
		if d == nil {
			d = &deviceSeen{appID: k.AppID, deviceID: k.DeviceID, first: p.event.OccurredAt, last: p.event.OccurredAt}
			byKey[k] = d
			seen = append(seen, d)
		}
		d.first, d.last = minTime(d.first, p.event.OccurredAt), maxTime(d.last, p.event.OccurredAt)
		if p.ua != "" {
			d.ua = p.ua
		}
	}
	slices.SortFunc(seen, func(a, b *deviceSeen) int {
		return cmp.Or(cmp.Compare(a.appID, b.appID), strings.Compare(a.deviceID, b.deviceID))
	})
	var conflict string
	if isMySQL(tx) {
		conflict = ` ON DUPLICATE KEY UPDATE
			first_seen_at = LEAST(first_seen_at, VALUES(first_seen_at)),
			last_seen_at = GREATEST(last_seen_at, VALUES(last_seen_at)),
			user_agent = IF(VALUES(user_agent) = '', user_agent, VALUES(user_agent))`
	} else {
		conflict = ` ON CONFLICT (app_id, device_id) DO UPDATE SET
			first_seen_at = min(first_seen_at, excluded.first_seen_at),
			last_seen_at = max(last_seen_at, excluded.last_seen_at),
			user_agent = CASE WHEN excluded.user_agent = '' THEN user_agent ELSE excluded.user_agent END`
	}
	for chunk := range slices.Chunk(seen, 500) {
		var sb strings.Builder
		args := make([]any, 0, len(chunk)*5)
		sb.WriteString("INSERT INTO devices (app_id, device_id, user_agent, first_seen_at, last_seen_at) VALUES ")
		for i, d := range chunk {
			if i > 0 {
				sb.WriteByte(',')
			}
			sb.WriteString("(?,?,?,?,?)")
			args = append(args, d.appID, d.deviceID, d.ua, d.first, d.last)
		}
		sb.WriteString(conflict)
		if err := tx.Exec(sb.String(), args...).Error; err != nil {
			return err
		}
	}
	return nil
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
