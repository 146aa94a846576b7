package models_test

import (
	"slices"
	"testing"

	"github.com/crumbs-dev/crumbs/models"
	"github.com/crumbs-dev/crumbs/models/modelstest"
	"gorm.io/gorm"
)

// A property equals a value only when their text is the same, trailing
// spaces included, on every store, as automations and funnels read it in
// Go. On MariaDB the property's text (a JSON function's result) had a PAD
// SPACE collation: "abc " equalled "abc" and was not not_equals "abc".
func TestPropertyEqualsCountsTrailingSpaces(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *gorm.DB) {
		e := newEnv(t, db)
		ids := map[uint64]string{}
		for _, v := range []string{"abc", "abc ", "abc\t", "ABC"} {
			ids[e.mustTrigger(models.TriggerInput{Code: "view", Properties: map[string]any{"v": v, "n": map[string]any{"v": v}}}).EventID] = v
		}
		for _, c := range []struct {
			rule models.Rule
			want []string
		}{
			{models.Rule{Field: "properties.v", Operator: "equals", Value: "abc"}, []string{"abc"}},
			{models.Rule{Field: "properties.n.v", Operator: "equals", Value: "abc"}, []string{"abc"}},
			{models.Rule{Field: "properties.v", Operator: "equals", Value: "abc "}, []string{"abc "}},
			{models.Rule{Field: "properties.v", Operator: "not_equals", Value: "abc"}, []string{"ABC", "abc\t", "abc "}},
		} {
			if got := e.browsed(ids, c.rule); !slices.Equal(got, c.want) {
				t.Errorf("%s %s %q: %q, want %q", c.rule.Field, c.rule.Operator, c.rule.Value, got, c.want)
			}
		}
	})
}
