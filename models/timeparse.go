package models

import "time"

// Every store holds the years 1000 to 9999 (MySQL's DATETIME range), and
// RFC 3339 writes no other.
var (
	minStoredTime = time.Date(1000, 1, 1, 0, 0, 0, 0, time.UTC)
	maxStoredTime = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)
)

// ParseTime reads a time as RFC 3339 defines it, which time.RFC3339 does not
// quite: "T" and "Z" may be lower case (its section 5.6), and an offset's
// hour is 00 to 23 (time.Parse takes +24:00 to +99:59). The time must also
// lie in the years 1000 to 9999 in UTC, the years the stores hold: a
// 9999-12-31T23:00:00-05:00 is in the year 10000 there. Every time a caller
// sends is read here; the error names field.
func ParseTime(field, s string) (time.Time, error) {
	const syntax = "must be an RFC 3339 time such as 2026-11-23T10:00:00Z"
	if len(s) < 20 || len(s) > 64 {
		return time.Time{}, Invalid(field, syntax)
	}
	b := []byte(s)
	if b[10] == 't' {
		b[10] = 'T'
	}
	if b[len(b)-1] == 'z' {
		b[len(b)-1] = 'Z'
	}
	t, err := time.Parse(time.RFC3339Nano, string(b))
	if err != nil {
		return time.Time{}, Invalid(field, syntax)
	}
	if _, offset := t.Zone(); offset <= -24*3600 || offset >= 24*3600 {
		return time.Time{}, Invalid(field, "%s (an offset's hours are 00 to 23)", syntax)
	}
	if t.Before(minStoredTime) || !t.Before(maxStoredTime) {
		return time.Time{}, Invalid(field, "must be in the years 1000 to 9999 (in UTC)")
	}
	return t, nil
}
