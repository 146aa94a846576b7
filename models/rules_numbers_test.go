package models_test

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"unicode"

	"gorm.io/gorm"

	"github.com/crumbs-dev/crumbs/models"
	"github.com/crumbs-dev/crumbs/models/modelstest"
)

// Rules read a value the same way on SQLite, on MySQL and in Go
// (automations, funnels): equals compares numbers as numbers, text
// operators see a number's digits as sent and ignore case beyond ASCII,
// and greater_than and less_than compare numbers and text that holds one,
// nothing else.
func TestRulesReadNumbersAlike(t *testing.T) {
	values := map[string]any{
		"1.50": json.Number("1.50"), "1.5": json.Number("1.5"), "1e3": json.Number("1e3"), "1000": json.Number("1000"),
		"1E+3": json.Number("1E+3"), "-0": json.Number("-0"), "0": json.Number("0"), "5e-324": json.Number("5e-324"),
		"1e-11": json.Number("0.00000000001"), "big": json.Number("12345678901234567890123"),
		"2^53+1": json.Number("9007199254740993"), "long": json.Number("47685.260955547655616027"),
		"max": json.Number("1.7976931348623157e308"), "-2.5": json.Number("-2.5"), "10.0": json.Number("10.0"),
		"float 1e21": 1e21, "float 0.1": 0.1, "int 42": 42,
		`"1.5"`: "1.5", `"1.50"`: "1.50", `" 12 "`: " 12 ", `"12abc"`: "12abc", `"abc"`: "abc", `"0x10"`: "0x10",
		`"1e400"`: "1e400", `"\t7\n"`: "\t7\n", `"+1"`: "+1", `".5"`: ".5", `"1."`: "1.", `"007"`: "007", `"-"`: "-",
		`""`: "", `"ÉGLISE"`: "ÉGLISE", `"Жук"`: "Жук", `"a\x00bc"`: "a\x00bc", "true": true, "false": false, "object": map[string]any{"k": 1}, "array": []any{1, "x"}, "null": nil,
	}
	ruleValues := []string{"1.5", "1.50", "1000", "1e3", "-0", "0", "12", "11", "-1", "abc", "true", "5e-324", "1e-11",
		"9007199254740992", "47685.26095554766", "1.7976931348623157e308", "1e21", "0.1", "42", "", "1", "e", ".", "E+", "12abc", "007", "7", "é", "égl", "ЖУК", "жу", "b", "bc", "ise"}
	operators := []string{"equals", "not_equals", "contains", "starts_with", "ends_with", "greater_than", "less_than", "exists"}

	modelstest.Each(t, func(t *testing.T, db *gorm.DB) {
		e := newEnv(t, db)
		names := map[uint64]string{}
		for name, v := range values {
			title, _ := v.(string) // text that may hold a number, as a title too
			if strings.ContainsFunc(title, unicode.IsControl) {
				title = "" // refused in titles
			}
			names[e.mustTrigger(models.TriggerInput{Code: "view", Title: title, Properties: map[string]any{"v": v}}).EventID] = name
		}
		names[e.mustTrigger(models.TriggerInput{Code: "view"}).EventID] = "missing"
		all, err := models.BrowseEvents(e.ctx, db, e.app, models.BrowseInput{First: 100})
		if err != nil {
			t.Fatal(err)
		}
		if len(all.Events) != len(names) {
			t.Fatalf("%d events, want %d", len(all.Events), len(names))
		}
		matched := func(r models.Rule) (inSQL, inGo []string) {
			t.Helper()
			for _, ev := range all.Events {
				if models.MatchesRule(r, "view", ev) {
					inGo = append(inGo, names[ev.ID])
				}
			}
			slices.Sort(inGo)
			return e.browsed(names, r), inGo
		}

		// What users count on, on every store.
		for _, c := range []struct {
			op, value string
			want      []string
		}{
			{"equals", "1.5", []string{`"1.5"`, "1.5", "1.50"}},
			{"equals", "1000", []string{"1000", "1E+3", "1e3"}},
			{"equals", "1.50", []string{`"1.50"`, "1.5", "1.50"}},
			{"equals", "0", []string{"-0", "0"}},
			{"equals", "9007199254740992", []string{"2^53+1"}}, // as doubles
			{"equals", "47685.26095554766", []string{"long"}},
			{"equals", "1e21", []string{"float 1e21"}},
			{"contains", "e", []string{"1E+3", "1e3", "5e-324", "float 1e21", "max", `"1e400"`, `"ÉGLISE"`, "false", "true"}},
			{"starts_with", "1.5", []string{`"1.5"`, `"1.50"`, "1.5", "1.50"}},
			{"greater_than", "11", []string{`" 12 "`, "1000", "1E+3", "1e3", "2^53+1", "big", "float 1e21", "int 42", "long"}},
			{"less_than", "0", []string{"-2.5"}},
			{"contains", "égl", []string{`"ÉGLISE"`}},
			{"starts_with", "ЖУ", []string{`"Жук"`}},
			{"ends_with", "bc", []string{`"a\x00bc"`, `"abc"`, `"12abc"`}}, // past a NUL
			{"greater_than", "0", []string{`"\t7\n"`, `" 12 "`, `"1.5"`, `"1.50"`, "1.5", "1.50", "1000", "1E+3", "1e-11", "1e3", "10.0", "2^53+1", "5e-324", "big", "float 0.1", "float 1e21", "int 42", "long"}},
		} {
			r := models.Rule{Field: "properties.v", Operator: c.op, Value: c.value}
			inSQL, inGo := matched(r)
			slices.Sort(c.want)
			if !slices.Equal(inSQL, c.want) || !slices.Equal(inGo, c.want) {
				t.Errorf("%s %q: store %q, Go %q; want %q", c.op, c.value, inSQL, inGo, c.want)
			}
		}

		// And every other pair: the store and Go agree.
		for _, op := range operators {
			for _, value := range ruleValues {
				if op == "exists" && value != "" {
					continue
				}
				if (op == "greater_than" || op == "less_than") && !isDecimal(value) {
					continue
				}
				r := models.Rule{Field: "properties.v", Operator: op, Value: value}
				if inSQL, inGo := matched(r); !slices.Equal(inSQL, inGo) {
					t.Errorf("%s %q: store %q, Go %q", op, value, inSQL, inGo)
				}
				r.Field = "title"
				if inSQL, inGo := matched(r); !slices.Equal(inSQL, inGo) {
					t.Errorf("title %s %q: store %q, Go %q", op, value, inSQL, inGo)
				}
			}
		}
	})
}

func isDecimal(s string) bool {
	var f float64
	return json.Unmarshal([]byte(s), &f) == nil
}
