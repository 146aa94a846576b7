package graph

import (
	"bytes"
	"encoding/json"
	"errors"
	"mime"
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
// refusing unknown fields as GraphQL does.
func decodeInputs(raw []byte, v any) error {
	d := json.NewDecoder(bytes.NewReader(raw))
	d.DisallowUnknownFields()
	if err := d.Decode(v); err != nil {
		return err
	}
	if d.More() {
		return errNotString
	}
	return nil
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

var errNotString = errors.New("not a JSON string")

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
