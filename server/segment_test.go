package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/99designs/gqlgen/client"
	"github.com/crumbs-dev/crumbs/models/modelstest"
	"gorm.io/gorm"
)

// clientsDir holds the real client libraries (npm) the ingestion tests send
// through; its node_modules come from .ci/setup-ingest-clients.
const clientsDir = "testdata/ingest-clients"

// nodeClient returns node, once the package the test needs is installed.
func nodeClient(t *testing.T, pkg string) string {
	t.Helper()
	node, err := exec.LookPath("node")
	if _, serr := os.Stat(filepath.Join(clientsDir, "node_modules", pkg, "package.json")); err != nil || serr != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("node or %s is missing; run .ci/setup-ingest-clients", pkg)
		}
		t.Skipf("node or %s is missing; run .ci/setup-ingest-clients", pkg)
	}
	return node
}

type timelineEvent struct {
	Code, Source string
	URL, Title   *string
	Referrer     *string
	Properties   map[string]any
	OccurredAt   string
	Device       struct{ UserAgent string }
	Lead         *struct{ Email string }
	Integration  *string
}

// deviceTimeline reads a device's events back through GraphQL, newest first.
func deviceTimeline(a *api, appID, device string, fields string) []timelineEvent {
	a.t.Helper()
	var out struct {
		Device struct {
			Timeline struct {
				Edges []struct{ Node timelineEvent }
			}
		}
	}
	a.ok(`query($a: ID!, $d: ID!) { device(appId: $a, deviceId: $d) { timeline(first: 50) { edges { node {
		code source url title referrer properties occurredAt device { userAgent } lead { email } `+fields+` } } } } }`,
		&out, client.Var("a", appID), client.Var("d", device))
	var events []timelineEvent
	for _, e := range out.Device.Timeline.Edges {
		events = append(events, e.Node)
	}
	return events
}

// Segment's own Node library, pointed at a Crumbs server, sends identify,
// track, page and screen calls through /v1/batch; they read back through
// GraphQL as the mapping says, on both stores.
func TestSegmentNodeClient(t *testing.T) {
	node := nodeClient(t, "@segment/analytics-node")
	modelstest.Each(t, func(t *testing.T, db *gorm.DB) {
		j := newJSONAPI(t, db)
		appID, secret := j.a.createApp("Segment")
		for _, code := range []string{"order_completed", "subscription_renewed"} {
			j.a.ok(`mutation($a: ID!, $c: String!) { createEventDefinition(input: {appId: $a, code: $c, name: $c}) { id } }`, &map[string]any{}, client.Var("a", appID), client.Var("c", code))
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, node, "segment.mjs", j.srv.URL, secret)
		cmd.Dir = clientsDir
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), `"responses":[200`) || strings.Contains(string(out), "segment error") {
			t.Fatalf("segment client: %v\n%s", err, out)
		}

		anon := deviceTimeline(j.a, appID, "seg-anon-1", "")
		if len(anon) != 2 {
			t.Fatalf("seg-anon-1 has %d events, want the page and one order: %+v", len(anon), anon)
		}
		var order, page timelineEvent
		for _, e := range anon {
			switch e.Code {
			case "order_completed":
				order = e
			case "view":
				page = e
			}
		}
		if order.Source != "api" || *order.URL != "https://shop.example/checkout" || *order.Title != "Checkout" ||
			order.Properties["currency"] != "EUR" || order.Properties["revenue"] != 42.5 || order.Lead == nil || order.Lead.Email != "ada@segment.example" ||
			!strings.Contains(order.Device.UserAgent, "Firefox") {
			t.Fatalf("order: %+v", order)
		}
		if *page.URL != "https://shop.example/pricing" || *page.Title != "Pricing" || *page.Referrer != "https://news.example/" || page.Properties["name"] != "Pricing" {
			t.Fatalf("page: %+v", page)
		}
		user := deviceTimeline(j.a, appID, "user-42", "")
		if len(user) != 1 || user[0].Code != "subscription_renewed" || user[0].OccurredAt != "2026-01-02T03:04:05Z" || user[0].Lead == nil {
			t.Fatalf("user-42: %+v", user)
		}
		if email, fields := leadOf(j.a, appID, "user-42"); email != "ada@segment.example" || fields["plan"] != "pro" || fields["seats"] != 3.0 {
			t.Fatalf("lead of user-42: %q %v", email, fields)
		}
		if screen := deviceTimeline(j.a, appID, "seg-anon-2", ""); len(screen) != 1 || screen[0].Code != "view" {
			t.Fatalf("screen: %+v", screen)
		}
		var app struct {
			App struct{ UnknownCodes []struct{ Code string } }
		}
		j.a.ok(`query($a: ID!) { app(id: $a) { unknownCodes { code } } }`, &app, client.Var("a", appID))
		if len(app.App.UnknownCodes) != 1 || app.App.UnknownCodes[0].Code != "totally_unknown_thing" {
			t.Fatalf("unknown codes: %+v", app.App.UnknownCodes)
		}
	})
}

// The single-call endpoints and their aliases, with Segment's documented
// payloads; refusals as on the JSON API.
func TestSegmentEndpoints(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *gorm.DB) {
		j := newJSONAPI(t, db)
		appID, secret := j.a.createApp("Segment HTTP")
		basic := []string{"Authorization", "Basic " + base64.StdEncoding.EncodeToString([]byte(secret+":"))}
		ok := func(path, body string) apiResponse {
			t.Helper()
			r := j.postTo(path, body, basic...)
			var out struct{ Success bool }
			json.Unmarshal([]byte(r.raw), &out)
			if r.status != 200 || !out.Success {
				t.Fatalf("%s %s: %d %s", path, body, r.status, r.raw)
			}
			return r
		}
		ok("/v1/track", `{"anonymousId":"s-1","event":"Click","properties":{"button":"buy"}}`)
		ok("/v1/t", `{"userId":12345,"event":"click","messageId":"t-1"}`)
		ok("/v1/page", `{"anonymousId":"s-1","name":"Home","context":{"page":{"url":"https://a.example/","title":"Home"}}}`)
		ok("/v1/p", `{"anonymousId":"s-1"}`)
		ok("/v1/identify", `{"anonymousId":"s-1","traits":{"email":"grace@example.com","name":"Grace","role":"admin"}}`)
		ok("/v1/i", `{"userId":"12345","traits":{"email":"grace@example.com"}}`)
		ok("/v1/batch", `{"batch":[{"type":"group","userId":"12345","groupId":"g"},{"type":"alias","userId":"12345","previousId":"s-1"}]}`)
		ok("/v1/g", `{"userId":"12345","groupId":"g"}`)
		ok("/v1/a", `{"userId":"12345","previousId":"s-1"}`)
		if events := deviceTimeline(j.a, appID, "s-1", ""); len(events) != 3 || events[0].Lead == nil || events[0].Lead.Email != "grace@example.com" {
			t.Fatalf("s-1: %+v", events)
		}
		if events := deviceTimeline(j.a, appID, "12345", ""); len(events) != 1 || events[0].Code != "click" {
			t.Fatalf("12345: %+v", events)
		}

		// The write key in the body, as Segment's libraries also send it.
		if r := j.postTo("/v1/track", `{"writeKey":"`+secret+`","anonymousId":"s-2","event":"View"}`); r.status != 200 {
			t.Fatalf("writeKey in the body: %d %s", r.status, r.raw)
		}
		// Per-message refusals answer 200 with success false (a resend
		// would not help), whole-request ones a status.
		r := j.postTo("/v1/batch", `{"batch":[{"type":"track","anonymousId":"s-3","event":"Nope"},{"type":"identify","anonymousId":"s-3","traits":{}},{"type":"track","event":"view"},{"type":"wave"}]}`, basic...)
		if r.status != 200 || strings.Contains(r.raw, `"success":true`) || len(r.Results) != 4 ||
			r.Results[0].Error.Code != "UNKNOWN_EVENT_CODE" || *r.Results[1].Error.Field != "traits.email" ||
			*r.Results[2].Error.Field != "anonymousId" || *r.Results[3].Error.Field != "type" {
			t.Fatalf("bad messages: %d %s", r.status, r.raw)
		}
		for _, c := range []struct {
			name, path, body string
			header           []string
			status           int
			code             string
		}{
			{"no key", "/v1/track", `{"anonymousId":"s","event":"view"}`, nil, 401, "UNAUTHENTICATED"},
			{"wrong key", "/v1/track", `{"anonymousId":"s","event":"view"}`, []string{"Authorization", "Basic " + base64.StdEncoding.EncodeToString([]byte("sk_wrong:"))}, 401, "UNAUTHENTICATED"},
			{"not a key", "/v1/track", `{"anonymousId":"s","event":"view"}`, []string{"Authorization", "Basic !!!"}, 401, "UNAUTHENTICATED"},
			{"not a batch", "/v1/batch", `{"anonymousId":"s","event":"view"}`, basic, 400, "BAD_REQUEST"},
			{"not json", "/v1/track", `{`, basic, 400, "BAD_REQUEST"},
			{"basic on the JSON API", "/api/v1/apps/" + appID + "/events", `{"device_id":"s","code":"view"}`, basic, 401, "UNAUTHENTICATED"},
		} {
			r := j.postTo(c.path, c.body, c.header...)
			if r.status != c.status || r.Error == nil || r.Error.Code != c.code {
				t.Fatalf("%s: %d %s", c.name, r.status, r.raw)
			}
			// Every 401 of Segment's API names its scheme, a wrong key's too.
			if c.status == 401 && strings.HasPrefix(c.path, "/v1/") && r.header.Get("WWW-Authenticate") != `Basic realm="crumbs"` {
				t.Fatalf("%s: WWW-Authenticate %q", c.name, r.header.Get("WWW-Authenticate"))
			}
		}
	})
}

// POST /v1/group, which Segment documents and its libraries other than
// analytics-node post to, answers each body as /v1/batch answers it as a
// group item: taken and not kept, a message refused for a bad member as in
// a batch, whole-request refusals as on the other endpoints.
func TestSegmentGroup(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *gorm.DB) {
		j := newJSONAPI(t, db)
		appID, secret := j.a.createApp("Segment group")
		basic := []string{"Authorization", "Basic " + base64.StdEncoding.EncodeToString([]byte(secret+":"))}
		for _, c := range []struct{ body, want string }{
			// Segment's documented payload.
			{`{"userId":"g-user","groupId":"acme","traits":{"name":"Acme Inc.","industry":"Technology","employees":420},"messageId":"g-1"}`,
				`{"success":true,"results":[{"accepted":true,"duplicate":false,"event_id":null,"error":null}]}`},
			{`{"anonymousId":"g-anon","groupId":"acme","context":{"page":{"url":"https://a.example/"}},"timestamp":"2026-01-02T03:04:05Z"}`,
				`{"success":true,"results":[{"accepted":true,"duplicate":false,"event_id":null,"error":null}]}`},
			{`{"groupId":"acme"}`,
				`{"success":true,"results":[{"accepted":true,"duplicate":false,"event_id":null,"error":null}]}`},
			// A member of the wrong type refuses the message, named as sent.
			{`{"userId":"g-user","groupId":"acme","context":{"page":"x"}}`, `"field":"context.page"`},
		} {
			group := j.postTo("/v1/group", c.body, basic...)
			item := j.postTo("/v1/batch", `{"batch":[`+strings.Replace(c.body, "{", `{"type":"group",`, 1)+`]}`, basic...)
			if group.status != 200 || item.status != 200 || group.raw != item.raw || !strings.Contains(group.raw, c.want) {
				t.Fatalf("%s: /v1/group %d %s; as a batch item %d %s; want %s", c.body, group.status, group.raw, item.status, item.raw, c.want)
			}
		}
		// The endpoint says the type, whatever the body does.
		if r := j.postTo("/v1/group", `{"type":"track","userId":"g-user","event":"click"}`, basic...); r.status != 200 || len(r.Results) != 1 || !r.Results[0].Accepted || r.Results[0].EventID != nil {
			t.Fatalf("a body typed track: %d %s", r.status, r.raw)
		}
		// The write key in the body, as Segment's libraries also send it.
		if r := j.postTo("/v1/group", `{"writeKey":"`+secret+`","userId":"g-user","groupId":"acme"}`); r.status != 200 || !strings.Contains(r.raw, `"success":true`) {
			t.Fatalf("writeKey in the body: %d %s", r.status, r.raw)
		}
		// Nothing is kept: no device of either id exists.
		for _, device := range []string{"g-user", "g-anon"} {
			var out struct{ Device *struct{ ID string } }
			if err := j.a.gql.Post(`query($a: ID!, $d: ID!) { device(appId: $a, deviceId: $d) { id } }`, &out, client.Var("a", appID), client.Var("d", device), as(j.a.ownerToken)); err == nil {
				t.Fatalf("a group call stored the device %s: %+v", device, out)
			}
		}
		for _, c := range []struct {
			name, body string
			header     []string
			status     int
			code       string
		}{
			{"no key", `{"userId":"g-user","groupId":"acme"}`, nil, 401, "UNAUTHENTICATED"},
			{"wrong key", `{"userId":"g-user","groupId":"acme"}`, []string{"Authorization", "Basic " + base64.StdEncoding.EncodeToString([]byte("sk_wrong:"))}, 401, "UNAUTHENTICATED"},
			{"not json", `{`, basic, 400, "BAD_REQUEST"},
			{"an array", `[{"userId":"g-user"}]`, basic, 400, "BAD_REQUEST"},
			{"too large", `{"userId":"g-user","groupId":"acme","traits":{"name":"` + strings.Repeat("x", 3<<20) + `"}}`, basic, 413, "PAYLOAD_TOO_LARGE"},
		} {
			r := j.postTo("/v1/group", c.body, c.header...)
			if r.status != c.status || r.Error == nil || r.Error.Code != c.code {
				t.Fatalf("%s: %d %s", c.name, r.status, r.raw)
			}
			if c.status == 401 && r.header.Get("WWW-Authenticate") != `Basic realm="crumbs"` {
				t.Fatalf("%s: WWW-Authenticate %q", c.name, r.header.Get("WWW-Authenticate"))
			}
		}
	})
}

// A Segment identify names up to two devices (anonymousId and userId):
// both join the lead, or, when either is refused, neither does and no lead
// is made. Other messages of the batch are taken on their own.
func TestSegmentIdentifyAllOrNothing(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *gorm.DB) {
		j := newJSONAPI(t, db)
		appID, secret := j.a.createApp("Segment identify")
		basic := []string{"Authorization", "Basic " + base64.StdEncoding.EncodeToString([]byte(secret+":"))}
		long := strings.Repeat("u", 129)
		r := j.postTo("/v1/batch", `{"batch":[
			{"type":"identify","anonymousId":"anon-1","userId":"`+long+`","traits":{"email":"ann@example.com","plan":"pro"}},
			{"type":"identify","anonymousId":"anon-2","userId":"user-2","traits":{"email":"bea@example.com"}}]}`, basic...)
		if r.status != 200 || len(r.Results) != 2 || !r.Results[1].Accepted {
			t.Fatalf("batch: %d %s", r.status, r.raw)
		}
		wantField(t, "identify with a bad userId", r.raw, r.Results[0], "userId")
		var out struct{ LeadByEmail *struct{ ID string } }
		j.a.ok(`query($a: ID!, $e: String!) { leadByEmail(appId: $a, email: $e) { id } }`, &out, client.Var("a", appID), client.Var("e", "ann@example.com"))
		var anon int64
		db.Table("devices").Joins("JOIN apps ON apps.id = devices.app_id").Where("apps.public_id = ? AND devices.device_id = ?", appID, "anon-1").Count(&anon)
		if out.LeadByEmail != nil || anon != 0 {
			t.Errorf("a refused identify wrote: lead %v, anon-1 stored %d times", out.LeadByEmail, anon)
		}
		for _, device := range []string{"anon-2", "user-2"} {
			if email, _ := leadOf(j.a, appID, device); email != "bea@example.com" {
				t.Errorf("%s belongs to %q", device, email)
			}
		}
	})
}

// runClient runs a script of testdata/ingest-clients with node and returns
// what it printed.
func runClient(t *testing.T, node string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, args...)
	cmd.Dir = clientsDir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("node %s: %v\n%s", args[0], err, out)
	}
	return string(out)
}

// A server whose clock is off sends through Segment's real Node library,
// which stamps each call's timestamp and the batch's sentAt with that
// clock: its events are stored at the server's time of the call, as
// Segment corrects them (receivedAt - (sentAt - timestamp)), instead of
// every one being refused as in the future (a clock 10 minutes fast) or
// stored 20 minutes early (a clock that slow).
func TestSegmentClockSkew(t *testing.T) {
	node := nodeClient(t, "@segment/analytics-node")
	modelstest.Each(t, func(t *testing.T, db *gorm.DB) {
		j := newJSONAPI(t, db)
		appID, secret := j.a.createApp("Segment skew")
		j.a.ok(`mutation($a: ID!) { createEventDefinition(input: {appId: $a, code: "order_completed", name: "Order"}) { id } }`, &map[string]any{}, client.Var("a", appID))
		for _, skew := range []time.Duration{10 * time.Minute, -20 * time.Minute} {
			device := fmt.Sprintf("skew%+d", int(skew.Minutes()))
			before := time.Now()
			out := runClient(t, node, "segment-skew.mjs", j.srv.URL, secret, strconv.FormatInt(skew.Milliseconds(), 10), device)
			after := time.Now()
			if !strings.Contains(out, `"responses":[200]`) || strings.Contains(out, "segment error") {
				t.Fatalf("%s: %s", device, out)
			}
			// Times are kept to the millisecond; the sender's own reading
			// of them lies within the run.
			within := func(at string, ago time.Duration) bool {
				tm, err := time.Parse(time.RFC3339Nano, at)
				return err == nil && !tm.Before(before.Add(-ago-maxSkewSlack)) && !tm.After(after.Add(-ago+maxSkewSlack))
			}
			events := deviceTimeline(j.a, appID, device, "")
			var now, earlier int
			for _, e := range events {
				switch {
				case within(e.OccurredAt, 0):
					now++
				case within(e.OccurredAt, time.Minute) && e.Code == "order_completed":
					earlier++
				}
			}
			if len(events) != 3 || now != 2 || earlier != 1 {
				t.Errorf("%s (run %s to %s): %+v", device, before.UTC().Format(time.RFC3339Nano), after.UTC().Format(time.RFC3339Nano), events)
			}
		}
	})
}

// maxSkewSlack is how far a corrected time may lie from the sender's
// reading: the correction counts the time a request takes to arrive as skew.
const maxSkewSlack = time.Second

// RudderStack's real Node library, as it sends by default (gzipped JSON
// labelled application/x-www-form-urlencoded, each call's time in
// originalTimestamp), identifies and records through /v1/batch, as the
// README promises of RudderStack's libraries.
func TestRudderStackNodeClient(t *testing.T) {
	node := nodeClient(t, "@rudderstack/rudder-sdk-node")
	modelstest.Each(t, func(t *testing.T, db *gorm.DB) {
		j := newJSONAPI(t, db)
		appID, secret := j.a.createApp("RudderStack")
		j.a.ok(`mutation($a: ID!) { createEventDefinition(input: {appId: $a, code: "order_completed", name: "Order"}) { id } }`, &map[string]any{}, client.Var("a", appID))
		if out := runClient(t, node, "rudderstack.mjs", j.srv.URL, secret); strings.TrimSpace(out) != `{"errors":[]}` {
			t.Fatalf("rudderstack client: %s", out)
		}
		events := deviceTimeline(j.a, appID, "rs-anon-1", "")
		var order, page *timelineEvent
		for i, e := range events {
			switch e.Code {
			case "order_completed":
				order = &events[i]
			case "view":
				page = &events[i]
			}
		}
		if len(events) != 2 || order == nil || page == nil {
			t.Fatalf("rs-anon-1: %+v", events)
		}
		if order.OccurredAt != "2026-01-02T03:04:05Z" || order.Properties["revenue"] != 42.5 || order.Lead == nil || order.Lead.Email != "ada@rudder.example" {
			t.Errorf("order: %+v", *order)
		}
		if page.URL == nil || *page.URL != "https://shop.example/pricing" || page.Properties["name"] != "Pricing" {
			t.Errorf("page: %+v", *page)
		}
		if email, fields := leadOf(j.a, appID, "rs-user-1"); email != "ada@rudder.example" || fields["plan"] != "pro" {
			t.Errorf("lead of rs-user-1: %q %v", email, fields)
		}
	})
}

// Segment's libraries batch by size, not by count: analytics-node with
// flushAt 1000 sends 1,000 small messages in one /v1/batch, which Crumbs
// refused whole (400, which the library drops) for having more than 500.
// All are stored, in order, once each.
func TestSegmentLargeBatch(t *testing.T) {
	node := nodeClient(t, "@segment/analytics-node")
	modelstest.Each(t, func(t *testing.T, db *gorm.DB) {
		j := newJSONAPI(t, db)
		appID, secret := j.a.createApp("Segment large batch")
		j.a.ok(`mutation($a: ID!) { createEventDefinition(input: {appId: $a, code: "order_completed", name: "Order"}) { id } }`, &map[string]any{}, client.Var("a", appID))
		if out := runClient(t, node, "segment-many.mjs", j.srv.URL, secret, "1000"); !strings.Contains(out, `"responses":[200]`) || strings.Contains(out, "segment error") {
			t.Fatalf("segment client: %s", out)
		}
		var stored, distinct int64
		events := db.Table("events").Joins("JOIN apps ON apps.id = events.app_id").Where("apps.public_id = ? AND events.device_id = ?", appID, "many-1")
		events.Count(&stored)
		db.Table("events").Joins("JOIN apps ON apps.id = events.app_id").Where("apps.public_id = ? AND events.device_id = ?", appID, "many-1").Distinct("message_id").Count(&distinct)
		if stored != 1000 || distinct != 1000 {
			t.Fatalf("stored %d events with %d message ids, want 1000", stored, distinct)
		}
	})
}
