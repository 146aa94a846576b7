package models

import (
	"context"
	"errors"
	"maps"
	"slices"
)

// errSurprise is why an attempt was rolled back and written again.
var errSurprise = errors.New("models.Writer: the group commit was not what the store expected")

// A surprise found by check.
type surprise int

const (
	noSurprise         surprise = iota
	sealedOver                  // the event log was sealed past the batch's ids
	notInserted                 // fewer events inserted than sent
	refusedDefinitions          // a definition was deleted or disabled
	erasedMessages              // a messageId was erased (has a tombstone)
)

// check looks at each statement's affected rows before the commit.
func (c *commitPlan) check(affected []int64) surprise {
	if c.claimAt >= 0 && affected[c.claimAt] != 1 {
		return sealedOver
	}
	var inserted int64
	for _, n := range affected[c.eventsFrom:c.eventsTo] {
		inserted += n
	}
	if inserted != int64(len(c.store)) {
		return notInserted
	}
	for _, n := range affected[c.eventsTo:c.erasedTo] {
		if n != 0 {
			return erasedMessages
		}
	}
	if c.countersAt >= 0 && affected[c.countersAt] != int64(len(c.defIDs)) {
		return refusedDefinitions
	}
	return noSurprise
}

// explain finds out, after the rollback, what a surprise means for the
// next attempt.
func (w *Writer) explain(ctx context.Context, c *commitPlan, s surprise) error {
	var err error
	switch s {
	case sealedOver:
		// Take ids above the seal.
		err = raiseFloorToSeal(ctx, w.db)
	case notInserted:
		var found int
		if found, err = w.findStored(ctx, c.store); err == nil && found == 0 {
			// Not a stored messageId: an id another replica made too.
			w.ids.reseed()
		}
	case refusedDefinitions:
		err = w.findRefusals(ctx, c)
	case erasedMessages:
		_, err = w.findErased(ctx, c.store)
	}
	return errors.Join(errSurprise, err)
}

// findStored marks the events whose messageId is already stored as its
// duplicates, and returns how many it found.
func (w *Writer) findStored(ctx context.Context, store []*pending) (int, error) {
	byApp := map[uint64]map[string]*pending{}
	for _, p := range store {
		if p.event.MessageID == nil {
			continue
		}
		if byApp[p.event.AppID] == nil {
			byApp[p.event.AppID] = map[string]*pending{}
		}
		byApp[p.event.AppID][*p.event.MessageID] = p
	}
	found := 0
	for appID, byMessage := range byApp {
		var rows []struct {
			ID        uint64
			MessageID string
		}
		err := w.db.WithContext(ctx).Model(&Event{}).Select("id, message_id").
			Where("app_id = ? AND message_id IN ?", appID, slices.Collect(maps.Keys(byMessage))).Scan(&rows).Error
		if err != nil {
			return found, err
		}
		for _, r := range rows {
			// Only an exact match: a collation that ignores trailing spaces
			// would return others.
			if p := byMessage[r.MessageID]; p != nil {
				p.storedAs = r.ID
				found++
			}
		}
	}
	return found, nil
}

// findRefusals marks the triggers of definitions deleted or disabled
// since the catalog read them: a disabled one's are refused, and a deleted
// one's go to the definition that now has their code, if another replica
// made one meanwhile (its catalog never held the old one), or else are
// counted as unknown codes.
func (w *Writer) findRefusals(ctx context.Context, c *commitPlan) error {
	w.catalog.Invalidate()
	var rows []struct {
		ID      uint64
		Enabled bool
	}
	if err := w.db.WithContext(ctx).Model(&EventDefinition{}).Select("id, enabled").Where("id IN ?", c.defIDs).Scan(&rows).Error; err != nil {
		return err
	}
	enabled := map[uint64]bool{}
	for _, r := range rows {
		enabled[r.ID] = r.Enabled
	}
	var gone []*pending
	for _, id := range c.defIDs {
		on, exists := enabled[id]
		if on {
			continue
		}
		for _, p := range c.byDef[id] {
			if exists {
				p.refused = true
				p.result = TriggerResult{Err: newError(ErrEventDisabled, "event %q is disabled", p.code)}
			} else {
				gone = append(gone, p)
			}
		}
	}
	return w.findRecreated(ctx, gone)
}

// findRecreated points triggers whose definition was deleted at the
// definition now holding their code: the next attempt's counter update
// checks it under its row lock like any other. Those whose code has none
// are counted as unknown codes.
func (w *Writer) findRecreated(ctx context.Context, gone []*pending) error {
	byApp := map[uint64]map[string]bool{}
	for _, p := range gone {
		if byApp[p.event.AppID] == nil {
			byApp[p.event.AppID] = map[string]bool{}
		}
		byApp[p.event.AppID][p.code] = true
	}
	current := map[uint64]map[string]uint64{}
	for appID, codes := range byApp {
		var defs []struct {
			ID   uint64
			Code string
		}
		err := w.db.WithContext(ctx).Model(&EventDefinition{}).Select("id, code").
			Where("app_id = ? AND code IN ?", appID, slices.Collect(maps.Keys(codes))).Scan(&defs).Error
		if err != nil {
			return err
		}
		current[appID] = map[string]uint64{}
		for _, d := range defs {
			current[appID][d.Code] = d.ID
		}
	}
	for _, p := range gone {
		if id := current[p.event.AppID][p.code]; id != 0 {
			p.event.DefinitionID = id
		} else {
			p.unknown = true
		}
	}
	return nil
}
