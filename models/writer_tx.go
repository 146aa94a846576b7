package models

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
)

// A group commit runs these statements in one transaction, in this order
// (on MySQL all in one round trip with the BEGIN, then the COMMIT):
//
//  1. claim an event log slot for the batch's lowest event id (eventlog.go);
//  2. upsert the devices not stored in the last minute;
//  3. insert the events; a messageId already stored is skipped by the
//     unique (app_id, message_id) index instead of being looked up first;
//     then count a hit on the tombstones of the batch's messageIds, if
//     any were erased (tombstone.go), which must find none;
//  4. count the refused unknown codes, and trim each app's to the most
//     recently seen maxUnknownCodes;
//  5. bump the definitions' counters, only while they exist and are enabled
//     (last, so their row locks are held only until the commit).
//
// Before the COMMIT the affected rows of each statement are checked. A
// seal over the ids, a messageId found stored, a definition deleted or
// disabled meanwhile: any surprise rolls the transaction back, what it
// means is looked up, and the batch is written again without it.

type messageKey struct {
	appID uint64
	id    string
}

// commitPlan is one attempt at a group commit.
type commitPlan struct {
	store   []*pending // the events to insert, with their ids
	unknown []*pending // refused for an unknown code, counted
	dupOf   map[*pending]*pending
	devices []*deviceSeen
	byDef   map[uint64][]*pending
	defIDs  []uint64 // sorted: a fixed lock order keeps writers from deadlocking
	stmts   []stmt
	// where each check's affected rows are
	claimAt, eventsFrom, eventsTo, erasedTo, countersAt int
}

// plan sorts the batch into what to write and builds the statements.
// Results are set from scratch on every attempt, except what earlier
// attempts found out (refusals, messageIds already stored).
func (w *Writer) plan(slot int, items []*pending) *commitPlan {
	c := &commitPlan{dupOf: map[*pending]*pending{}, byDef: map[uint64][]*pending{}, claimAt: -1, countersAt: -1}
	firstByMessage := map[messageKey]*pending{}
	for _, p := range items {
		if p.refused {
			continue
		}
		p.result = TriggerResult{}
		if p.unknown {
			p.result = TriggerResult{Err: newError(ErrUnknownEventCode, "event code %q is not defined in this app", p.code)}
			c.unknown = append(c.unknown, p)
			continue
		}
		if p.event.MessageID != nil {
			// Before the stored and erased ones are answered: a later
			// copy of their messageId in the batch repeats them, else it
			// would be tried next, found stored, and so on, one round a
			// copy (20 copies of a stored messageId ran out of rounds).
			k := messageKey{p.event.AppID, *p.event.MessageID}
			if first := firstByMessage[k]; first != nil {
				c.dupOf[p] = first
				continue
			}
			firstByMessage[k] = p
		}
		switch {
		case p.storedAs != 0:
			p.result = TriggerResult{Accepted: true, Duplicate: true, EventID: p.storedAs}
			continue
		case p.erased:
			// Resent after an erasure: answered like any duplicate, but
			// the event it repeats is gone, so there is no event id.
			p.result = TriggerResult{Accepted: true, Duplicate: true}
			continue
		}
		c.store = append(c.store, p)
		c.byDef[p.event.DefinitionID] = append(c.byDef[p.event.DefinitionID], p)
	}
	c.defIDs = slices.Sorted(maps.Keys(c.byDef))
	if len(c.store) > 0 {
		ids := make([]uint64, len(c.store))
		w.ids.nextN(ids)
		for i, p := range c.store {
			p.event.ID = ids[i]
		}
		query, args := claimLogSlotSQL(slot, ids[0])
		c.claimAt = len(c.stmts)
		c.stmts = append(c.stmts, stmt{query, args})
		c.devices = w.devicesToUpsert(c.store)
		c.stmts = append(c.stmts, upsertDevicesSQL(w.mysql, c.devices)...)
		c.eventsFrom = len(c.stmts)
		c.stmts = append(c.stmts, insertEventsSQL(w.mysql, c.store)...)
		c.eventsTo = len(c.stmts)
		c.stmts = append(c.stmts, erasedMessagesSQL(c.store)...)
		c.erasedTo = len(c.stmts)
	}
	c.stmts = append(c.stmts, countUnknownCodesSQL(w.mysql, c.unknown)...)
	if len(c.defIDs) > 0 {
		c.countersAt = len(c.stmts)
		c.stmts = append(c.stmts, countDefinitionsSQL(c))
	}
	return c
}

// answer sets the results of a batch whose transaction committed.
func (c *commitPlan) answer() {
	for _, p := range c.store {
		p.result = TriggerResult{Accepted: true, EventID: p.event.ID}
	}
	for p, first := range c.dupOf {
		p.result = first.result
		if first.result.Accepted {
			p.result.Duplicate = true
		}
	}
}

// countDefinitionsSQL bumps each definition's trigger count and times, only
// while it exists and is enabled, in one statement. The UPDATE takes the
// row locks that a delete or a disable also needs, so neither can
// interleave with storing these events: a definition with events is never
// deleted, and no event outlives its definition.
func countDefinitionsSQL(c *commitPlan) stmt {
	var count, first, last strings.Builder
	var countArgs, firstArgs, lastArgs []any
	for _, id := range c.defIDs {
		group := c.byDef[id]
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
	var in strings.Builder
	inArgs := make([]any, len(c.defIDs))
	for i, id := range c.defIDs {
		if i > 0 {
			in.WriteByte(',')
		}
		in.WriteByte('?')
		inArgs[i] = id
	}
	query := `UPDATE event_definitions SET trigger_count = trigger_count + CASE id` + count.String() + ` END,
		first_triggered_at = CASE WHEN first_triggered_at IS NULL OR first_triggered_at > ` + firstCase + ` THEN ` + firstCase + ` ELSE first_triggered_at END,
		last_triggered_at = CASE WHEN last_triggered_at IS NULL OR last_triggered_at < ` + lastCase + ` THEN ` + lastCase + ` ELSE last_triggered_at END
		WHERE id IN (` + in.String() + `) AND enabled = ?`
	return stmt{query, slices.Concat(countArgs, firstArgs, firstArgs, lastArgs, lastArgs, inArgs, []any{true})}
}

// orFail makes a group commit's multi-row INSERT on SQLite fail without
// undoing its own earlier rows. A statement that may abort part-way (a NOT
// NULL or a key not covered by its ON CONFLICT) otherwise gets a statement
// journal: a copy of every page it changes, spilled to a temporary file past
// 64 KiB, so that the statement alone can be undone. A group commit never
// needs that: the runner rolls the whole transaction back on any error.
// Under trigger load the copy took 11% of the server's CPU, on the serial
// write path; 4% is left (the devices upsert's DO UPDATE still takes one).
// MySQL has no such clause and no such copy.
func orFail(mysql bool, query string) string {
	if mysql {
		return query
	}
	rest, ok := strings.CutPrefix(query, "INSERT ")
	if !ok {
		panic("models.orFail: not an INSERT: " + query)
	}
	return "INSERT OR FAIL " + rest
}

// insertEventsSQL inserts the events in multi-row statements of at most
// 500 rows and about 1 MiB each.
func insertEventsSQL(mysql bool, store []*pending) []stmt {
	conflict := " ON CONFLICT (app_id, message_id) DO NOTHING"
	if mysql {
		conflict = " ON DUPLICATE KEY UPDATE id = id"
	}
	var out []stmt
	for start := 0; start < len(store); {
		var sb strings.Builder
		sb.WriteString(orFail(mysql, insertEventsSQLPrefix))
		args := make([]any, 0, min(len(store)-start, 500)*13)
		size, end := 0, start
		for ; end < len(store) && end-start < 500 && (end == start || size < 1<<20); end++ {
			p := store[end]
			e := &p.event
			if end > start {
				sb.WriteByte(',')
			}
			sb.WriteString("(?,?,?,?,?,?,?,?,?,?,?,?,?)")
			args = append(args, e.ID, e.AppID, e.DefinitionID, e.DeviceID, e.MessageID, e.URL, e.Referrer, e.Title,
				p.propsJSON, e.Source, e.OccurredAt, e.ReceivedAt, e.Integration)
			size += p.size()
		}
		sb.WriteString(conflict)
		out = append(out, stmt{sb.String(), args})
		start = end
	}
	return out
}

// countUnknownCodesSQL adds the refused triggers to their (app, code)
// counters in one statement.
func countUnknownCodesSQL(mysql bool, refused []*pending) []stmt {
	if len(refused) == 0 {
		return nil
	}
	type key struct {
		appID uint64
		code  string
	}
	counts := map[key]*UnknownCode{}
	var rows []*UnknownCode
	for _, p := range refused {
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
	var sb strings.Builder
	sb.WriteString("INSERT INTO unknown_codes (app_id, code, count, first_seen_at, last_seen_at) VALUES ")
	args := make([]any, 0, len(rows)*5)
	for i, c := range rows {
		if i > 0 {
			sb.WriteByte(',')
		}
		sb.WriteString("(?,?,?,?,?)")
		args = append(args, c.AppID, c.Code, c.Count, c.FirstSeenAt, c.LastSeenAt)
	}
	if mysql {
		sb.WriteString(" ON DUPLICATE KEY UPDATE count = count + VALUES(count), last_seen_at = GREATEST(last_seen_at, VALUES(last_seen_at))")
	} else {
		sb.WriteString(" ON CONFLICT (app_id, code) DO UPDATE SET count = count + excluded.count, last_seen_at = max(last_seen_at, excluded.last_seen_at)")
	}
	out := []stmt{{sb.String(), args}}
	// Trim each app touched: keep its maxUnknownCodes most recently seen
	// (ties: the code sorting first stays, as the inbox lists them). MySQL
	// refuses a subquery on the table being deleted from, and LIMIT inside
	// IN, unless the subquery is materialized as a derived table first.
	trim := `DELETE FROM unknown_codes WHERE app_id = ? AND code IN (SELECT code FROM unknown_codes
		WHERE app_id = ? ORDER BY last_seen_at DESC, code LIMIT -1 OFFSET ?)`
	if mysql {
		trim = `DELETE FROM unknown_codes WHERE app_id = ? AND code IN (SELECT code FROM (SELECT code FROM unknown_codes
			WHERE app_id = ? ORDER BY last_seen_at DESC, code LIMIT 18446744073709551615 OFFSET ?) AS evicted)`
	}
	for i, c := range rows {
		if i == 0 || c.AppID != rows[i-1].AppID {
			out = append(out, stmt{trim, []any{c.AppID, c.AppID, maxUnknownCodes}})
		}
	}
	return out
}

type deviceSeen struct {
	appID       uint64
	deviceID    string
	ua          string
	first, last time.Time
}

// devicesToUpsert returns the devices to create or whose seen times to
// widen, sorted by key (the order writers lock them in), except devices
// stored moments ago (see recentDevices).
func (w *Writer) devicesToUpsert(store []*pending) []*deviceSeen {
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
	return seen
}

// upsertDevicesSQL creates devices on first sight and widens their seen
// times, 500 to a statement.
func upsertDevicesSQL(mysql bool, seen []*deviceSeen) []stmt {
	conflict := ` ON CONFLICT (app_id, device_id) DO UPDATE SET
			first_seen_at = min(first_seen_at, excluded.first_seen_at),
			last_seen_at = max(last_seen_at, excluded.last_seen_at),
			user_agent = CASE WHEN excluded.user_agent = '' THEN user_agent ELSE excluded.user_agent END`
	if mysql {
		conflict = ` ON DUPLICATE KEY UPDATE
			first_seen_at = LEAST(first_seen_at, VALUES(first_seen_at)),
			last_seen_at = GREATEST(last_seen_at, VALUES(last_seen_at)),
			user_agent = IF(VALUES(user_agent) = '', user_agent, VALUES(user_agent))`
	}
	var out []stmt
	for chunk := range slices.Chunk(seen, 500) {
		var sb strings.Builder
		args := make([]any, 0, len(chunk)*5)
		sb.WriteString(orFail(mysql, "INSERT INTO devices (app_id, device_id, user_agent, first_seen_at, last_seen_at) VALUES "))
		for i, d := range chunk {
			if i > 0 {
				sb.WriteByte(',')
			}
			sb.WriteString("(?,?,?,?,?)")
			args = append(args, d.appID, d.deviceID, d.ua, d.first, d.last)
		}
		sb.WriteString(conflict)
		out = append(out, stmt{sb.String(), args})
	}
	return out
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

// errTooManyRounds ends a group commit that keeps meeting surprises.
var errTooManyRounds = fmt.Errorf("models.Writer: the group commit was rolled back %d times", maxRounds)

const maxRounds = 20
