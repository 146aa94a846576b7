package models_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/crumbs-dev/crumbs/models"
	"github.com/crumbs-dev/crumbs/models/modelstest"
	"gorm.io/gorm"
)

// A matcher's rules and a webhook's headers are stored as JSON in a TEXT
// column, which holds 65,535 bytes on MySQL and anything on SQLite. Within
// the limits per rule and per header, JSON's escapes (< is \u003c) made
// them longer: 20 rules of 2,048 '<' were saved on SQLite and answered
// INTERNAL_SERVER_ERROR on MariaDB (Data too long for column 'rules'), 20
// headers of 2,000 '<' likewise. Now both stores refuse them naming the
// field, and take the longest lists that fit.
func TestStoredJSONListsFitEveryStore(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *gorm.DB) {
		e := newAutomationEnv(t, db, models.DispatcherOptions{})
		e.define("demo")
		rules := func(value string) []models.Rule {
			var rs []models.Rule
			for range 20 {
				rs = append(rs, models.Rule{Field: "url", Operator: "contains", Value: value})
			}
			return rs
		}
		_, err := models.CreateEventMatcherFor(e.ctx, e.db, e.owner, e.app.PublicID,
			models.EventMatcherInput{Name: ptr("Escaped"), Code: ptr("demo"), Rules: rules(strings.Repeat("<", 2048))})
		wantField(t, err, "rules")
		long := rules(strings.Repeat("😀", 512))
		m, err := models.CreateEventMatcherFor(e.ctx, e.db, e.owner, e.app.PublicID,
			models.EventMatcherInput{Name: ptr("Long"), Code: ptr("demo"), Rules: long})
		if err != nil {
			t.Fatal(err)
		}
		_, err = models.UpdateEventMatcherFor(e.ctx, e.db, e.owner, e.app.PublicID, models.FormatID(m.ID),
			models.EventMatcherInput{Rules: rules(strings.Repeat("\x01", 2048))})
		wantField(t, err, "rules")
		read, err := models.EventMatchersFor(e.ctx, e.db, e.owner, e.app.PublicID)
		if err != nil || len(read) != 1 || !slices.Equal(read[0].Rules, long) {
			t.Fatalf("matchers read back %v, %v", len(read), err)
		}

		headers := func(value string) []models.Header {
			var hs []models.Header
			for i := range 20 {
				hs = append(hs, models.Header{Name: fmt.Sprintf("X-Key-%d", i), Value: value})
			}
			return hs
		}
		created := e.rule("Headers", "Long", false, webhookTo("https://crm.example/hooks"))
		actionID := models.FormatID(created.Secrets[0].Action.ID)
		update := func(hs []models.Header) error {
			_, err := models.UpdateAutomationActionFor(e.ctx, e.db, e.owner, models.URLGuard{AllowPrivate: true}, e.app.PublicID, actionID,
				models.AutomationActionInput{Headers: hs})
			return err
		}
		wantField(t, update(headers(strings.Repeat("<", 2000))), "input.headers")
		if err := update(headers(strings.Repeat("é", 1000))); err != nil {
			t.Fatal(err)
		}
		acts, err := models.ActionsOfRules(e.ctx, e.db, []uint64{created.Rule.ID})
		if err != nil || len(acts[created.Rule.ID]) != 1 || !slices.Equal(acts[created.Rule.ID][0].Headers, models.HeaderList(headers(strings.Repeat("é", 1000)))) {
			t.Fatalf("headers read back wrong (%v)", err)
		}
	})
}
