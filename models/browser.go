package models

import (
	"context"

	"gorm.io/gorm"
)

// BrowseInput selects events for the event browser.
type BrowseInput struct {
	Rules []Rule
	// Any combines the rules with OR instead of AND.
	Any   bool
	First int
	After string
}

// BrowseEvents pages through an app's events matching the rules, newest
// first. Rules are validated and compiled to placeholders; nothing the
// caller sends becomes SQL text.
func BrowseEvents(ctx context.Context, db *gorm.DB, app *App, in BrowseInput) (*EventPage, error) {
	if err := validateRules("rules", in.Rules, false); err != nil {
		return nil, err
	}
	cond, args := rulesSQL(isMySQL(db), app.ID, in.Rules, in.Any)
	q := db.WithContext(ctx).Table("events AS e").Select("e.*").Where("e.app_id = ?", app.ID).Where(cond, args...)
	return timeline(q, in.First, in.After)
}
