package models_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/crumbs-dev/crumbs/models"
	"github.com/crumbs-dev/crumbs/models/modelstest"
	"gorm.io/gorm"
)

func TestBrowseEventsMatchesBruteForce(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *gorm.DB) {
		e := newFunnelEnv(t, db)
		var events []models.Event
		db.Where("app_id = ?", e.app.ID).Order("occurred_at DESC, id DESC").Find(&events)
		defs, _ := models.EventDefinitions(e.ctx, db, e.app.ID, nil)
		codeOf := map[uint64]string{}
		for _, d := range defs {
			codeOf[d.ID] = d.Code
		}
		var devices []models.Device
		db.Where("app_id = ? AND lead_id IS NOT NULL", e.app.ID).Find(&devices)
		emailOf := map[string]string{}
		for _, d := range devices {
			var l models.Lead
			db.First(&l, *d.LeadID)
			emailOf[d.DeviceID] = l.EmailKey
		}
		price := func(ev models.Event) float64 { p, _ := ev.Properties["price"].(json.Number).Float64(); return p }
		cases := []struct {
			rules []models.Rule
			any   bool
			want  func(models.Event) bool
		}{
			{[]models.Rule{{Field: "code", Operator: "equals", Value: "a"}, {Field: "url", Operator: "contains", Value: "pricing"}}, false,
				func(ev models.Event) bool {
					return codeOf[ev.DefinitionID] == "a" && strings.Contains(strings.ToLower(ev.URL), "pricing")
				}},
			{[]models.Rule{{Field: "properties.price", Operator: "greater_than", Value: "90"}, {Field: "code", Operator: "starts_with", Value: "VI"}}, true,
				func(ev models.Event) bool { return price(ev) > 90 || codeOf[ev.DefinitionID] == "view" }},
			{[]models.Rule{{Field: "properties.plan", Operator: "not_equals", Value: "pro"}, {Field: "properties.missing", Operator: "exists"}}, true,
				func(ev models.Event) bool { return ev.Properties["plan"] != "pro" }},
			{[]models.Rule{{Field: "lead.email", Operator: "equals", Value: "P3@example.com"}}, false,
				func(ev models.Event) bool { return emailOf[ev.DeviceID] == "p3@example.com" }},
			{[]models.Rule{{Field: "lead.email", Operator: "not_equals", Value: "p3@example.com"}, {Field: "url", Operator: "ends_with", Value: "/"}}, false,
				func(ev models.Event) bool {
					return emailOf[ev.DeviceID] != "p3@example.com" && strings.HasSuffix(ev.URL, "/")
				}},
			{[]models.Rule{{Field: "properties.2fa", Operator: "exists"}, {Field: "properties.price", Operator: "less_than", Value: "3.5"}}, true,
				func(ev models.Event) bool { return price(ev) < 3.5 }},
			{nil, false, func(models.Event) bool { return true }},
		}
		for i, c := range cases {
			var want []uint64
			for _, ev := range events {
				if c.want(ev) {
					want = append(want, ev.ID)
				}
			}
			var got []uint64
			after := ""
			for {
				page, err := models.BrowseEvents(e.ctx, db, e.app, models.BrowseInput{Rules: c.rules, Any: c.any, First: 37, After: after})
				if err != nil {
					t.Fatal(err)
				}
				for _, ev := range page.Events {
					got = append(got, ev.ID)
				}
				if !page.HasNextPage {
					break
				}
				after = page.Events[len(page.Events)-1].Cursor()
			}
			if len(want) == 0 || len(got) != len(want) {
				t.Fatalf("case %d: %d events, brute force %d", i, len(got), len(want))
			}
			for j := range got {
				if got[j] != want[j] {
					t.Fatalf("case %d: event %d is %d, brute force %d", i, j, got[j], want[j])
				}
			}
		}
		// A time bound: only the events of the funnel day.
		from, to := funnelDay, funnelDay.Add(24*time.Hour)
		page, err := models.BrowseEvents(e.ctx, db, e.app, models.BrowseInput{First: 500, From: &from, To: &to})
		if err != nil {
			t.Fatal(err)
		}
		var inDay int
		for _, ev := range events {
			if !ev.OccurredAt.Before(from) && ev.OccurredAt.Before(to) {
				inDay++
			}
		}
		if len(page.Events) != inDay || inDay == 0 {
			t.Fatalf("bounded browse: %d events, brute force %d", len(page.Events), inDay)
		}
		_, err = models.BrowseEvents(e.ctx, db, e.app, models.BrowseInput{First: 10, Rules: []models.Rule{{Field: "properties.a'b", Operator: "equals"}}})
		wantField(t, err, "rules.0.field")
		_, err = models.BrowseEvents(e.ctx, db, e.app, models.BrowseInput{First: 10, Rules: []models.Rule{{Field: "url", Operator: "regex"}}})
		wantField(t, err, "rules.0.operator")
		_, err = models.BrowseEvents(e.ctx, db, e.app, models.BrowseInput{First: 10, Rules: []models.Rule{{Field: "properties.price", Operator: "greater_than", Value: "x"}}})
		wantField(t, err, "rules.0.value")
		// A range that ends before it starts is a mistake to name, not an
		// empty page (an empty page read as "no such events").
		_, err = models.BrowseEvents(e.ctx, db, e.app, models.BrowseInput{First: 10, From: &to, To: &from})
		wantField(t, err, "to")
		_, err = models.BrowseEvents(e.ctx, db, e.app, models.BrowseInput{First: 10, From: &from, To: &from})
		wantField(t, err, "to")
	})
}
