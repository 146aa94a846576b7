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

// validateRules checks rules; field names the input field in errors, and
// every bad part of every rule is named (rules.2.value), not the first.
// eventOnly refuses fields that are not stored on the event itself.
func validateRules(field string, rules []Rule, eventOnly bool) error {
	if len(rules) > maxRules {
		return Invalid(field, "at most %d rules", maxRules)
	}
	var bad validation
	for i, r := range rules {
		f := fmt.Sprintf("%s.%d", field, i)
		_, known := ruleFields[r.Field]
		if bad.check(f+".field", known || propertyField.MatchString(r.Field),
			"unknown field %q; use code, url, referrer, source, title, lead.email or properties.<key>", truncate(r.Field, 80)) {
			bad.check(f+".field", !eventOnly || r.Field != "lead.email", "lead.email cannot be used here")
		}
		bad.check(f+".operator", ruleOps[r.Operator], "unknown operator %q", truncate(r.Operator, 40))
		if bad.check(f+".value", len(r.Value) <= 2048 && utf8.ValidString(r.Value), "must be at most 2048 bytes of UTF-8") &&
			(r.Operator == OpGreaterThan || r.Operator == OpLessThan) {
			_, ok := ruleNumber(r.Value)
			bad.check(f+".value", ok, "must be a decimal number such as 42 or -1.5e3 for %s", r.Operator)
		}
	}
	return bad.err()
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
func ruleSQL(d sqlDialect, appID uint64, r Rule) (string, []any) {
	switch {
	case r.Field == "code":
		cond, cargs := compareSQL(d, fieldSQL{text: "d2.code"}, r)
		return "e.definition_id IN (SELECT d2.id FROM event_definitions d2 WHERE d2.app_id = ? AND " + cond + ")", append([]any{appID}, cargs...)
	case r.Field == "lead.email":
		r.Value = strings.ToLower(r.Value)
		in := "IN"
		if r.Operator == OpNotEquals {
			// Anonymous devices have no email, so they are not that email.
			r.Operator, in = OpEquals, "NOT IN"
		}
		cond, cargs := compareSQL(d, fieldSQL{text: "l2.email_key"}, r)
		return "e.device_id " + in + " (SELECT d3.device_id FROM devices d3 JOIN leads l2 ON l2.id = d3.lead_id WHERE d3.app_id = ? AND " + cond + ")",
			append([]any{appID}, cargs...)
	case strings.HasPrefix(r.Field, "properties."):
		path := jsonPath(r.Field)
		if d.mysql && r.Operator == OpExists {
			return "(CASE WHEN JSON_VALID(e.properties) THEN COALESCE(JSON_TYPE(JSON_EXTRACT(e.properties, ?)), 'NULL') <> 'NULL' ELSE 0 END)", []any{path}
		}
		f := propertySQL(d.mysql, path)
		if r.Operator == OpNotEquals {
			// Missing, as in a row that is not valid JSON, is not equal.
			cond, args := equalsSQL(f, r.Value)
			return "NOT COALESCE(CASE WHEN " + f.valid + " THEN " + cond + " END, 0)", args
		}
		// CASE, not AND: only CASE orders evaluation on every engine.
		cond, args := compareSQL(d, f, r)
		return "(CASE WHEN " + f.valid + " THEN " + cond + " END)", args
	}
	return compareSQL(d, fieldSQL{text: "e." + ruleFields[r.Field]}, r)
}

// fieldSQL is how a rule reads a field in SQL: as text (NULL when
// missing) and, for properties, whether it holds a JSON number.
type fieldSQL struct {
	valid    string // for properties, the condition under which text and isNumber may be evaluated
	text     string
	textArgs []any
	isNumber string // "" for columns, which hold text
	// bytes makes equals compare the text byte for byte: on MySQL a JSON
	// function's text has a PAD SPACE collation (utf8mb4_bin), where
	// "abc " equals "abc"; the tables' columns are NO PAD already.
	bytes   bool
	numArgs []any
	number  string // the number, where isNumber holds
}

// propertySQL reads the property at path as propertyText does in Go: a
// string as its text, a number as it was sent (1.50 stays 1.50, not 1.5),
// true and false, an object or array as JSON, and null as missing. A row
// that is not valid JSON (stored before the limits on properties, or by
// hand) reads as having no properties: on SQLite and MySQL a JSON
// function fails the whole statement on it, so the caller checks valid
// first, once per row.
func propertySQL(mysql bool, path string) fieldSQL {
	if mysql {
		// JSON_EXTRACT keeps a number's text; a JSON null gives the text
		// null, which JSON_UNQUOTE keeps, so NULLIF drops it. NULLIF on
		// the JSON value itself compares it unquoted (the string "null"
		// too); on its text, CAST, it does not.
		return fieldSQL{
			valid:    "JSON_VALID(e.properties)",
			text:     "JSON_UNQUOTE(NULLIF(CAST(JSON_EXTRACT(e.properties, ?) AS CHAR), 'null'))",
			textArgs: []any{path},
			isNumber: "JSON_TYPE(JSON_EXTRACT(e.properties, ?)) IN ('INTEGER', 'UNSIGNED INTEGER', 'DOUBLE', 'DECIMAL')",
			bytes:    true,
			numArgs:  []any{path},
			// A JSON number's text, which MySQL reads as Go does.
			number: "CAST(JSON_EXTRACT(e.properties, ?) AS DOUBLE)",
		}
	}
	// json_extract gives a number as a double (1.50 as 1.5, 1e3 as
	// 1000.0) and booleans as 1 and 0; the -> operator gives the JSON
	// text, which for a number is its text as sent, as MySQL shows it.
	return fieldSQL{
		valid:    "json_valid(e.properties)",
		text:     "(CASE json_type(e.properties, ?) WHEN 'text' THEN json_extract(e.properties, ?) WHEN 'null' THEN NULL ELSE e.properties -> ? END)",
		textArgs: []any{path, path, path},
		isNumber: "json_type(e.properties, ?) IN ('integer', 'real')",
		numArgs:  []any{path},
		number:   "crumbs_number(e.properties -> ?)",
	}
}

// numberPattern is text that rules read as a number: a JSON number,
// optionally surrounded by JSON whitespace. It is written for both Go's
// regexp and MySQL's REGEXP (PCRE on MariaDB, ICU on MySQL).
const numberPattern = `^[ \t\n\r]*-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?[ \t\n\r]*$`

var numberText = regexp.MustCompile(numberPattern)

// textNumber reads a value's text as greater_than, less_than and, for a
// number, equals compare it: as a double when the text is a JSON number
// whose magnitude is below the largest double (MySQL turns a larger one
// into that double, SQLite and Go into infinity, so none of them is a
// number). SQLite calls it as crumbs_number; compareSQL and equalsSQL
// write its equivalent for MySQL.
func textNumber(s string) (float64, bool) {
	if !numberText.MatchString(s) {
		return 0, false
	}
	f, err := strconv.ParseFloat(strings.Trim(s, " \t\n\r"), 64)
	if err != nil || math.Abs(f) >= math.MaxFloat64 {
		return 0, false
	}
	return f, true
}

// compareSQL applies the rule's operator to the field.
func compareSQL(d sqlDialect, f fieldSQL, r Rule) (string, []any) {
	expr := f.text
	args := append([]any{}, f.textArgs...)
	switch r.Operator {
	case OpEquals:
		return equalsSQL(f, r.Value)
	case OpNotEquals:
		cond, cargs := equalsSQL(f, r.Value)
		return "NOT COALESCE(" + cond + ", 0)", cargs
	case OpContains, OpStartsWith, OpEndsWith:
		if !d.mysql {
			// SQLite's LOWER and LIKE fold ASCII letters only (É stayed
			// É, so contains "é" missed it) and LIKE stops at a NUL.
			return "crumbs_text_match(?, " + expr + ", ?)", append(append([]any{r.Operator}, args...), r.Value)
		}
		pattern := escapeLike(strings.ToLower(r.Value))
		switch r.Operator {
		case OpContains:
			pattern = "%" + pattern + "%"
		case OpStartsWith:
			pattern += "%"
		default:
			pattern = "%" + pattern
		}
		return d.lower(expr) + " LIKE ? ESCAPE '!'", append(args, pattern)
	case OpGreaterThan, OpLessThan:
		y, _ := ruleNumber(r.Value)
		op, beyond, limit := ">", "<", math.MaxFloat64
		if r.Operator == OpLessThan {
			op, beyond, limit = "<", ">", -math.MaxFloat64
		}
		if !d.mysql {
			return "crumbs_number(" + expr + ") " + op + " ?", append(args, y)
		}
		// textNumber, with the comparison first: it rules out most rows
		// cheapest. MySQL reads "1e400" as the largest double, which the
		// limit leaves out on the side the comparison does not.
		args = append(append(args, y), f.textArgs...)
		args = append(append(args, limit), f.textArgs...)
		return "(CAST(" + expr + " AS DOUBLE) " + op + " ? AND CAST(" + expr + " AS DOUBLE) " + beyond + " ? AND " + expr + " REGEXP ?)", append(args, numberPattern)
	}
	return expr + " IS NOT NULL", args
}

// equalsSQL holds when the field equals value: as numbers when the field
// holds a JSON number and value is a decimal number (1.50 equals "1.5"
// and 1e3 equals "1000"), else as text, exactly.
func equalsSQL(f fieldSQL, value string) (string, []any) {
	y, isNumber := ruleNumber(value)
	text := f.text
	if f.bytes {
		text = "CAST(" + text + " AS BINARY)"
	}
	if f.isNumber == "" || !isNumber {
		return text + " = ?", append(append([]any{}, f.textArgs...), value)
	}
	num := f.number
	args := append([]any{}, f.numArgs...)
	if math.Abs(y) >= math.MaxFloat64 {
		num = "NULL" // no number read equals it (textNumber)
	} else {
		args = append(args, f.numArgs...)
	}
	args = append(append(append(args, y), f.textArgs...), value)
	return "(CASE WHEN " + f.isNumber + " THEN " + num + " = ? ELSE " + text + " = ? END)", args
}

// rulesSQL combines rules with AND (all) or OR (any).
// resolved, when set for a rule's index, replaces its compiled condition.
func rulesSQL(d sqlDialect, appID uint64, rules []Rule, anyOf bool, resolved map[int]sqlCond) (string, []any) {
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
			c.cond, c.args = ruleSQL(d, appID, r)
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
	ok, isNumber := true, false
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
		v, isNumber, ok = propertyText(e.Properties, strings.Split(strings.TrimPrefix(r.Field, "properties."), "."))
	}
	if !ok {
		return r.Operator == OpNotEquals
	}
	switch r.Operator {
	case OpEquals:
		return valueEquals(v, isNumber, r.Value)
	case OpNotEquals:
		return !valueEquals(v, isNumber, r.Value)
	case OpContains, OpStartsWith, OpEndsWith:
		return textMatches(r.Operator, v, r.Value)
	case OpGreaterThan, OpLessThan:
		x, isNumber := textNumber(v)
		y, _ := ruleNumber(r.Value)
		if r.Operator == OpGreaterThan {
			return isNumber && x > y
		}
		return isNumber && x < y
	}
	return true // exists
}

// textMatches applies contains, starts_with or ends_with to text, ignoring
// case as Unicode folds it to lower case (as MySQL's LOWER does). SQLite
// calls it as crumbs_text_match(operator, text, value).
func textMatches(op, text, value string) bool {
	text, value = strings.ToLower(text), strings.ToLower(value)
	switch op {
	case OpContains:
		return strings.Contains(text, value)
	case OpStartsWith:
		return strings.HasPrefix(text, value)
	case OpEndsWith:
		return strings.HasSuffix(text, value)
	}
	return false
}

// valueEquals is equalsSQL in Go.
func valueEquals(v string, isNumber bool, value string) bool {
	if y, ok := ruleNumber(value); isNumber && ok {
		x, ok := textNumber(v)
		return ok && x == y
	}
	return v == value
}

// propertyText reads a nested property as propertySQL does: its text, and
// whether it is a JSON number.
func propertyText(props map[string]any, path []string) (text string, isNumber, ok bool) {
	var cur any = map[string]any(props)
	for _, k := range path {
		m, isMap := cur.(map[string]any)
		if !isMap {
			return "", false, false
		}
		if cur, isMap = m[k]; !isMap {
			return "", false, false
		}
	}
	switch v := cur.(type) {
	case nil:
		return "", false, false
	case string:
		return v, false, true
	case json.Number:
		// As stored: its digits as sent.
		return string(v), true, true
	case float64, float32, int, int8, int16, int32, int64, uint, uint8, uint16, uint32, uint64:
		// As stored: the JSON that Go writes for it.
		b, _ := json.Marshal(v)
		return string(b), true, true
	case bool:
		return strconv.FormatBool(v), false, true
	default:
		b, _ := json.Marshal(v)
		return string(b), false, true
	}
}
