package main

import (
	"encoding/base64"
	"fmt"
	"strings"
	"testing"

	"github.com/99designs/gqlgen/client"
	"github.com/crumbs-dev/crumbs/models/modelstest"
	"gorm.io/gorm"
)

// segmentBatch posts messages to /v1/batch with the app's key and answers
// the outcome of each.
func segmentBatch(j *jsonAPI, secret string, messages ...string) apiResponse {
	j.t.Helper()
	basic := "Basic " + base64.StdEncoding.EncodeToString([]byte(secret+":"))
	r := j.postTo("/v1/batch", `{"batch":[`+strings.Join(messages, ",")+`]}`, "Authorization", basic)
	if r.status != 200 || len(r.Results) != len(messages) {
		j.t.Fatalf("batch: %d %s", r.status, r.raw)
	}
	return r
}

// storedDevices counts the app's rows of devices with these ids.
func storedDevices(t *testing.T, db *gorm.DB, appID string, devices ...string) int64 {
	t.Helper()
	var n int64
	err := db.Table("devices").Joins("JOIN apps ON apps.id = devices.app_id").
		Where("apps.public_id = ? AND devices.device_id IN ?", appID, devices).Count(&n).Error
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// In Segment's model a call that names the user (userId) is the user's,
// whether or not it names the browser it came from (anonymousId), and the
// two ids are one person's. Crumbs stores it on the userId's device, the
// one a Segment identify makes the lead's, so the event is on the user's
// lead even when the browser was never identified or is another lead's
// (a shared computer); and the browser, if it belongs to no lead, joins
// the user's, so its anonymous history comes to the lead. Never the other
// way: a user's device does not join the lead of a browser identified as
// someone (perhaps someone else). A device that has a lead keeps it (only
// an identify, naming the email, moves one), and a call refused stores and
// links nothing.
func TestSegmentUserIDIsTheUsers(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *gorm.DB) {
		j := newJSONAPI(t, db)
		appID, secret := j.a.createApp("Segment users")
		j.a.ok(`mutation($a: ID!) { createEventDefinition(input: {appId: $a, code: "order_completed", name: "Order"}) { id } }`, &map[string]any{}, client.Var("a", appID))
		order := func(anon, user, id string) string {
			return fmt.Sprintf(`{"type":"track","anonymousId":%q,"userId":%q,"event":"Order Completed","messageId":%q}`, anon, user, id)
		}

		// The user is identified by its userId alone (as a backend knows
		// it); the browser never was.
		segmentBatch(j, secret, `{"type":"page","anonymousId":"b-1","properties":{"url":"https://shop.example/pricing"}}`)
		segmentBatch(j, secret, `{"type":"identify","userId":"u-1","traits":{"email":"ann@example.com"}}`)
		if r := segmentBatch(j, secret, order("b-1", "u-1", "m-1")); !r.Results[0].Accepted {
			t.Fatalf("order: %s", r.raw)
		}
		if _, events := leadTimeline(j.a, appID, "ann@example.com"); len(events) != 2 || events[0].Code != "order_completed" || events[1].Code != "view" {
			t.Errorf("ann's timeline: %+v", events)
		}
		if events := deviceTimeline(j.a, appID, "u-1", ""); len(events) != 1 || events[0].Code != "order_completed" {
			t.Errorf("u-1: %+v", events)
		}
		if email, _ := leadOf(j.a, appID, "b-1"); email != "ann@example.com" {
			t.Errorf("b-1 belongs to %q", email)
		}

		// A shared browser, identified as another user: the order is the
		// user's, and the browser stays with the lead that identified it.
		segmentBatch(j, secret,
			`{"type":"identify","anonymousId":"b-2","userId":"u-old","traits":{"email":"old@example.com"}}`,
			`{"type":"identify","userId":"u-new","traits":{"email":"new@example.com"}}`)
		segmentBatch(j, secret, order("b-2", "u-new", "m-2"))
		if _, events := leadTimeline(j.a, appID, "new@example.com"); len(events) != 1 || events[0].Code != "order_completed" {
			t.Errorf("new's timeline: %+v", events)
		}
		if email, _ := leadOf(j.a, appID, "b-2"); email != "old@example.com" {
			t.Errorf("b-2 moved to %q", email)
		}
		if _, events := leadTimeline(j.a, appID, "old@example.com"); len(events) != 0 {
			t.Errorf("old's timeline: %+v", events)
		}

		// The browser was identified, the userId never was: the user's
		// device does not join the browser's lead (the browser may be a
		// shared one, identified as someone else); its order stays its own.
		segmentBatch(j, secret, `{"type":"identify","anonymousId":"b-3","traits":{"email":"cat@example.com"}}`)
		segmentBatch(j, secret, order("b-3", "u-3", "m-3"))
		if email, _ := leadOf(j.a, appID, "u-3"); email != "" {
			t.Errorf("u-3 belongs to %q", email)
		}
		if _, events := leadTimeline(j.a, appID, "cat@example.com"); len(events) != 0 {
			t.Errorf("cat's timeline: %+v", events)
		}
		if events := deviceTimeline(j.a, appID, "u-3", ""); len(events) != 1 || events[0].Lead != nil {
			t.Errorf("u-3: %+v", events)
		}

		// Neither has a lead: the order is the userId's, and no lead is made.
		segmentBatch(j, secret, order("b-4", "u-4", "m-4"))
		if events := deviceTimeline(j.a, appID, "u-4", ""); len(events) != 1 || events[0].Lead != nil {
			t.Errorf("u-4: %+v", events)
		}
		if n := storedDevices(t, db, appID, "b-4"); n != 0 {
			t.Errorf("b-4 stored %d times", n)
		}

		// Refused calls link nothing: an unknown event, a bad anonymousId.
		segmentBatch(j, secret, `{"type":"identify","userId":"u-5","traits":{"email":"dan@example.com"}}`)
		r := segmentBatch(j, secret,
			`{"type":"track","anonymousId":"b-5","userId":"u-5","event":"Nope"}`,
			`{"type":"track","anonymousId":"..","userId":"u-5","event":"Order Completed"}`)
		if r.Results[0].Error == nil || r.Results[0].Error.Code != "UNKNOWN_EVENT_CODE" {
			t.Errorf("unknown event: %s", r.raw)
		}
		wantField(t, "bad anonymousId", r.raw, r.Results[1], "anonymousId")
		if n := storedDevices(t, db, appID, "b-5", ".."); n != 0 {
			t.Errorf("refused calls stored %d devices", n)
		}
		if events := deviceTimeline(j.a, appID, "u-5", ""); len(events) != 0 {
			t.Errorf("u-5: %+v", events)
		}

		// A resend is a duplicate and links again: it may follow a store
		// fault that kept the first from linking.
		r = segmentBatch(j, secret, order("b-1", "u-1", "m-1"))
		if !r.Results[0].Accepted || !r.Results[0].Duplicate {
			t.Errorf("resend: %s", r.raw)
		}
	})
}

// Segment's real Node library sends a visitor signing in, in one batch:
// a page while anonymous, the backend's identify of the userId with its
// email, and a track from the browser naming both ids. The order is on the
// lead, and so is the page before it.
func TestSegmentNodeClientSignIn(t *testing.T) {
	node := nodeClient(t, "@segment/analytics-node")
	modelstest.Each(t, func(t *testing.T, db *gorm.DB) {
		j := newJSONAPI(t, db)
		appID, secret := j.a.createApp("Segment sign-in")
		j.a.ok(`mutation($a: ID!) { createEventDefinition(input: {appId: $a, code: "order_completed", name: "Order"}) { id } }`, &map[string]any{}, client.Var("a", appID))
		if out := runClient(t, node, "segment-user.mjs", j.srv.URL, secret); !strings.Contains(out, `"responses":[200]`) || strings.Contains(out, "segment error") {
			t.Fatalf("segment client: %s", out)
		}
		_, events := leadTimeline(j.a, appID, "kay@segment.example")
		if len(events) != 2 || events[0].Code != "order_completed" || events[0].Properties["revenue"] != 9.5 ||
			!strings.Contains(events[0].Device.UserAgent, "Firefox") || events[1].Code != "view" {
			t.Fatalf("kay's timeline: %+v", events)
		}
		for _, device := range []string{"browser-1", "user-1"} {
			if email, _ := leadOf(j.a, appID, device); email != "kay@segment.example" {
				t.Errorf("%s belongs to %q", device, email)
			}
		}
	})
}

// Within one /v1/batch an identify takes effect before the calls after it:
// a reader of the store when a track's event is written (a database
// trigger here, standing for the rules that read who owns a device) finds
// the device identified, as it would had the identify been sent first on
// its own.
func TestSegmentBatchIdentifiesInOrder(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *gorm.DB) {
		j := newJSONAPI(t, db)
		appID, secret := j.a.createApp("Segment order")
		j.a.ok(`mutation($a: ID!) { createEventDefinition(input: {appId: $a, code: "order_completed", name: "Order"}) { id } }`, &map[string]any{}, client.Var("a", appID))
		var app struct{ ID uint64 }
		if err := db.Table("apps").Select("id").Where("public_id = ?", appID).Take(&app).Error; err != nil {
			t.Fatal(err)
		}
		probe := fmt.Sprintf("segment_order_probe_%d", app.ID)
		read := "SELECT NEW.device_id, (SELECT lead_id FROM devices WHERE app_id = NEW.app_id AND device_id = NEW.device_id)"
		stmts := []string{"CREATE TABLE " + probe + " (device_id VARCHAR(128), lead_id BIGINT)"}
		if db.Dialector.Name() == "sqlite" {
			stmts = append(stmts, fmt.Sprintf("CREATE TRIGGER %s AFTER INSERT ON events FOR EACH ROW WHEN NEW.app_id = %d BEGIN INSERT INTO %s %s; END", probe, app.ID, probe, read))
		} else {
			stmts = append(stmts, fmt.Sprintf("CREATE TRIGGER %s AFTER INSERT ON events FOR EACH ROW INSERT INTO %s %s FROM DUAL WHERE NEW.app_id = %d", probe, probe, read, app.ID))
		}
		t.Cleanup(func() {
			db.Exec("DROP TRIGGER IF EXISTS " + probe)
			db.Exec("DROP TABLE IF EXISTS " + probe)
		})
		for _, s := range stmts {
			if err := db.Exec(s).Error; err != nil {
				t.Fatal(err)
			}
		}

		var messages []string
		for i := range 50 {
			messages = append(messages,
				fmt.Sprintf(`{"type":"identify","anonymousId":"o-%d","traits":{"email":"o%d@example.com"}}`, i, i),
				fmt.Sprintf(`{"type":"track","anonymousId":"o-%d","event":"Order Completed"}`, i))
		}
		r := segmentBatch(j, secret, messages...)
		if !strings.Contains(r.raw, `"success":true`) {
			t.Fatalf("batch: %s", r.raw)
		}
		var rows []struct {
			DeviceID string
			LeadID   *uint64
		}
		if err := db.Table(probe).Find(&rows).Error; err != nil {
			t.Fatal(err)
		}
		unidentified := 0
		for _, row := range rows {
			if row.LeadID == nil {
				unidentified++
			}
		}
		if len(rows) != 50 || unidentified != 0 {
			t.Errorf("%d events written, %d of them on a device not yet identified", len(rows), unidentified)
		}
	})
}
