package models

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Limits on the JSON that callers store: event properties and lead fields.
// They hold identically on every store, so a value accepted once can be read
// back, matched by rules and erased on SQLite and MySQL alike (SQLite's JSON
// functions give up beyond 1,000 levels, MariaDB's beyond 32, and neither
// Go nor MySQL can read a number that overflows a double).
const (
	maxJSONDepth       = 8 // the object itself is level 1
	maxJSONKeyBytes    = 128
	maxJSONStringBytes = 2048
)

// cleanJSONObject validates a caller's JSON object and returns it as it will
// be stored: numbers finite (json.Number kept verbatim, so large integers
// keep their digits), at most maxJSONDepth levels, keys of 1 to
// maxJSONKeyBytes bytes without control characters, strings of at most
// maxJSONStringBytes bytes with invalid UTF-8 replaced by U+FFFD. field names
// the input in errors; the message names the key.
func cleanJSONObject(field string, obj map[string]any) (map[string]any, error) {
	out, err := cleanJSON(obj, 1)
	if err != nil {
		return nil, Invalid(field, "%s", err.Error())
	}
	return out.(map[string]any), nil
}

// jsonSizeOver reports whether v surely takes more than max bytes as the
// JSON that cleanJSON stores, looking at about max bytes' worth of it: it
// sums a lower bound of the size (each string, key and number at least as
// long as sent, each other value a byte) and stops past max. So an object of
// 100,000 keys under the body limit is refused after a few thousand of them
// instead of being copied, checked and encoded whole.
func jsonSizeOver(v any, max int) bool { return jsonSizeAtLeast(v, max) > max }

func jsonSizeAtLeast(v any, max int) int {
	switch x := v.(type) {
	case string:
		return len(x) + 2
	case json.Number:
		return len(x)
	case nil, bool:
		return 4
	case map[string]any:
		n := 1 // braces, less the comma counted once too often
		for k, item := range x {
			if n += len(k) + 4 + jsonSizeAtLeast(item, max); n > max {
				return n
			}
		}
		return n
	case []any:
		n := 1
		for _, item := range x {
			if n += 1 + jsonSizeAtLeast(item, max); n > max {
				return n
			}
		}
		return n
	}
	return 1
}

// jsonPathError says where in a value a rule was broken.
type jsonPathError struct {
	path []string // innermost key first
	msg  string
}

func (e *jsonPathError) Error() string {
	if len(e.path) == 0 {
		return e.msg
	}
	keys := make([]string, len(e.path))
	for i, k := range e.path {
		keys[len(keys)-1-i] = k
	}
	return fmt.Sprintf("%q: %s", truncate(strings.Join(keys, "."), 80), e.msg)
}

func (e *jsonPathError) in(key string) *jsonPathError {
	e.path = append(e.path, key)
	return e
}

func cleanJSON(v any, depth int) (any, *jsonPathError) {
	switch x := v.(type) {
	case nil, bool:
		return x, nil
	case string:
		if len(x) > maxJSONStringBytes {
			return nil, &jsonPathError{msg: fmt.Sprintf("strings must be at most %d bytes", maxJSONStringBytes)}
		}
		return strings.ToValidUTF8(x, "\uFFFD"), nil
	case json.Number:
		f, err := strconv.ParseFloat(string(x), 64)
		if err != nil || math.IsInf(f, 0) || !json.Valid([]byte(x)) {
			return nil, &jsonPathError{msg: "numbers must be finite (at most about 1.8e308)"}
		}
		return x, nil
	case float64:
		if math.IsInf(x, 0) || math.IsNaN(x) {
			return nil, &jsonPathError{msg: "numbers must be finite (at most about 1.8e308)"}
		}
		return x, nil
	case float32:
		return cleanJSON(float64(x), depth)
	case int, int8, int16, int32, int64, uint, uint8, uint16, uint32, uint64:
		return x, nil
	case map[string]any:
		if depth > maxJSONDepth {
			return nil, &jsonPathError{msg: fmt.Sprintf("values may nest at most %d levels", maxJSONDepth)}
		}
		out := make(map[string]any, len(x))
		for k, item := range x {
			if err := checkJSONKey(k); err != nil {
				return nil, err
			}
			clean, err := cleanJSON(item, depth+1)
			if err != nil {
				return nil, err.in(k)
			}
			out[k] = clean
		}
		return out, nil
	case []any:
		if depth > maxJSONDepth {
			return nil, &jsonPathError{msg: fmt.Sprintf("values may nest at most %d levels", maxJSONDepth)}
		}
		out := make([]any, len(x))
		for i, item := range x {
			clean, err := cleanJSON(item, depth+1)
			if err != nil {
				return nil, err.in(strconv.Itoa(i))
			}
			out[i] = clean
		}
		return out, nil
	}
	// Other Go values (structs, typed slices) from Go callers: take them as
	// their JSON says, then apply the same rules.
	b, err := json.Marshal(v)
	if err != nil {
		return nil, &jsonPathError{msg: "is not a JSON value"}
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var generic any
	if err := dec.Decode(&generic); err != nil {
		return nil, &jsonPathError{msg: "is not a JSON value"}
	}
	return cleanJSON(generic, depth)
}

func checkJSONKey(k string) *jsonPathError {
	switch {
	case k == "" || len(k) > maxJSONKeyBytes:
		return &jsonPathError{path: []string{truncate(k, 40)}, msg: fmt.Sprintf("keys must be 1 to %d bytes", maxJSONKeyBytes)}
	case !utf8.ValidString(k) || strings.IndexFunc(k, unicode.IsControl) >= 0:
		return &jsonPathError{path: []string{truncate(k, 40)}, msg: "keys must be valid UTF-8 without control characters"}
	}
	return nil
}

// decodeStoredObject reads a stored JSON object and never fails: a row
// written before the limits above, or by hand, must not fail a page, a
// timeline or an erasure. Numbers stay json.Number, so they read back
// digit for digit as stored (an integer beyond 2^53 is not rounded to a
// double); one too large for a double is shown as its text; anything that
// is not a JSON object at all reads as an empty object.
func decodeStoredObject(raw []byte) map[string]any {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var obj map[string]any
	if err := dec.Decode(&obj); err != nil || obj == nil {
		return map[string]any{}
	}
	readableNumbers(obj)
	return obj
}

// readableNumbers turns the json.Numbers a double cannot hold into their
// text, which no JSON reader refuses.
func readableNumbers(v any) any {
	switch x := v.(type) {
	case json.Number:
		if f, err := strconv.ParseFloat(string(x), 64); err != nil || math.IsInf(f, 0) {
			return string(x)
		}
	case map[string]any:
		for k, item := range x {
			x[k] = readableNumbers(item)
		}
	case []any:
		for i, item := range x {
			x[i] = readableNumbers(item)
		}
	}
	return v
}
