package models

import (
	"context"
	"strings"
	"time"

	"gorm.io/gorm"
)

// BrowseInput selects events for the event browser.
type BrowseInput struct {
	Rules []Rule
	// Any combines the rules with OR instead of AND.
	Any bool
	// From and To, when set, bound the events' times; they also bound how
	// far a query with rare matches on text fields has to scan.
	From, To *time.Time
	First    int
	After    string
}

// BrowseEvents pages through an app's events matching the rules, newest
// first. Rules are validated and compiled to placeholders; nothing the
// caller sends becomes SQL text. Rules "code equals" and "lead.email
// equals" are resolved to definition and device ids first, so the query can
// walk the (definition, time) or (device, time) index instead of all events.
func BrowseEvents(ctx context.Context, db *gorm.DB, app *App, in BrowseInput) (*EventPage, error) {
	var bad validation
	bad.add(validateRules("rules", in.Rules, false))
	bad.check("to", in.From == nil || in.To == nil || in.From.Before(*in.To), "must be after from")
	if err := bad.err(); err != nil {
		return nil, err
	}
	db = db.WithContext(ctx)
	resolved := map[int]sqlCond{}
	for i, r := range in.Rules {
		if r.Operator != OpEquals {
			continue
		}
		var ids []any
		var col string
		switch r.Field {
		case "code":
			var defIDs []uint64
			if err := db.Model(&EventDefinition{}).Where("app_id = ? AND code = ?", app.ID, r.Value).Pluck("id", &defIDs).Error; err != nil {
				return nil, err
			}
			col = "e.definition_id"
			for _, id := range defIDs {
				ids = append(ids, id)
			}
		case "lead.email":
			var devices []string
			err := db.Table("devices AS d").Joins("JOIN leads l ON l.id = d.lead_id").
				Where("d.app_id = ? AND l.app_id = ? AND l.email_key = ?", app.ID, app.ID, strings.ToLower(r.Value)).Pluck("d.device_id", &devices).Error
			if err != nil {
				return nil, err
			}
			col = "e.device_id"
			for _, d := range devices {
				ids = append(ids, d)
			}
		default:
			continue
		}
		if len(ids) == 0 {
			resolved[i] = sqlCond{cond: "1 = 0"}
		} else {
			resolved[i] = sqlCond{cond: col + " IN ?", args: []any{ids}}
		}
	}
	d, err := dialectOf(db)
	if err != nil {
		return nil, err
	}
	cond, args := rulesSQL(d, app.ID, in.Rules, in.Any, resolved)
	q := db.Table("events AS e").Select("e.*").Where("e.app_id = ?", app.ID).Where(cond, args...)
	if in.From != nil {
		q = q.Where("e.occurred_at >= ?", StoreTime(*in.From))
	}
	if in.To != nil {
		q = q.Where("e.occurred_at < ?", StoreTime(*in.To))
	}
	return timeline(q, in.First, in.After)
}
