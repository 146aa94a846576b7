package models

import (
	"cmp"
	"errors"
	"maps"
	"slices"
	"strings"
	"time"

	"gorm.io/gorm"
)

type messageKey struct {
	appID uint64
	id    string
}

// errRefusals rolls back a batch in which some definitions turned out to be
// deleted or disabled; their triggers are marked refused and the rest is
// written again.
var errRefusals = errors.New("definitions changed during the write")

// writeTx stores one batch inside tx. Results are set from scratch on every
// attempt, except refusals found by an earlier one, so a retried transaction
// answers from what the final attempt saw.
func (w *Writer) writeTx(tx *gorm.DB, slot int, items []*pending) (upserted []*deviceSeen, err error) {
	var unknown, store []*pending
	firstByMessage := map[messageKey]*pending{}
	dupOf := map[*pending]*pending{}
	for _, p := range items {
		if p.refused {
			continue
		}
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

	// Ids first: the event log slot is claimed for the lowest of them.
	ids := make([]uint64, len(store))
	w.ids.nextN(ids)
	if len(ids) > 0 {
		query, args := claimLogSlotSQL(slot, ids[0])
		res := tx.Exec(query, args...)
		if res.Error != nil {
			return nil, res.Error
		}
		if res.RowsAffected != 1 {
			return nil, errSealedOver
		}
	}
	for i, p := range store {
		p.event.ID = ids[i]
	}
	store, err = w.dropStoredMessages(tx, store, firstByMessage)
	if err != nil {
		return nil, err
	}
	if upserted, err = w.upsertDevices(tx, store); err != nil {
		return nil, err
	}
	if err := w.insertEvents(tx, store); err != nil {
		return nil, err
	}
	if err := countUnknownCodes(tx, unknown); err != nil {
		return nil, err
	}
	// Last, so the definitions' row locks are held only until the commit.
	if err := w.countDefinitions(tx, store); err != nil {
		return nil, err
	}
	for p, first := range dupOf {
		p.result = first.result
		if first.result.Accepted {
			p.result.Duplicate = true
		}
	}
	return upserted, nil
}

// insertEvents stores the batch with the ids made for it.
func (w *Writer) insertEvents(tx *gorm.DB, store []*pending) error {
	events := make([]*Event, len(store))
	props := make([]string, len(store))
	for i, p := range store {
		p.result = TriggerResult{Accepted: true, EventID: p.event.ID}
		events[i], props[i] = &p.event, p.propsJSON
	}
	return insertEvents(tx, events, props, 500)
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
// it exists and is enabled, in one statement. The UPDATE takes the row locks
// that a delete or a disable also needs, so neither can interleave with
// storing these events: a definition with events is never deleted, and no
// event outlives its definition. If a definition was deleted or disabled, its
// triggers are marked refused and errRefusals rolls the batch back.
func (w *Writer) countDefinitions(tx *gorm.DB, store []*pending) error {
	byDef := map[uint64][]*pending{}
	for _, p := range store {
		byDef[p.event.DefinitionID] = append(byDef[p.event.DefinitionID], p)
	}
	if len(byDef) == 0 {
		return nil
	}
	defIDs := slices.Sorted(maps.Keys(byDef)) // a fixed lock order keeps writers from deadlocking
	var count, first, last strings.Builder
	var countArgs, firstArgs, lastArgs []any
	for _, id := range defIDs {
		group := byDef[id]
		lo, hi := group[0].event.OccurredAt, group[0].event.OccurredAt
		for _, p := range group[1:] {
			lo, hi = minTime(lo, p.event.OccurredAt), maxTime(hi, p.event.OccurredAt)
		}
		count.WriteString(" WHEN ? THEN ?")
		first.WriteString(" WHEN ? THEN ?")
		last.WriteString(" WHEN ? THEN ?")
		countArgs = append(countArgs, id, len(group))
		firstArgs = append(firstArgs, id, lo)
		lastArgs = append(lastArgs, id, hi)
	}
	firstCase, lastCase := "CASE id"+first.String()+" END", "CASE id"+last.String()+" END"
	query := `UPDATE event_definitions SET trigger_count = trigger_count + CASE id` + count.String() + ` END,
		first_triggered_at = CASE WHEN first_triggered_at IS NULL OR first_triggered_at > ` + firstCase + ` THEN ` + firstCase + ` ELSE first_triggered_at END,
		last_triggered_at = CASE WHEN last_triggered_at IS NULL OR last_triggered_at < ` + lastCase + ` THEN ` + lastCase + ` ELSE last_triggered_at END
		WHERE id IN ? AND enabled = ?`
	args := slices.Concat(countArgs, firstArgs, firstArgs, lastArgs, lastArgs, []any{defIDs, true})
	res := tx.Exec(query, args...)
	if res.Error != nil {
		return res.Error
	}
	if res.RowsAffected == int64(len(defIDs)) {
		return nil
	}

	// A locking read sees the latest commit; a plain one would read the
	// transaction's snapshot, which may predate a concurrent delete.
	w.catalog.Invalidate()
	var rows []struct {
		ID      uint64
		Enabled bool
	}
	if err := forUpdate(tx.Model(&EventDefinition{})).Select("id, enabled").Where("id IN ?", defIDs).Scan(&rows).Error; err != nil {
		return err
	}
	enabled := map[uint64]bool{}
	for _, r := range rows {
		enabled[r.ID] = r.Enabled
	}
	for _, id := range defIDs {
		on, exists := enabled[id]
		if on {
			continue
		}
		for _, p := range byDef[id] {
			if exists {
				p.refused = true
				p.result = TriggerResult{Err: newError(ErrEventDisabled, "event %q is disabled", p.code)}
			} else {
				p.unknown = true // counted as unknown when the batch is written again
			}
		}
	}
	return errRefusals
}

type deviceSeen struct {
	appID       uint64
	deviceID    string
	ua          string
	first, last time.Time
}

// upsertDevices creates devices on first sight and widens their seen times,
// except for devices stored moments ago (see recentDevices). It returns the
// devices it wrote.
func (w *Writer) upsertDevices(tx *gorm.DB, store []*pending) ([]*deviceSeen, error) {
	byKey := map[DeviceKey]*deviceSeen{}
	var seen []*deviceSeen
	now := time.Now()
	for _, p := range store {
		k := DeviceKey{p.event.AppID, p.event.DeviceID}
		if w.devices.covers(k, p.event.OccurredAt, now) {
			continue
		}
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
			return nil, err
		}
	}
	return seen, nil
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
