package models_test

import (
	"slices"
	"testing"

	"github.com/crumbs-dev/crumbs/models"
	"github.com/crumbs-dev/crumbs/models/modelstest"
	"gorm.io/gorm"
)

// A property that is JSON null matches rules as a missing one does, on both
// stores, as automations' matcher in Go reads it; the string "null" is text
// like any other. On MariaDB a null read as the text "null": it matched
// equals "null", contains "ul" and greater_than -1 (the ingestion audit).
func TestNullPropertiesMatchAsMissing(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *gorm.DB) {
		e := newEnv(t, db)
		names := map[uint64]string{}
		for name, props := range map[string]map[string]any{
			"null":        {"v": nil, "n": map[string]any{"w": nil}},
			"text null":   {"v": "null", "n": map[string]any{"w": "null"}},
			"text x":      {"v": "x", "n": map[string]any{"w": 5}},
			"missing":     {},
			"number":      {"v": 3},
			"object":      {"v": map[string]any{"k": "null"}},
			"text quoted": {"v": `"null"`},
		} {
			names[e.mustTrigger(models.TriggerInput{Code: "view", Properties: props}).EventID] = name
		}
		for _, c := range []struct {
			rule models.Rule
			want []string
		}{
			{models.Rule{Field: "properties.v", Operator: "equals", Value: "null"}, []string{"text null"}},
			{models.Rule{Field: "properties.v", Operator: "contains", Value: "ul"}, []string{"text null", "object", "text quoted"}},
			// Only numbers (and text holding one) compare as numbers.
			{models.Rule{Field: "properties.v", Operator: "greater_than", Value: "-1"}, []string{"number"}},
			{models.Rule{Field: "properties.v", Operator: "exists"}, []string{"text null", "text x", "number", "object", "text quoted"}},
			{models.Rule{Field: "properties.v", Operator: "not_equals", Value: "x"}, []string{"null", "text null", "missing", "number", "object", "text quoted"}},
			{models.Rule{Field: "properties.v", Operator: "equals", Value: `"null"`}, []string{"text quoted"}},
			{models.Rule{Field: "properties.n.w", Operator: "equals", Value: "null"}, []string{"text null"}},
			{models.Rule{Field: "properties.n.w", Operator: "exists"}, []string{"text null", "text x"}},
		} {
			got := e.browsed(names, c.rule)
			slices.Sort(c.want)
			if !slices.Equal(got, c.want) {
				t.Errorf("%s %s %q: %q, want %q", c.rule.Field, c.rule.Operator, c.rule.Value, got, c.want)
			}
		}
	})
}
