package models

import (
	"database/sql/driver"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// StringList is a list of strings stored as a JSON array.
type StringList []string

// Value implements driver.Valuer.
func (l StringList) Value() (driver.Value, error) {
	if l == nil {
		return "[]", nil
	}
	b, err := json.Marshal([]string(l))
	return string(b), err
}

// Scan implements sql.Scanner.
func (l *StringList) Scan(src any) error {
	return scanJSON(src, (*[]string)(l))
}

// JSONObject is a JSON object stored as text.
type JSONObject map[string]any

// Value implements driver.Valuer.
func (o JSONObject) Value() (driver.Value, error) {
	if o == nil {
		return "{}", nil
	}
	b, err := json.Marshal(map[string]any(o))
	return string(b), err
}

// Scan implements sql.Scanner. It never fails on the stored text (see
// decodeStoredObject) and never yields nil, so one bad row cannot fail a read.
func (o *JSONObject) Scan(src any) error {
	switch v := src.(type) {
	case nil:
		*o = JSONObject{}
	case string:
		*o = decodeStoredObject([]byte(v))
	case []byte:
		*o = decodeStoredObject(v)
	default:
		return fmt.Errorf("cannot scan %T as JSON", src)
	}
	return nil
}

func scanJSON(src any, dst any) error {
	switch v := src.(type) {
	case nil:
		return nil
	case string:
		return json.Unmarshal([]byte(v), dst)
	case []byte:
		return json.Unmarshal(v, dst)
	}
	return fmt.Errorf("cannot scan %T as JSON", src)
}

// dbTime scans a time from aggregates (MIN, MAX), which SQLite returns as text.
type dbTime struct {
	time.Time
	Valid bool
}

func (t *dbTime) Scan(src any) error {
	switch v := src.(type) {
	case nil:
		t.Valid = false
		return nil
	case time.Time:
		t.Time, t.Valid = v.UTC(), true
		return nil
	case []byte:
		return t.parse(string(v))
	case string:
		return t.parse(v)
	}
	return fmt.Errorf("cannot scan %T as time", src)
}

func (t *dbTime) parse(s string) error {
	for _, layout := range []string{sqliteTimeLayout, "2006-01-02 15:04:05", time.RFC3339Nano} {
		if parsed, err := time.ParseInLocation(layout, s, time.UTC); err == nil {
			t.Time, t.Valid = parsed, true
			return nil
		}
	}
	return errors.New("cannot parse time " + s)
}

func (t dbTime) ptr() *time.Time {
	if !t.Valid {
		return nil
	}
	return &t.Time
}

func jsonValue(v any) (driver.Value, error) {
	b, err := json.Marshal(v)
	return string(b), err
}

// maxTextBytes is what a TEXT column holds on MySQL and MariaDB; SQLite
// holds any length, so a longer value would be stored there and refused
// (error 1406, an internal error) on MySQL.
const maxTextBytes = 65535

// checkStoredJSON refuses a value whose JSON, as jsonValue stores it, is
// longer than its TEXT column holds. Limits per item do not bound it:
// JSON writes <, > and & as \u003c and a control character as \u0001, six
// bytes each.
func checkStoredJSON(field string, v any) error {
	if b, err := json.Marshal(v); err != nil || len(b) > maxTextBytes {
		return Invalid(field, "must take at most %d bytes together as stored JSON (<, >, & and control characters take 6 bytes each)", maxTextBytes)
	}
	return nil
}
