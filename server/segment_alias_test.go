package main

import (
	"encoding/base64"
	"strings"
	"testing"

	"github.com/crumbs-dev/crumbs/models/modelstest"
	"gorm.io/gorm"
)

// A Segment alias (previousId → userId) says the two ids are one person:
// the previousId's device, if it belongs to no lead, joins the lead of the
// userId's device, with its history. Only that way, as for a call naming
// both ids: a device that has a lead keeps it, and when the userId's
// device has no lead nothing moves; either way the alias is accepted.
// It needs the app's key, and a refused alias stores and links nothing.
func TestSegmentAlias(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *gorm.DB) {
		j := newJSONAPI(t, db)
		appID, secret := j.a.createApp("Segment alias")
		basic := []string{"Authorization", "Basic " + base64.StdEncoding.EncodeToString([]byte(secret+":"))}
		alias := func(body string, header ...string) apiResponse {
			t.Helper()
			r := j.postTo("/v1/alias", body, header...)
			if r.status != 200 || len(r.Results) != 1 {
				t.Fatalf("alias %s: %d %s", body, r.status, r.raw)
			}
			return r
		}
		taken := func(name string, r apiResponse) {
			t.Helper()
			if !strings.Contains(r.raw, `"success":true`) || !r.Results[0].Accepted || r.Results[0].EventID != nil {
				t.Errorf("%s: %s", name, r.raw)
			}
		}

		// The browser's page, then the user identified by userId alone,
		// then the alias: the browser and its page join the user's lead.
		segmentBatch(j, secret, `{"type":"page","anonymousId":"b-1","properties":{"url":"https://shop.example/pricing"}}`)
		segmentBatch(j, secret, `{"type":"identify","userId":"u-1","traits":{"email":"ann@example.com"}}`)
		taken("alias", alias(`{"previousId":"b-1","userId":"u-1","context":{"userAgent":"Mozilla/5.0 Firefox/140.0"}}`, basic...))
		if email, _ := leadOf(j.a, appID, "b-1"); email != "ann@example.com" {
			t.Errorf("b-1 belongs to %q", email)
		}
		if _, events := leadTimeline(j.a, appID, "ann@example.com"); len(events) != 1 || events[0].Code != "view" {
			t.Errorf("ann's timeline: %+v", events)
		}
		// A previousId never seen is stored in the user's lead, as a
		// number too.
		taken("alias of a number", alias(`{"previousId":777,"userId":"u-1"}`, basic...))
		if email, _ := leadOf(j.a, appID, "777"); email != "ann@example.com" {
			t.Errorf("777 belongs to %q", email)
		}

		// The userId's device has no lead: accepted, nothing moves, and
		// the browser's device is not stored for it.
		segmentBatch(j, secret, `{"type":"identify","anonymousId":"b-2","traits":{"email":"cat@example.com"}}`)
		taken("alias to a user without a lead", alias(`{"previousId":"b-2","userId":"u-2"}`, basic...))
		taken("alias of two devices without a lead", alias(`{"previousId":"b-3","userId":"u-3"}`, basic...))
		if email, _ := leadOf(j.a, appID, "b-2"); email != "cat@example.com" {
			t.Errorf("b-2 moved to %q", email)
		}
		if n := storedDevices(t, db, appID, "u-2", "b-3", "u-3"); n != 0 {
			t.Errorf("aliases without a lead stored %d devices", n)
		}
		// A shared browser identified as someone else keeps its lead.
		segmentBatch(j, secret, `{"type":"identify","userId":"u-4","traits":{"email":"dan@example.com"}}`)
		taken("alias of another lead's browser", alias(`{"previousId":"b-2","userId":"u-4"}`, basic...))
		if email, _ := leadOf(j.a, appID, "b-2"); email != "cat@example.com" {
			t.Errorf("b-2 moved to %q", email)
		}
		if email, _ := leadOf(j.a, appID, "u-4"); email != "dan@example.com" {
			t.Errorf("u-4 moved to %q", email)
		}

		// Refused aliases store and link nothing.
		r := segmentBatch(j, secret,
			`{"type":"alias","userId":"u-1"}`,
			`{"type":"alias","previousId":"b-5"}`,
			`{"type":"alias","anonymousId":"b-5","userId":"u-1"}`,
			`{"type":"alias","previousId":"..","userId":"u-1"}`,
			`{"type":"alias","previousId":"b-5","userId":".."}`,
			`{"type":"alias","previousId":"b-5","userId":{"id":"u-1"}}`,
			`{"type":"alias","previousId":"`+strings.Repeat("b", 129)+`","userId":"u-1"}`)
		for i, field := range []string{"previousId", "userId", "previousId", "previousId", "userId", "userId", "previousId"} {
			wantField(t, "refused alias", r.raw, r.Results[i], field)
		}
		if n := storedDevices(t, db, appID, "b-5", "..", strings.Repeat("b", 129)); n != 0 {
			t.Errorf("refused aliases stored %d devices", n)
		}
		// Without the app's key, or with a wrong one, the request is refused.
		for _, header := range [][]string{nil, {"Authorization", "Basic " + base64.StdEncoding.EncodeToString([]byte("sk_wrong:"))}} {
			if r := j.postTo("/v1/alias", `{"previousId":"b-6","userId":"u-1"}`, header...); r.status != 401 || r.Error == nil || r.Error.Code != "UNAUTHENTICATED" {
				t.Errorf("alias with %v: %d %s", header, r.status, r.raw)
			}
		}
		if n := storedDevices(t, db, appID, "b-6"); n != 0 {
			t.Errorf("unauthenticated alias stored %d devices", n)
		}
	})
}

// Within a /v1/batch, aliases take effect after the batch's identifies (an
// alias finds the lead an identify anywhere in the batch gave its userId,
// as Segment merges two ids whatever the order of the calls), and with the
// links of its track, page and screen calls in the batch's order: of two
// links of one device, the first wins.
func TestSegmentBatchAliasOrder(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *gorm.DB) {
		j := newJSONAPI(t, db)
		appID, secret := j.a.createApp("Segment alias order")
		r := segmentBatch(j, secret,
			`{"type":"alias","previousId":"b-1","userId":"u-1"}`,
			`{"type":"identify","userId":"u-1","traits":{"email":"eve@example.com"}}`,
			`{"type":"identify","userId":"u-2","traits":{"email":"fay@example.com"}}`,
			`{"type":"alias","previousId":"b-2","userId":"u-2"}`,
			`{"type":"alias","previousId":"b-2","userId":"u-1"}`,
			`{"type":"page","anonymousId":"b-3","userId":"u-1"}`,
			`{"type":"alias","previousId":"b-3","userId":"u-2"}`,
			// An identify naming the browser wins over an alias of it,
			// wherever it stands: it names the email.
			`{"type":"alias","previousId":"b-4","userId":"u-1"}`,
			`{"type":"identify","anonymousId":"b-4","traits":{"email":"gil@example.com"}}`)
		if !strings.Contains(r.raw, `"success":true`) {
			t.Fatalf("batch: %s", r.raw)
		}
		for device, want := range map[string]string{"b-1": "eve@example.com", "b-2": "fay@example.com", "b-3": "eve@example.com", "b-4": "gil@example.com"} {
			if email, _ := leadOf(j.a, appID, device); email != want {
				t.Errorf("%s belongs to %q, want %q", device, email, want)
			}
		}
	})
}

// Segment's real Node library sends a visitor's page, the backend's alias
// of the browser to the user, and the user's identify, in one batch: the
// alias finds the identify's lead, so the browser and its page are on it.
func TestSegmentNodeClientAlias(t *testing.T) {
	node := nodeClient(t, "@segment/analytics-node")
	modelstest.Each(t, func(t *testing.T, db *gorm.DB) {
		j := newJSONAPI(t, db)
		appID, secret := j.a.createApp("Segment alias client")
		if out := runClient(t, node, "segment-alias.mjs", j.srv.URL, secret); !strings.Contains(out, `"responses":[200]`) || strings.Contains(out, "segment error") {
			t.Fatalf("segment client: %s", out)
		}
		for _, device := range []string{"browser-9", "user-9"} {
			if email, _ := leadOf(j.a, appID, device); email != "lee@segment.example" {
				t.Errorf("%s belongs to %q", device, email)
			}
		}
		if _, events := leadTimeline(j.a, appID, "lee@segment.example"); len(events) != 1 || events[0].Code != "view" || *events[0].URL != "https://shop.example/pricing" {
			t.Errorf("lee's timeline: %+v", events)
		}
	})
}
