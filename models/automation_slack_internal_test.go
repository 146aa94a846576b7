package models

import (
	"encoding/json"
	"testing"
	"time"
)

// A Slack message reads placeholders in the author's template only: a
// visitor's text (a device id, a lead's name, a property's key or value)
// that looks like a placeholder is shown as sent, escaped, and never
// replaced by another field's value. Property keys with spaces or dashes
// are shown in the default message and can be named in a template.
func TestSlackMessageShowsVisitorTextAsText(t *testing.T) {
	at := time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)
	payload := func(device string, lead JSONObject, props JSONObject) JSONObject {
		var l any
		if lead != nil {
			l = lead
		}
		return JSONObject{"type": "event.triggered", "timestamp": at, "data": JSONObject{
			"app":  JSONObject{"id": "app_1", "name": "Shop"},
			"rule": JSONObject{"id": "7", "name": "Signups"},
			"event": JSONObject{"id": "9", "code": "signup", "name": "Signup", "color": "#ff0000", "description": "",
				"url": "https://shop.example/join", "properties": props, "occurredAt": at, "receivedAt": at},
			"device": JSONObject{"id": device},
			"lead":   l,
		}}
	}
	secret := JSONObject{"secret": "s3cr3t"}
	cases := []struct {
		name     string
		payload  JSONObject
		template string
		want     string
	}{
		{"device id naming a field", payload("{{app.name}} {{lead.fields.secret}}", nil, JSONObject{}), "",
			"*Signup* by {{app.name}} {{lead.fields.secret}}\nhttps://shop.example/join"},
		{"lead name naming a field", payload("d1", JSONObject{"id": "3", "email": "a@b.example", "name": "{{lead.fields.secret}} <x>", "fields": secret}, JSONObject{}), "",
			"*Signup* by {{lead.fields.secret}} &lt;x&gt; (a@b.example)\nhttps://shop.example/join"},
		{"property key and value naming fields", payload("d1", nil, JSONObject{"{{app.name}}": "{{lead.fields.secret}}"}), "",
			"*Signup* by d1\nhttps://shop.example/join\n• {{app.name}}: {{lead.fields.secret}}"},
		{"property keys with a space and a dash", payload("d1", nil, JSONObject{"plan name": "Pro", "seat-count": json.Number("12")}), "",
			"*Signup* by d1\nhttps://shop.example/join\n• plan name: Pro\n• seat-count: 12"},
		{"template naming keys with a space and a dash", payload("d1", nil, JSONObject{"plan name": "Pro", "seat-count": json.Number("12")}),
			"{{ properties.plan name }} x{{properties.seat-count}} {{unknown}}", "Pro x12 "},
		{"a list property", payload("d1", nil, JSONObject{"tags": []any{"a b", json.Number("2")}}), "tags {{properties.tags}}", `tags ["a b",2]`},
		{"template values are not read again", payload("{{app.name}}", nil, JSONObject{}), "{{device.id}} on {{app.name}}", "{{app.name}} on Shop"},
	}
	for _, c := range cases {
		msg := slackMessage(c.payload, c.template)
		if got := msg["text"]; got != c.want {
			t.Errorf("%s: text %q, want %q", c.name, got, c.want)
		}
	}
}
