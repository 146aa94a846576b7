package models

import (
	"encoding/json"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Rule is one condition on events: a field, an operator and a value.
//
// Fields: code, url, referrer, source, title, lead.email, and
// properties.<key>[.<key>...] for a (nested) property. Operators: equals,
// not_equals (exact), contains, starts_with, ends_with (case-insensitive),
// greater_than, less_than (numeric), exists. A missing value (no property,
// anonymous device) matches only not_equals.
type Rule struct {
	Field    string `json:"field"`
	Operator string `json:"operator"`
	Value    string `json:"value,omitempty"`
}

// Rule operators.
const (
	OpEquals      = "equals"
	OpNotEquals   = "not_equals"
	OpContains    = "contains"
	OpStartsWith  = "starts_with"
	OpEndsWith    = "ends_with"
	OpGreaterThan = "greater_than"
	OpLessThan    = "less_than"
	OpExists      = "exists"
)

var (
	ruleOps       = map[string]bool{OpEquals: true, OpNotEquals: true, OpContains: true, OpStartsWith: true, OpEndsWith: true, OpGreaterThan: true, OpLessThan: true, OpExists: true}
	ruleFields    = map[string]string{"code": "", "url": "url", "referrer": "referrer", "source": "source", "title": "title", "lead.email": ""}
	propertyField = regexp.MustCompile(`^properties((\.[A-Za-z0-9_]{1,64}){1,5})$`)
)

const maxRules = 20

// validateRules checks rules; field names the input field in errors.
// eventOnly refuses fields that are not stored on the event itself.
func validateRules(field string, rules []Rule, eventOnly bool) error {
	if len(rules) > maxRules {
		return Invalid(field, "at most %d rules", maxRules)
	}
	for i, r := range rules {
		f := fmt.Sprintf("%s.%d", field, i)
		_, known := ruleFields[r.Field]
		if !known && !propertyField.MatchString(r.Field) {
			return Invalid(f+".field", "unknown field %q; use code, url, referrer, source, title, lead.email or properties.<key>", truncate(r.Field, 80))
		}
		if eventOnly && r.Field == "lead.email" {
			return Invalid(f+".field", "lead.email cannot be used here")
		}
		if !ruleOps[r.Operator] {
			return Invalid(f+".operator", "unknown operator %q", truncate(r.Operator, 40))
		}
		if len(r.Value) > 2048 || !utf8.ValidString(r.Value) {
			return Invalid(f+".value", "must be at most 2048 bytes of UTF-8")
		}
		if r.Operator == OpGreaterThan || r.Operator == OpLessThan {
			if _, ok := ruleNumber(r.Value); !ok {
				return Invalid(f+".value", "must be a decimal number such as 42 or -1.5e3 for %s", r.Operator)
			}
		}
	}
	return nil
}

// decimalNumber is the only number syntax a rule value may use: what JSON
// and SQL both read as a number (no NaN, Inf, hex or digit separators,
// which strconv.ParseFloat would take).
var decimalNumber = regexp.MustCompile(`^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?$`)

// ruleNumber reads a numeric rule value; it must be decimal and finite.
func ruleNumber(s string) (float64, bool) {
	if !decimalNumber.MatchString(s) {
		return 0, false
	}
	f, err := strconv.ParseFloat(s, 64)
	return f, err == nil && !math.IsInf(f, 0)
}

// jsonPath turns properties.a.b into the JSON path $."a"."b". Keys are
// limited to letters, digits and '_', and quoted so that keys such as "2fa"
// (not identifiers) are valid paths on every engine.
func jsonPath(field string) string {
	keys := strings.Split(strings.TrimPrefix(field, "properties."), ".")
	return `$."` + strings.Join(keys, `"."`) + `"`
}

// ruleSQL compiles one rule into a condition on the events table (alias e)
// with placeholders; only fixed column names and expressions are written.
func ruleSQL(mysql bool, appID uint64, r Rule) (string, []any) {
	var expr string
	var args []any
	switch {
	case r.Field == "code":
		cond, cargs := compareSQL("d2.code", r, nil)
		return "e.definition_id IN (SELECT d2.id FROM event_definitions d2 WHERE d2.app_id = ? AND " + cond + ")", append([]any{appID}, cargs...)
	case r.Field == "lead.email":
		r.Value = strings.ToLower(r.Value)
		in := "IN"
		if r.Operator == OpNotEquals {
			// Anonymous devices have no email, so they are not that email.
			r.Operator, in = OpEquals, "NOT IN"
		}
		cond, cargs := compareSQL("l2.email_key", r, nil)
		return "e.device_id " + in + " (SELECT d3.device_id FROM devices d3 JOIN leads l2 ON l2.id = d3.lead_id WHERE d3.app_id = ? AND " + cond + ")",
			append([]any{appID}, cargs...)
	case strings.HasPrefix(r.Field, "properties."):
		path := jsonPath(r.Field)
		// A row that is not valid JSON (stored before the limits on
		// properties, or by hand) reads as having no properties: on
		// SQLite and MySQL a JSON function fails the whole statement on it.
		if mysql {
			// A JSON null reads as missing, as on SQLite and in Go
			// (propertyText): JSON_EXTRACT gives the text null, which
			// JSON_UNQUOTE kept, so it matched equals "null". NULLIF on
			// the JSON value itself compares it unquoted (the string
			// "null" too); on its text, CAST, it does not.
			expr, args = "(CASE WHEN JSON_VALID(e.properties) THEN JSON_UNQUOTE(NULLIF(CAST(JSON_EXTRACT(e.properties, ?) AS CHAR), 'null')) END)", []any{path}
		} else {
			// Booleans read as true/false, as MySQL shows them.
			expr = "(CASE WHEN json_valid(e.properties) THEN (CASE json_type(e.properties, ?) WHEN 'true' THEN 'true' WHEN 'false' THEN 'false' WHEN 'null' THEN NULL ELSE CAST(json_extract(e.properties, ?) AS TEXT) END) END)"
			args = []any{path, path}
		}
		if mysql && r.Operator == OpExists {
			return "(CASE WHEN JSON_VALID(e.properties) THEN COALESCE(JSON_TYPE(JSON_EXTRACT(e.properties, ?)), 'NULL') <> 'NULL' ELSE 0 END)", args
		}
	default:
		expr = "e." + ruleFields[r.Field]
	}
	return compareSQL(expr, r, args)
}

// compareSQL applies the rule's operator to expr.
func compareSQL(expr string, r Rule, args []any) (string, []any) {
	lower := strings.ToLower(r.Value)
	num := func(op string) (string, []any) {
		f, _ := ruleNumber(r.Value)
		return "CAST(" + expr + " AS DECIMAL(38,10)) " + op + " ?", append(args, f)
	}
	switch r.Operator {
	case OpEquals:
		return expr + " = ?", append(args, r.Value)
	case OpNotEquals:
		return "NOT COALESCE(" + expr + " = ?, 0)", append(args, r.Value)
	case OpContains:
		return "LOWER(" + expr + ") LIKE ? ESCAPE '!'", append(args, "%"+escapeLike(lower)+"%")
	case OpStartsWith:
		return "LOWER(" + expr + ") LIKE ? ESCAPE '!'", append(args, escapeLike(lower)+"%")
	case OpEndsWith:
		return "LOWER(" + expr + ") LIKE ? ESCAPE '!'", append(args, "%"+escapeLike(lower))
	case OpGreaterThan:
		return num(">")
	case OpLessThan:
		return num("<")
	}
	return expr + " IS NOT NULL", args
}

// rulesSQL combines rules with AND (all) or OR (any).
// resolved, when set for a rule's index, replaces its compiled condition.
func rulesSQL(mysql bool, appID uint64, rules []Rule, anyOf bool, resolved map[int]sqlCond) (string, []any) {
	if len(rules) == 0 {
		return "1 = 1", nil
	}
	join := " AND "
	if anyOf {
		join = " OR "
	}
	var parts []string
	var args []any
	for i, r := range rules {
		c, ok := resolved[i]
		if !ok {
			c.cond, c.args = ruleSQL(mysql, appID, r)
		}
		parts = append(parts, "("+c.cond+")")
		args = append(args, c.args...)
	}
	return "(" + strings.Join(parts, join) + ")", args
}

type sqlCond struct {
	cond string
	args []any
}

// matches evaluates rules (all must hold) on an event in memory, with the
// same meaning as ruleSQL, for funnels and goals.
func matchesRules(rules []Rule, code string, e *Event) bool {
	for _, r := range rules {
		if !matchRule(r, code, e) {
			return false
		}
	}
	return true
}

func matchRule(r Rule, code string, e *Event) bool {
	var v string
	ok := true
	switch r.Field {
	case "code":
		v = code
	case "url":
		v = e.URL
	case "referrer":
		v = e.Referrer
	case "source":
		v = e.Source
	case "title":
		v = e.Title
	default:
		v, ok = propertyText(e.Properties, strings.Split(strings.TrimPrefix(r.Field, "properties."), "."))
	}
	if !ok {
		return r.Operator == OpNotEquals
	}
	lv, lr := strings.ToLower(v), strings.ToLower(r.Value)
	switch r.Operator {
	case OpEquals:
		return v == r.Value
	case OpNotEquals:
		return v != r.Value
	case OpContains:
		return strings.Contains(lv, lr)
	case OpStartsWith:
		return strings.HasPrefix(lv, lr)
	case OpEndsWith:
		return strings.HasSuffix(lv, lr)
	case OpGreaterThan, OpLessThan:
		x, _ := strconv.ParseFloat(strings.TrimSpace(v), 64)
		y, _ := ruleNumber(r.Value)
		if r.Operator == OpGreaterThan {
			return x > y
		}
		return x < y
	}
	return true // exists
}

// propertyText reads a nested property as text, as JSON_UNQUOTE shows it.
func propertyText(props map[string]any, path []string) (string, bool) {
	var cur any = map[string]any(props)
	for _, k := range path {
		m, isMap := cur.(map[string]any)
		if !isMap {
			return "", false
		}
		if cur, isMap = m[k]; !isMap {
			return "", false
		}
	}
	switch v := cur.(type) {
	case nil:
		return "", false
	case string:
		return v, true
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64), true
	case json.Number:
		// Read as stored; matched as a double, as before stored numbers
		// kept their digits.
		if f, err := v.Float64(); err == nil {
			return strconv.FormatFloat(f, 'f', -1, 64), true
		}
		return string(v), true
	case bool:
		return strconv.FormatBool(v), true
	default:
		b, _ := json.Marshal(v)
		return string(b), true
	}
}
