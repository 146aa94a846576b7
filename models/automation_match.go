package models

import (
	"context"
	"fmt"
	"slices"
	"time"

	"gorm.io/gorm"
)

// AutomationsConsumerName names the event log consumer that matches events
// against the enabled rules.
const AutomationsConsumerName = "automations"

// matchEvents returns the (rule, event) pairs of the events' apps' enabled
// rules that match, in event order, then rule id order.
func matchEvents(ctx context.Context, db *gorm.DB, events []*Event) ([]ruleMatch, error) {
	apps := map[uint64]bool{}
	for _, e := range events {
		apps[e.AppID] = true
	}
	rules, err := activeRules(ctx, db, keysOf(apps), 0)
	if err != nil || len(rules) == 0 {
		return nil, err
	}
	return matchRules(ctx, db, rules, events)
}

// activeRule is an enabled rule ready to match: its matcher resolved to a
// definition id, and its active actions.
type activeRule struct {
	id, appID      uint64
	definitionID   uint64
	code           string
	rules          []Rule
	identifiedOnly bool
	actions        []uint64
}

// activeRules loads the enabled rules of the apps (or the one rule ruleID,
// enabled or not, when non-zero) in three queries, each app's in id order
// with their actions in id order: deliveries are enqueued in that order, on
// every store.
func activeRules(ctx context.Context, db *gorm.DB, appIDs []uint64, ruleID uint64) (map[uint64][]*activeRule, error) {
	ctx, cancel := context.WithTimeout(ctx, dbCallTimeout)
	defer cancel()
	var rows []struct {
		ID, AppID      uint64
		IdentifiedOnly bool
		Code           string
		Rules          RuleList
	}
	q := db.WithContext(ctx).Table("automation_rules AS r").Joins("JOIN event_matchers AS m ON m.id = r.matcher_id").
		Select("r.id, r.app_id, r.identified_only, m.code, m.rules")
	if ruleID != 0 {
		q = q.Where("r.id = ?", ruleID)
	} else {
		q = q.Where("r.enabled = ? AND r.app_id IN ?", true, appIDs)
	}
	if err := q.Order("r.id").Scan(&rows).Error; err != nil {
		return nil, fmt.Errorf("models.activeRules: %w", err)
	}
	if len(rows) == 0 {
		return nil, nil
	}
	ruleIDs := make([]uint64, len(rows))
	codes := map[string]bool{}
	for i, r := range rows {
		ruleIDs[i] = r.ID
		codes[r.Code] = true
	}
	var acts []struct{ ID, RuleID uint64 }
	err := db.WithContext(ctx).Model(&AutomationAction{}).Select("id, rule_id").
		Where("rule_id IN ? AND disabled_at IS NULL", ruleIDs).Order("id").Scan(&acts).Error
	if err != nil {
		return nil, fmt.Errorf("models.activeRules: %w", err)
	}
	var defs []struct {
		ID, AppID uint64
		Code      string
	}
	ruleApps := map[uint64]bool{}
	for _, r := range rows {
		ruleApps[r.AppID] = true
	}
	err = db.WithContext(ctx).Model(&EventDefinition{}).Select("id, app_id, code").
		Where("app_id IN ? AND code IN ?", keysOf(ruleApps), keysOf(codes)).Scan(&defs).Error
	if err != nil {
		return nil, fmt.Errorf("models.activeRules: %w", err)
	}
	defID := map[[2]any]uint64{}
	for _, d := range defs {
		defID[[2]any{d.AppID, d.Code}] = d.ID
	}
	byID := map[uint64]*activeRule{}
	out := map[uint64][]*activeRule{}
	for _, r := range rows {
		def := defID[[2]any{r.AppID, r.Code}]
		if def == 0 {
			continue // no such event yet: nothing can match
		}
		ar := &activeRule{id: r.ID, appID: r.AppID, definitionID: def, code: r.Code, rules: r.Rules, identifiedOnly: r.IdentifiedOnly}
		byID[r.ID] = ar
		out[r.AppID] = append(out[r.AppID], ar)
	}
	for _, a := range acts {
		if r := byID[a.RuleID]; r != nil {
			r.actions = append(r.actions, a.ID)
		}
	}
	return out, nil
}

type ruleMatch struct {
	rule  *activeRule
	event *Event
}

// matchRules returns the (rule, event) pairs that match, in event order and
// then in the order of each app's rules, reading which devices are
// identified only for rules that ask.
func matchRules(ctx context.Context, db *gorm.DB, rules map[uint64][]*activeRule, events []*Event) ([]ruleMatch, error) {
	var out []ruleMatch
	needLead := map[uint64]map[string]bool{}
	for _, e := range events {
		for _, r := range rules[e.AppID] {
			if e.DefinitionID != r.definitionID || !matchesRules(r.rules, r.code, e) {
				continue
			}
			out = append(out, ruleMatch{rule: r, event: e})
			if r.identifiedOnly {
				if needLead[e.AppID] == nil {
					needLead[e.AppID] = map[string]bool{}
				}
				needLead[e.AppID][e.DeviceID] = true
			}
		}
	}
	if len(needLead) == 0 {
		return out, nil
	}
	identified := map[uint64]map[string]bool{}
	for appID, devs := range needLead {
		identified[appID] = map[string]bool{}
		for chunk := range inChunks(keysOf(devs), 500) {
			var ids []string
			cctx, cancel := context.WithTimeout(ctx, dbCallTimeout)
			err := db.WithContext(cctx).Model(&Device{}).Where("app_id = ? AND device_id IN ? AND lead_id IS NOT NULL", appID, chunk).
				Pluck("device_id", &ids).Error
			cancel()
			if err != nil {
				return nil, fmt.Errorf("models.matchRules: %w", err)
			}
			for _, id := range ids {
				identified[appID][id] = true
			}
		}
	}
	kept := out[:0]
	for _, m := range out {
		if !m.rule.identifiedOnly || identified[m.event.AppID][m.event.DeviceID] {
			kept = append(kept, m)
		}
	}
	return kept, nil
}

func keysOf[K comparable, V any](m map[K]V) []K {
	out := make([]K, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

// maxRuleScan bounds the events testRule and replayRule read.
const maxRuleScan = 100_000

// TestRuleInput is a rule to try on past events.
type TestRuleInput struct {
	Matcher        string
	IdentifiedOnly bool
	From, To       time.Time
}

// TestRuleResult says what a rule would have done in a range.
type TestRuleResult struct {
	// Matched counts the events in the range that would have fired it.
	Matched int
	// Scanned counts the events of the matcher's code read to find them.
	Scanned int
	// Truncated is true when the range held more events than one test
	// reads (100,000): narrow it.
	Truncated bool
	// Samples are the webhook payloads of the newest few matches.
	Samples []JSONObject
}

// TestRuleFor answers how many events in the range would have fired a rule
// with this trigger, with sample payloads, sending nothing; for viewers.
func TestRuleFor(ctx context.Context, db *gorm.DB, v Viewer, appPublicID string, in TestRuleInput) (*TestRuleResult, error) {
	return inApp(ctx, db, v, appPublicID, RoleViewer, func(app *App) (*TestRuleResult, error) {
		m, err := eventMatcherByName(ctx, db, app.ID, "input.matcher", in.Matcher)
		if err != nil {
			return nil, err
		}
		r := &activeRule{appID: app.ID, code: m.Code, rules: m.Rules, identifiedOnly: in.IdentifiedOnly}
		got, err := matchRange(ctx, db, app, r, in.From, in.To, testRuleSamples)
		if err != nil {
			return nil, err
		}
		res := &TestRuleResult{Matched: len(got.ids), Scanned: got.scanned, Truncated: got.truncated}
		rule := &AutomationRule{Name: "(test)"}
		for i := len(got.newest) - 1; i >= 0; i-- {
			p, err := buildPayload(ctx, db, app, rule, got.newest[i])
			if err != nil {
				return nil, err
			}
			res.Samples = append(res.Samples, p)
		}
		return res, nil
	})
}

// ReplayRuleFor re-sends, to every active action of the rule, the events of
// the range that match it now (whether or not the rule is enabled), and
// answers how many events that is; for editors. Receivers dedupe by
// webhook-id, which is the same as the first time.
func ReplayRuleFor(ctx context.Context, db *gorm.DB, v Viewer, appPublicID, ruleID string, from, to time.Time) (int, error) {
	return inApp(ctx, db, v, appPublicID, RoleEditor, func(app *App) (int, error) {
		rule, err := automationRuleByID(ctx, db, app, "ruleId", ruleID)
		if err != nil {
			return 0, err
		}
		if !from.Before(to) {
			return 0, Invalid("to", "must be after from")
		}
		rules, err := activeRules(ctx, db, nil, rule.ID)
		if err != nil || len(rules[app.ID]) == 0 {
			return 0, err
		}
		r := rules[app.ID][0]
		got, err := matchRange(ctx, db, app, r, from, to, 0)
		if err != nil {
			return 0, err
		}
		if got.truncated {
			return 0, Invalid("range", "holds more than %d events of the rule's code; replay a shorter range", maxRuleScan)
		}
		var pairs [][3]uint64
		for _, id := range got.ids {
			for _, a := range r.actions {
				pairs = append(pairs, [3]uint64{id, a, r.id})
			}
		}
		ctx, cancel := context.WithTimeout(ctx, dbCallTimeout)
		defer cancel()
		return len(got.ids), withRetry(ctx, func() error {
			return db.WithContext(ctx).Transaction(func(tx *gorm.DB) error { return enqueueDeliveries(tx, app.ID, pairs, true) })
		})
	})
}

// testRuleSamples is how many of the newest matches testRule answers as
// sample payloads.
const testRuleSamples = 3

// matchScanChunk is how many events matchRange holds at a time.
const matchScanChunk = 1000

// rangeMatch is what matched a rule in a range.
type rangeMatch struct {
	ids       []uint64 // the matching events, in id order
	newest    []*Event // the newest few of them, oldest first
	scanned   int      // events of the rule's code read
	truncated bool     // the range held more than maxRuleScan of them
}

// matchRange matches the events of [from, to) against one rule, reading
// at most maxRuleScan of them: their ids first (from the definition-time
// index), then the events a chunk at a time, so what it holds is bounded
// by the chunk whatever the events carry. It keeps the ids of those that
// match and the newest keep of them.
func matchRange(ctx context.Context, db *gorm.DB, app *App, r *activeRule, from, to time.Time, keep int) (*rangeMatch, error) {
	if !from.Before(to) {
		return nil, Invalid("to", "must be after from")
	}
	res := &rangeMatch{}
	if r.definitionID == 0 {
		var defs []uint64
		cctx, cancel := context.WithTimeout(ctx, dbCallTimeout)
		err := db.WithContext(cctx).Model(&EventDefinition{}).Where("app_id = ? AND code = ?", app.ID, r.code).Limit(1).Pluck("id", &defs).Error
		cancel()
		if err != nil {
			return nil, fmt.Errorf("models.matchRange: definition: %w", err)
		}
		if len(defs) == 0 {
			return res, nil // no such definition: nothing matches
		}
		r.definitionID = defs[0]
	}
	var ids []uint64
	cctx, cancel := context.WithTimeout(ctx, dbCallTimeout)
	err := db.WithContext(cctx).Model(&Event{}).
		Where("definition_id = ? AND occurred_at >= ? AND occurred_at < ?", r.definitionID, StoreTime(from), StoreTime(to)).
		Order("id").Limit(maxRuleScan+1).Pluck("id", &ids).Error
	cancel()
	if err != nil {
		return nil, fmt.Errorf("models.matchRange: %w", err)
	}
	if len(ids) > maxRuleScan {
		ids, res.truncated = ids[:maxRuleScan], true
	}
	rules := map[uint64][]*activeRule{app.ID: {r}}
	for chunk := range inChunks(ids, matchScanChunk) {
		var events []*Event
		cctx, cancel := context.WithTimeout(ctx, dbCallTimeout)
		err := db.WithContext(cctx).Where("app_id = ? AND id IN ?", app.ID, chunk).Order("id").Find(&events).Error
		cancel()
		if err != nil {
			return nil, fmt.Errorf("models.matchRange: events: %w", err)
		}
		res.scanned += len(events) // an event erased meanwhile is not counted
		matches, err := matchRules(ctx, db, rules, events)
		if err != nil {
			return nil, err
		}
		for _, m := range matches {
			res.ids = append(res.ids, m.event.ID)
			if keep > 0 {
				res.newest = append(res.newest, m.event)
				if len(res.newest) > keep {
					res.newest = slices.Delete(res.newest, 0, 1)
				}
			}
		}
	}
	return res, nil
}
