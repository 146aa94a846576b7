package models_test

import (
	"slices"
	"testing"

	"github.com/crumbs-dev/crumbs/models"
	"github.com/crumbs-dev/crumbs/models/modelstest"
	"gorm.io/gorm"
)

// The text operators and the lead search ignore case as Go's
// strings.ToLower does (as automations, funnels and goals match in Go), on
// MariaDB too. Its LOWER under the tables' binary collation left 737 of
// Go's 2,879 cased letters as they were, so there contains "straße" missed
// STRAẞE, "ƞ" missed Ƞ, and Deseret and Cherokee capitals were never found
// by their small letters, while SQLite and automations found them.
func TestTextRulesFoldCaseAsGo(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *gorm.DB) {
		e := newEnv(t, db)
		titles := map[string]string{
			"sharp s":  "HAUPTSTRAẞE 5",
			"latin":    "Ƞ and Ⱥ",
			"deseret":  "𐐀𐐁 page",
			"cherokee": "ᏣᎳᎩ news",
			"ascii":    "Plain Title",
		}
		ids := map[uint64]string{}
		for name, title := range titles {
			ids[e.mustTrigger(models.TriggerInput{Code: "view", Title: title, Properties: map[string]any{"t": title}}).EventID] = name
		}
		for _, c := range []struct {
			value string
			want  []string
		}{
			{"straße", []string{"sharp s"}},
			{"ƞ and ⱥ", []string{"latin"}},
			{"𐐨𐐩", []string{"deseret"}},
			{"ꮳꮃꭹ", []string{"cherokee"}},
			{"plain", []string{"ascii"}},
		} {
			for _, field := range []string{"title", "properties.t"} {
				if got := e.browsed(ids, models.Rule{Field: field, Operator: "contains", Value: c.value}); !slices.Equal(got, c.want) {
					t.Errorf("%s contains %q: %q, want %q", field, c.value, got, c.want)
				}
			}
		}

		for i, name := range []string{"JÜRGEN GROẞ", "ᏣᎳᎩ Smith"} {
			if _, err := models.Identify(e.ctx, db, models.NewCatalog(db, 0), models.IdentifyInput{AppPublicID: e.app.PublicID, Secret: e.secret,
				DeviceID: "lead-device-" + string(rune('a'+i)), Email: string(rune('a'+i)) + "@example.com", Name: ptr(name)}); err != nil {
				t.Fatal(err)
			}
		}
		for search, want := range map[string]string{"groß": "JÜRGEN GROẞ", "ꮳꮃꭹ": "ᏣᎳᎩ Smith"} {
			page, err := models.Leads(e.ctx, db, e.owner, e.app.PublicID, search, 10, "")
			if err != nil {
				t.Fatal(err)
			}
			if len(page.Leads) != 1 || page.Leads[0].Name == nil || *page.Leads[0].Name != want {
				t.Errorf("lead search %q: %d leads, want %q", search, len(page.Leads), want)
			}
		}
	})
}
