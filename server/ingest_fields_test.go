package main

import (
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"

	"github.com/crumbs-dev/crumbs/models/modelstest"
	"gorm.io/gorm"
)

// wantField fails unless the item was refused BAD_USER_INPUT for field,
// with a message that names the field the same way.
func wantField(t *testing.T, name, raw string, item apiItem, field string) {
	t.Helper()
	if item.Accepted || item.Error == nil || item.Error.Code != "BAD_USER_INPUT" || item.Error.Field == nil ||
		*item.Error.Field != field || !strings.HasPrefix(item.Error.Message, field+": ") {
		t.Errorf("%s: %s; want BAD_USER_INPUT for field %q", name, raw, field)
	}
}

// Segment's endpoints name a refused field as the message sent it (the
// JSON API's snake_case names are not in a Segment body): each of the
// models' checks, and each of the endpoint's own, through the real server.
func TestSegmentErrorFields(t *testing.T) {
	long := strings.Repeat("x", 129)
	cases := []struct {
		name, path, body, field string
	}{
		{"device from anonymousId", "/v1/track", `{"anonymousId":"` + long + `","userId":"u","event":"view"}`, "anonymousId"},
		{"device from userId", "/v1/track", `{"userId":"` + long + `","event":"view"}`, "userId"},
		{"no device", "/v1/track", `{"event":"view"}`, "anonymousId"},
		{"no event", "/v1/track", `{"anonymousId":"s"}`, "event"},
		{"event with nothing of a code", "/v1/t", `{"anonymousId":"s","event":"!!!"}`, "event"},
		{"context.page.url", "/v1/track", `{"anonymousId":"s","event":"view","context":{"page":{"url":"https://a.example/` + strings.Repeat("p", 2048) + `"}}}`, "context.page.url"},
		{"context.page.referrer", "/v1/track", `{"anonymousId":"s","event":"view","context":{"page":{"referrer":"a\u0007b"}}}`, "context.page.referrer"},
		{"context.page.title", "/v1/page", `{"anonymousId":"s","context":{"page":{"title":"a\u0001b"}}}`, "context.page.title"},
		{"properties.url of a page", "/v1/p", `{"anonymousId":"s","properties":{"url":"https://a.example/\u0007"}}`, "properties.url"},
		{"properties.title of a screen", "/v1/screen", `{"anonymousId":"s","properties":{"title":"a\u0002"}}`, "properties.title"},
		{"properties", "/v1/track", `{"anonymousId":"s","event":"view","properties":{"a":{"b":{"c":{"d":{"e":{"f":{"g":{"h":{"i":1}}}}}}}}}}`, "properties"},
		{"properties not an object", "/v1/track", `{"anonymousId":"s","event":"view","properties":5}`, "properties"},
		{"timestamp unreadable", "/v1/track", `{"anonymousId":"s","event":"view","timestamp":"yesterday"}`, "timestamp"},
		{"timestamp out of range", "/v1/track", `{"anonymousId":"s","event":"view","timestamp":"1999-01-01T00:00:00Z"}`, "timestamp"},
		{"originalTimestamp unreadable", "/v1/track", `{"anonymousId":"s","event":"view","originalTimestamp":"yesterday"}`, "originalTimestamp"},
		{"originalTimestamp out of range", "/v1/track", `{"anonymousId":"s","event":"view","originalTimestamp":"1999-01-01T00:00:00Z"}`, "originalTimestamp"},
		{"sentAt unreadable", "/v1/track", `{"anonymousId":"s","event":"view","timestamp":"2026-01-02T03:04:05Z","sentAt":"now"}`, "sentAt"},
		{"batch's sentAt unreadable", "/v1/batch", `{"batch":[{"type":"track","anonymousId":"s","event":"view","timestamp":"2026-01-02T03:04:05Z"}],"sentAt":"later"}`, "sentAt"},
		{"messageId", "/v1/track", `{"anonymousId":"s","event":"view","messageId":""}`, "messageId"},
		{"no traits.email", "/v1/identify", `{"anonymousId":"s","traits":{"name":"Ann"}}`, "traits.email"},
		{"traits.email", "/v1/i", `{"anonymousId":"s","traits":{"email":"not an email"}}`, "traits.email"},
		{"traits.name", "/v1/identify", `{"anonymousId":"s","traits":{"email":"ann@example.com","name":"` + strings.Repeat("n", 201) + `"}}`, "traits.name"},
		{"traits.name of the wrong type", "/v1/identify", `{"anonymousId":"s","traits":{"email":"ann@example.com","name":5}}`, "traits.name"},
		{"traits", "/v1/identify", `{"anonymousId":"s","traits":{"email":"ann@example.com","a\u0001":1}}`, "traits"},
		{"identify's userId device", "/v1/identify", `{"anonymousId":"s","userId":"` + long + `","traits":{"email":"ann@example.com"}}`, "userId"},
		{"identify's anonymousId device", "/v1/identify", `{"anonymousId":"` + long + `","traits":{"email":"ann@example.com"}}`, "anonymousId"},
		{"type", "/v1/batch", `{"batch":[{"type":"wave","anonymousId":"s"}]}`, "type"},
		{"a message that is no object", "/v1/batch", `{"batch":[7]}`, "batch"},
		// Members of the wrong JSON type, named by their path.
		{"event of the wrong type", "/v1/track", `{"anonymousId":"s","event":5}`, "event"},
		{"context.page of the wrong type", "/v1/track", `{"anonymousId":"s","event":"view","context":{"page":"x"}}`, "context.page"},
		{"context.page.url of the wrong type", "/v1/page", `{"anonymousId":"s","context":{"page":{"url":5}}}`, "context.page.url"},
		{"context.userAgent of the wrong type", "/v1/track", `{"anonymousId":"s","event":"view","context":{"userAgent":["x"]}}`, "context.userAgent"},
		{"timestamp of the wrong type", "/v1/track", `{"anonymousId":"s","event":"view","timestamp":5}`, "timestamp"},
		{"messageId of the wrong type", "/v1/track", `{"anonymousId":"s","event":"view","messageId":5}`, "messageId"},
		{"a page's name of the wrong type", "/v1/page", `{"anonymousId":"s","name":{"x":1}}`, "name"},
		{"type of the wrong type", "/v1/batch", `{"batch":[{"type":1,"anonymousId":"s"}]}`, "type"},
	}
	modelstest.Each(t, func(t *testing.T, db *gorm.DB) {
		j := newJSONAPI(t, db)
		_, secret := j.a.createApp("Segment fields")
		basic := []string{"Authorization", "Basic " + base64.StdEncoding.EncodeToString([]byte(secret+":"))}
		for _, c := range cases {
			r := j.postTo(c.path, c.body, basic...)
			if r.status != 200 || len(r.Results) != 1 {
				t.Fatalf("%s: %d %s", c.name, r.status, r.raw)
			}
			wantField(t, c.name, r.raw, r.Results[0], c.field)
		}
		// Every message of a batch is named for itself.
		r := j.postTo("/v1/batch", `{"batch":[{"type":"track","userId":"`+long+`","event":"view"},{"type":"page","anonymousId":"s","context":{"page":{"url":"\u0007"}}},{"type":"track","anonymousId":"s","event":"view"}]}`, basic...)
		if r.status != 200 || len(r.Results) != 3 || !r.Results[2].Accepted {
			t.Fatalf("batch: %d %s", r.status, r.raw)
		}
		wantField(t, "batch item 0", r.raw, r.Results[0], "userId")
		wantField(t, "batch item 1", r.raw, r.Results[1], "context.page.url")
	})
}

// The Bento-style webhook names a refused field as the event sent it
// (type, email, details, fields, date, id) or, for a message id made from
// it, the Idempotency-Key header.
func TestBentoErrorFields(t *testing.T) {
	cases := []struct {
		name, event, field string
		header             []string
	}{
		{"type with nothing of a code", `{"type":"!!!","email":"a@example.com"}`, "type", nil},
		{"no type", `{"email":"a@example.com"}`, "type", nil},
		{"email", `{"type":"view","email":"not an email"}`, "email", nil},
		{"details not an object", `{"type":"view","email":"a@example.com","details":[1]}`, "details", nil},
		{"details", `{"type":"view","email":"a@example.com","details":{"a":{"b":{"c":{"d":{"e":{"f":{"g":{"h":{"i":1}}}}}}}}}}`, "details", nil},
		{"fields not an object", `{"type":"view","email":"a@example.com","fields":"pro"}`, "fields", nil},
		{"fields", `{"type":"view","email":"a@example.com","fields":{"a\u0001":1}}`, "fields", nil},
		{"date unreadable", `{"type":"view","email":"a@example.com","date":"yesterday"}`, "date", nil},
		{"date out of range", `{"type":"view","email":"a@example.com","date":"1999-01-01T00:00:00Z"}`, "date", nil},
		{"id too long", `{"type":"view","email":"a@example.com","id":"` + strings.Repeat("i", 128) + `"}`, "id", nil},
		{"id of the wrong type", `{"type":"view","email":"a@example.com","id":{"x":1}}`, "id", nil},
		{"details.unique.key of the wrong type", `{"type":"view","email":"a@example.com","details":{"unique":{"key":["order-1"]}}}`, "details.unique.key", nil},
		{"id beside an Idempotency-Key", `{"type":"view","email":"a@example.com","id":"` + strings.Repeat("i", 128) + `"}`, "id", []string{"Idempotency-Key", "ok-key"}},
		{"Idempotency-Key", `{"type":"view","email":"a@example.com"}`, "Idempotency-Key", []string{"Idempotency-Key", "a\tb"}},
		{"an event that is no object", `7`, "events", nil},
		// Members of the wrong JSON type.
		{"date of the wrong type", `{"type":"view","email":"a@example.com","date":5}`, "date", nil},
		{"type of the wrong type", `{"type":5,"email":"a@example.com"}`, "type", nil},
		{"email of the wrong type", `{"type":"view","email":["a@example.com"]}`, "email", nil},
	}
	modelstest.Each(t, func(t *testing.T, db *gorm.DB) {
		j := newJSONAPI(t, db)
		appID, _ := j.a.createApp("Bento fields")
		_, token, _ := createIngestToken(j.a, appID, "Fields")
		for _, c := range cases {
			r := j.webhook(token, "generic", `{"events":[`+c.event+`]}`, c.header...)
			if r.status != 200 || len(r.Items) != 1 || r.Failed != 1 {
				t.Fatalf("%s: %d %s", c.name, r.status, r.raw)
			}
			wantField(t, c.name, r.raw, r.Items[0], c.field)
		}
		// A whole request refused for its header names the header, and
		// says what is wrong with it (invalid UTF-8 was called too long).
		for name, key := range map[string]string{"long": strings.Repeat("k", 65), "not UTF-8": "k\xff"} {
			r := j.webhook(token, "generic", `{"events":[{"type":"view","email":"a@example.com"}]}`, "Idempotency-Key", key)
			var body struct {
				Error struct{ Code, Field, Message string }
			}
			json.Unmarshal([]byte(r.raw), &body)
			if r.status != 400 || body.Error.Code != "BAD_USER_INPUT" || body.Error.Field != "Idempotency-Key" || !strings.Contains(body.Error.Message, "UTF-8 of at most 64 bytes") {
				t.Fatalf("%s Idempotency-Key: %d %s", name, r.status, r.raw)
			}
		}
	})
}

// The JSON API names a member of the wrong JSON type in snake_case, as it
// names every bad field: for one event or an identify the request is
// refused 400 with the field, in a batch only that event.
func TestJSONErrorFieldTypes(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *gorm.DB) {
		j := newJSONAPI(t, db)
		appID, secret := j.a.createApp("JSON field types")
		key := []string{"Authorization", "Bearer " + secret}
		for _, c := range []struct{ name, path, body, field string }{
			{"device_id", "events", `{"device_id":5,"code":"view"}`, "device_id"},
			{"code", "events", `{"device_id":"d","code":["view"]}`, "code"},
			{"occurred_at", "events", `{"device_id":"d","code":"view","occurred_at":1767225600}`, "occurred_at"},
			{"message_id", "events", `{"device_id":"d","code":"view","message_id":7}`, "message_id"},
			{"identify's device_id", "identify", `{"device_id":5,"email":"a@example.com"}`, "device_id"},
			{"identify's name", "identify", `{"device_id":"d","email":"a@example.com","name":false}`, "name"},
		} {
			r := j.postTo("/api/v1/apps/"+appID+"/"+c.path, c.body, key...)
			var out struct {
				Error *struct{ Code, Message, Field string }
			}
			json.Unmarshal([]byte(r.raw), &out)
			if r.status != 400 || out.Error == nil || out.Error.Code != "BAD_USER_INPUT" || out.Error.Field != c.field || !strings.HasPrefix(out.Error.Message, c.field+": ") {
				t.Errorf("%s: %d %s; want 400 BAD_USER_INPUT for field %q", c.name, r.status, r.raw, c.field)
			}
		}
		r := j.post(appID, `{"events":[{"device_id":"d","code":"view"},{"device_id":"d","code":"view","properties":{},"url":5}]}`, key...)
		if r.status != 200 || len(r.Results) != 2 || !r.Results[0].Accepted {
			t.Fatalf("batch: %d %s", r.status, r.raw)
		}
		wantField(t, "batch item 1", r.raw, r.Results[1], "url")
		// Without the key, a whole-request refusal comes first.
		if r := j.post(appID, `{"device_id":5,"code":"view"}`, "Authorization", "Bearer sk_wrong"); r.status != 401 {
			t.Errorf("wrong key: %d %s", r.status, r.raw)
		}
	})
}
