package models_test

import (
	"slices"

	"github.com/crumbs-dev/crumbs/models"
)

// browsed answers the names (names[event id]) of the app's events that the
// event browser finds with these rules, sorted: the rules as SQL on the
// store, for the tests of what rules mean.
func (e *env) browsed(names map[uint64]string, rules ...models.Rule) []string {
	e.t.Helper()
	page, err := models.BrowseEvents(e.ctx, e.db, e.app, models.BrowseInput{Rules: rules, First: 100})
	if err != nil {
		e.t.Fatalf("browse %+v: %v", rules, err)
	}
	var got []string
	for _, ev := range page.Events {
		got = append(got, names[ev.ID])
	}
	slices.Sort(got)
	return got
}
