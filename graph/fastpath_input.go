package graph

import (
	"bytes"
	"encoding/json"
	"errors"
	"mime"
	"reflect"
	"strings"
	"unicode/utf8"

	"github.com/crumbs-dev/crumbs/graph/model"
	"github.com/crumbs-dev/crumbs/graph/scalar"
)

// fastInput is TriggerInput as JSON. Decoding fails, and gqlgen takes the
// request, on anything GraphQL's input coercion would treat differently.
type fastInput struct {
	AppID      jsonString  `json:"appId"`
	DeviceID   jsonString  `json:"deviceId"`
	Code       jsonString  `json:"code"`
	URL        *jsonString `json:"url"`
	Referrer   *jsonString `json:"referrer"`
	Title      *jsonString `json:"title"`
	Properties rawJSON     `json:"properties"`
	OccurredAt *jsonString `json:"occurredAt"`
	MessageID  *jsonString `json:"messageId"`
	Source     *jsonString `json:"source"`
}

// decodeInputs decodes a variable into v (a fastInput or a slice of them),
// refusing member names GraphQL would not take. encoding/json matches names
// case-insensitively, folding Unicode too ("meſſageId" is messageId), where
// GraphQL refuses any name not spelt as in the schema; so exactNames checks
// the names first, and the decoder meets only fastInput's own. A repeated
// name is the last one's, as in the maps gqlgen decodes variables into.
func decodeInputs(raw []byte, v any) error {
	if !exactNames(raw) {
		return errUnknownField
	}
	return json.Unmarshal(raw, v)
}

// fastInputNames are fastInput's member names.
var fastInputNames = func() map[string]bool {
	names := map[string]bool{}
	t := reflect.TypeFor[fastInput]()
	for i := range t.NumField() {
		names[t.Field(i).Tag.Get("json")] = true
	}
	return names
}()

// exactNames reports whether raw is an object whose member names are all
// fastInput's, spelt exactly, or an array of such objects. Anything else is
// refused, as the decoder would refuse it. raw is valid JSON (the request
// decoded); on other bytes the answer means nothing, but it comes.
func exactNames(raw []byte) bool {
	i := skipSpace(raw, 0)
	if i < len(raw) && raw[i] == '[' {
		if i = skipSpace(raw, i+1); i < len(raw) && raw[i] == ']' {
			return true
		}
		for i < len(raw) {
			var ok bool
			if i, ok = objectNames(raw, i); !ok {
				return false
			}
			if i = skipSpace(raw, i); i < len(raw) && raw[i] == ']' {
				return true
			} else if i >= len(raw) || raw[i] != ',' {
				return false
			}
			i = skipSpace(raw, i+1)
		}
		return false
	}
	_, ok := objectNames(raw, i)
	return ok
}

// objectNames checks the names of the object at raw[i] and returns the
// index past it.
func objectNames(raw []byte, i int) (int, bool) {
	if i >= len(raw) || raw[i] != '{' {
		return i, false
	}
	if i = skipSpace(raw, i+1); i < len(raw) && raw[i] == '}' {
		return i + 1, true
	}
	for i < len(raw) && raw[i] == '"' {
		end, escaped := stringEnd(raw, i)
		if end < 0 {
			return i, false
		}
		name := raw[i+1 : end-1]
		if escaped {
			var s string
			if json.Unmarshal(raw[i:end], &s) != nil {
				return i, false
			}
			name = []byte(s)
		}
		if !fastInputNames[string(name)] {
			return i, false
		}
		if i = skipSpace(raw, end); i >= len(raw) || raw[i] != ':' {
			return i, false
		}
		i = skipSpace(raw, skipValue(raw, skipSpace(raw, i+1)))
		if i < len(raw) && raw[i] == '}' {
			return i + 1, true
		}
		if i >= len(raw) || raw[i] != ',' {
			return i, false
		}
		i = skipSpace(raw, i+1)
	}
	return i, false
}

// skipValue returns the index past the JSON value at raw[i].
func skipValue(raw []byte, i int) int {
	depth := 0
	for i < len(raw) {
		switch raw[i] {
		case '"':
			end, _ := stringEnd(raw, i)
			if end < 0 {
				return len(raw)
			}
			if i = end; depth == 0 {
				return i
			}
			continue
		case '{', '[':
			depth++
		case '}', ']':
			if depth == 0 {
				return i // past a number or a literal
			}
			if depth--; depth == 0 {
				return i + 1
			}
		case ',', ' ', '\t', '\n', '\r':
			if depth == 0 {
				return i
			}
		}
		i++
	}
	return i
}

// stringEnd returns the index past the JSON string at raw[i], or -1 if it
// is not terminated, and whether it holds escapes.
func stringEnd(raw []byte, i int) (int, bool) {
	escaped := false
	for i++; i < len(raw); i++ {
		switch raw[i] {
		case '\\':
			escaped = true
			i++
		case '"':
			return i + 1, escaped
		}
	}
	return -1, escaped
}

func skipSpace(raw []byte, i int) int {
	for i < len(raw) && (raw[i] == ' ' || raw[i] == '\t' || raw[i] == '\n' || raw[i] == '\r') {
		i++
	}
	return i
}

// model converts the input as gqlgen's generated code does, or reports
// that it cannot.
func (in *fastInput) model() (*model.TriggerInput, bool) {
	if !in.AppID.set || !in.DeviceID.set || !in.Code.set {
		return nil, false
	}
	out := &model.TriggerInput{AppID: in.AppID.s, DeviceID: in.DeviceID.s, Code: in.Code.s,
		URL: in.URL.ptr(), Referrer: in.Referrer.ptr(), Title: in.Title.ptr(), MessageID: in.MessageID.ptr()}
	if in.Properties.set && !in.Properties.null {
		d := json.NewDecoder(bytes.NewReader(in.Properties.raw))
		d.UseNumber() // as gqlgen's transport decodes variables
		var props any
		if d.Decode(&props) != nil {
			return nil, false
		}
		out.Properties = props
	}
	if s := in.OccurredAt.ptr(); s != nil {
		t, err := scalar.UnmarshalTime(*s)
		if err != nil {
			return nil, false
		}
		out.OccurredAt = &t
	}
	if s := in.Source.ptr(); s != nil {
		src := model.EventSource(*s)
		if !src.IsValid() {
			return nil, false
		}
		out.Source = &src
	}
	return out, true
}

// jsonString is a JSON string (never a number or a null); a pointer to
// one is a nullable string.
type jsonString struct {
	s   string
	set bool
}

func (j *jsonString) UnmarshalJSON(b []byte) error {
	if len(b) < 2 || b[0] != '"' {
		return errNotString
	}
	j.set = true
	if bytes.IndexByte(b, '\\') < 0 && utf8.Valid(b) {
		j.s = string(b[1 : len(b)-1]) // nothing to unescape
		return nil
	}
	return json.Unmarshal(b, &j.s)
}

func (j *jsonString) ptr() *string {
	if j == nil || !j.set {
		return nil
	}
	return &j.s
}

var (
	errNotString    = errors.New("not a JSON string")
	errUnknownField = errors.New("not a field of TriggerInput")
)

// rawJSON keeps a value as sent.
type rawJSON struct {
	raw       json.RawMessage
	set, null bool
}

func (r *rawJSON) UnmarshalJSON(b []byte) error {
	r.set, r.null = true, string(b) == "null"
	r.raw = append(r.raw[:0], b...)
	return nil
}

func isJSON(contentType string) bool {
	mt, _, err := mime.ParseMediaType(contentType)
	return err == nil && mt == "application/json"
}

// acceptsJSON tells whether gqlgen would answer application/json.
func acceptsJSON(accept string) bool {
	if accept == "" {
		return true
	}
	for part := range strings.SplitSeq(accept, ",") {
		mt, _, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil {
			continue
		}
		switch mt {
		case "*/*", "application/*", "application/json":
			return true
		case "application/graphql-response+json":
			return false
		}
	}
	return false
}
