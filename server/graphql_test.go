package main

import (
	"strings"
	"testing"

	"github.com/99designs/gqlgen/client"
	"github.com/crumbs-dev/crumbs/models/modelstest"
	"gorm.io/gorm"
)

const triggerMutation = `mutation($in: TriggerInput!) { trigger(input: $in) { accepted duplicate eventId } }`

type triggerOut struct {
	Trigger struct {
		Accepted, Duplicate bool
		EventID             string
	}
}

func TestGraphQLAppsAndDefinitions(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *gorm.DB) {
		a := newAPI(t, db)
		appID, secret := a.createApp("Shop")
		if !strings.HasPrefix(appID, "app_") || !strings.HasPrefix(secret, "sk_") {
			t.Fatalf("app %q secret %q", appID, secret)
		}
		var app struct {
			App struct {
				ID, Name, Timezone, SecretKeyHint string
				EventDefinitions                  []struct{ Code string }
			}
		}
		a.ok(`query($id: ID!) { app(id: $id) { id name timezone secretKeyHint eventDefinitions { code } } }`, &app, client.Var("id", appID))
		if app.App.Name != "Shop" || app.App.Timezone != "UTC" || !strings.HasPrefix(secret, app.App.SecretKeyHint) || len(app.App.EventDefinitions) != 3 {
			t.Fatalf("app %+v", app.App)
		}
		a.refused("NOT_FOUND", "", `{ app(id: "app_missing") { id } }`)

		a.refused("BAD_USER_INPUT", "name", `mutation { createApp(input: {name: ""}) { secretKey } }`)
		a.refused("BAD_USER_INPUT", "timezone", `mutation { createApp(input: {name: "x", timezone: "Nowhere/City"}) { secretKey } }`)
		a.refused("BAD_USER_INPUT", "allowedOrigins", `mutation { createApp(input: {name: "x", allowedOrigins: ["ftp://x"]}) { secretKey } }`)
		a.refused("NOT_FOUND", "", `mutation { updateApp(id: "app_missing", input: {name: "x"}) { id } }`)

		var def struct {
			CreateEventDefinition struct{ ID, Code, Color string }
		}
		a.ok(`mutation($a: ID!) { createEventDefinition(input: {appId: $a, code: "trial_click", name: "Trial", color: "#00ff00", description: "Clicked trial"}) { id code color } }`, &def, client.Var("a", appID))
		if def.CreateEventDefinition.Color != "#00FF00" {
			t.Fatalf("definition %+v", def)
		}
		defID := def.CreateEventDefinition.ID
		a.refused("CONFLICT", "code", `mutation($a: ID!) { createEventDefinition(input: {appId: $a, code: "trial_click", name: "Again"}) { id } }`, client.Var("a", appID))
		a.refused("BAD_USER_INPUT", "code", `mutation($a: ID!) { createEventDefinition(input: {appId: $a, code: "Trial Click", name: "x"}) { id } }`, client.Var("a", appID))
		a.refused("BAD_USER_INPUT", "color", `mutation($a: ID!) { createEventDefinition(input: {appId: $a, code: "c2", name: "x", color: "green"}) { id } }`, client.Var("a", appID))
		a.refused("BAD_USER_INPUT", "id", `mutation { updateEventDefinition(id: "x1", input: {name: "n"}) { id } }`)
		a.refused("NOT_FOUND", "", `mutation { deleteEventDefinition(id: "999999") { id } }`)

		var trig triggerOut
		a.ok(triggerMutation, &trig, client.Var("in", map[string]any{"appId": appID, "deviceId": "dev-1", "code": "trial_click"}))
		a.refused("EVENT_ALREADY_TRIGGERED", "", `mutation($id: ID!) { deleteEventDefinition(id: $id) { id } }`, client.Var("id", defID))
		a.refused("EVENT_ALREADY_TRIGGERED", "", `mutation($id: ID!) { updateEventDefinition(id: $id, input: {code: "renamed"}) { id } }`, client.Var("id", defID))

		var upd struct {
			UpdateEventDefinition struct {
				Enabled          bool
				TriggerCount     int
				FirstTriggeredAt *string
			}
		}
		a.ok(`mutation($id: ID!) { updateEventDefinition(id: $id, input: {enabled: false}) { enabled triggerCount firstTriggeredAt } }`, &upd, client.Var("id", defID))
		if upd.UpdateEventDefinition.Enabled || upd.UpdateEventDefinition.TriggerCount != 1 || upd.UpdateEventDefinition.FirstTriggeredAt == nil {
			t.Fatalf("after disable %+v", upd)
		}
		a.refused("EVENT_DISABLED", "", triggerMutation, client.Var("in", map[string]any{"appId": appID, "deviceId": "dev-1", "code": "trial_click"}))
		var list struct {
			App struct{ EventDefinitions []struct{ Code string } }
		}
		a.ok(`query($id: ID!) { app(id: $id) { eventDefinitions(enabled: false) { code } } }`, &list, client.Var("id", appID))
		if len(list.App.EventDefinitions) != 1 || list.App.EventDefinitions[0].Code != "trial_click" {
			t.Fatalf("disabled list %+v", list)
		}

		var fresh struct{ CreateEventDefinition struct{ ID string } }
		a.ok(`mutation($a: ID!) { createEventDefinition(input: {appId: $a, code: "unused", name: "Unused"}) { id } }`, &fresh, client.Var("a", appID))
		var del struct{ DeleteEventDefinition struct{ ID string } }
		a.ok(`mutation($id: ID!) { deleteEventDefinition(id: $id) { id } }`, &del, client.Var("id", fresh.CreateEventDefinition.ID))

		var rot struct {
			RotateAppSecret struct{ SecretKey string }
		}
		a.ok(`mutation($id: ID!) { rotateAppSecret(id: $id) { secretKey } }`, &rot, client.Var("id", appID))
		var check struct{ CheckAppKey struct{ KeyValid bool } }
		a.refused("UNAUTHENTICATED", "", `query($id: ID!) { checkAppKey(appId: $id) { keyValid } }`, client.Var("id", appID), client.AddHeader("Authorization", "Bearer "+secret))
		a.ok(`query($id: ID!) { checkAppKey(appId: $id) { keyValid } }`, &check, client.Var("id", appID), client.AddHeader("Authorization", "Bearer "+rot.RotateAppSecret.SecretKey))
		if !check.CheckAppKey.KeyValid {
			t.Fatal("new secret not valid")
		}
	})
}

func TestGraphQLTriggerAndTimelines(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *gorm.DB) {
		a := newAPI(t, db)
		appID, secret := a.createApp("Blog")
		in := func(code string, extra map[string]any) client.Option {
			m := map[string]any{"appId": appID, "deviceId": "browser-1", "code": code}
			for k, v := range extra {
				m[k] = v
			}
			return client.Var("in", m)
		}
		server := client.AddHeader("Authorization", "Bearer "+secret)
		var first, dup triggerOut
		a.ok(triggerMutation, &first, in("view", map[string]any{
			"url": "https://blog.example/post", "referrer": "https://news.example/", "title": "Post",
			"properties": map[string]any{"section": "news"}, "messageId": "m-1", "source": "block",
			"occurredAt": "2026-11-01T10:00:00.250Z",
		}), server)
		a.ok(triggerMutation, &dup, in("view", map[string]any{"messageId": "m-1"}))
		if !first.Trigger.Accepted || first.Trigger.Duplicate || !dup.Trigger.Duplicate || dup.Trigger.EventID != first.Trigger.EventID {
			t.Fatalf("first %+v dup %+v", first, dup)
		}
		if len(first.Trigger.EventID) < 16 {
			t.Fatalf("event id %q is not a 64-bit id string", first.Trigger.EventID)
		}

		a.refused("UNKNOWN_EVENT_CODE", "", triggerMutation, in("trail_click", nil))
		a.refused("BAD_USER_INPUT", "code", triggerMutation, in("Bad Code", nil))
		a.refused("BAD_USER_INPUT", "properties", triggerMutation, in("view", map[string]any{"properties": map[string]any{"big": strings.Repeat("x", 9000)}}))
		a.refused("BAD_USER_INPUT", "occurredAt", triggerMutation, in("view", map[string]any{"occurredAt": "2999-01-01T00:00:00Z"}))
		a.refused("NOT_FOUND", "", triggerMutation, client.Var("in", map[string]any{"appId": "app_nope", "deviceId": "d", "code": "view"}))
		a.refused("UNAUTHENTICATED", "", triggerMutation, in("view", nil), client.AddHeader("Authorization", "Bearer sk_wrong"))
		var withSecret triggerOut
		a.ok(triggerMutation, &withSecret, in("click", nil), client.AddHeader("Authorization", "Bearer "+secret))

		a.ok(`mutation($id: ID!) { updateApp(id: $id, input: {allowedOrigins: ["https://blog.example"]}) { id } }`, &map[string]any{}, client.Var("id", appID))
		a.refused("FORBIDDEN", "", triggerMutation, in("view", nil), client.AddHeader("Origin", "https://evil.example"))
		a.ok(triggerMutation, &withSecret, in("view", nil), client.AddHeader("Origin", "https://blog.example"))

		var batch struct {
			TriggerBatch []struct {
				Accepted, Duplicate bool
				EventID             *string
				Error               *struct{ Code, Message, Field string }
			}
		}
		a.ok(`mutation($in: [TriggerInput!]!) { triggerBatch(inputs: $in) { accepted duplicate eventId error { code message field } } }`, &batch,
			client.Var("in", []map[string]any{
				{"appId": appID, "deviceId": "browser-2", "code": "submit"},
				{"appId": appID, "deviceId": "browser-2", "code": "nope"},
				{"appId": appID, "deviceId": "browser-2", "code": "view", "url": strings.Repeat("u", 3000)},
				{"appId": appID, "deviceId": "browser-2", "code": "view", "messageId": "m-1"},
			}))
		b := batch.TriggerBatch
		if len(b) != 4 || !b[0].Accepted || b[1].Error == nil || b[1].Error.Code != "UNKNOWN_EVENT_CODE" ||
			b[2].Error == nil || b[2].Error.Code != "BAD_USER_INPUT" || b[2].Error.Field != "url" || !b[3].Duplicate {
			t.Fatalf("batch %+v", b)
		}
		items := make([]map[string]any, 501)
		for i := range items {
			items[i] = map[string]any{"appId": appID, "deviceId": "d", "code": "view"}
		}
		a.refused("BAD_USER_INPUT", "inputs", `mutation($in: [TriggerInput!]!) { triggerBatch(inputs: $in) { accepted } }`, client.Var("in", items))

		var ident struct {
			Identify struct {
				Moved bool
				Lead  struct{ ID, Email string }
			}
		}
		a.ok(`mutation($a: ID!) { identify(input: {appId: $a, deviceId: "browser-1", email: "Reader@Example.com", name: "Reader", fields: {company: "Acme"}}) { moved lead { id email } } }`, &ident, client.Var("a", appID), server)
		a.refused("BAD_USER_INPUT", "email", `mutation($a: ID!) { identify(input: {appId: $a, deviceId: "browser-1", email: "nope"}) { moved } }`, client.Var("a", appID), server)
		a.refused("UNAUTHENTICATED", "", `mutation($a: ID!) { identify(input: {appId: $a, deviceId: "browser-1", email: "x@example.com"}) { moved } }`, client.Var("a", appID), anonymous())
		a.refused("FORBIDDEN", "", `mutation($a: ID!) { identify(input: {appId: $a, deviceId: "browser-1", email: "x@example.com"}) { moved } }`, client.Var("a", appID), anonymous(), client.AddHeader("Origin", "https://evil.example"))

		var lead struct {
			Lead struct {
				Email      string
				Fields     map[string]any
				EventCount int
				Devices    []struct{ ID string }
				Timeline   struct {
					Edges []struct {
						Cursor string
						Node   struct {
							Code, URL, Source string
							Definition        struct{ Name, Color, Description string }
							Properties        map[string]any
							OccurredAt        string
							Lead              *struct{ Email string }
						}
					}
					PageInfo struct {
						HasNextPage bool
						EndCursor   string
					}
				}
			}
		}
		a.ok(`query($id: ID!) { lead(id: $id) { email fields eventCount devices { id }
			timeline(first: 2) { edges { cursor node { code url source definition { name color description } properties occurredAt lead { email } } } pageInfo { hasNextPage endCursor } } } }`,
			&lead, client.Var("id", ident.Identify.Lead.ID))
		l := lead.Lead
		if l.Email != "Reader@Example.com" || l.Fields["company"] != "Acme" || l.EventCount != 3 || len(l.Devices) != 1 {
			t.Fatalf("lead %+v", l)
		}
		if len(l.Timeline.Edges) != 2 || !l.Timeline.PageInfo.HasNextPage || l.Timeline.Edges[0].Node.Lead == nil {
			t.Fatalf("timeline page %+v", l.Timeline)
		}
		var rest struct {
			Lead struct {
				Timeline struct {
					Edges []struct {
						Node struct {
							Code, URL, Source string
							Definition        struct{ Color string }
							Properties        map[string]any
							OccurredAt        string
						}
					}
					PageInfo struct{ HasNextPage bool }
				}
			}
		}
		a.ok(`query($id: ID!, $after: String) { lead(id: $id) { timeline(first: 10, after: $after) { edges { node { code url source definition { color } properties occurredAt } } pageInfo { hasNextPage } } } }`,
			&rest, client.Var("id", ident.Identify.Lead.ID), client.Var("after", l.Timeline.PageInfo.EndCursor))
		edges := rest.Lead.Timeline.Edges
		if len(edges) != 1 || rest.Lead.Timeline.PageInfo.HasNextPage {
			t.Fatalf("second page %+v", rest)
		}
		oldest := edges[len(edges)-1].Node
		if oldest.Code != "view" || oldest.URL != "https://blog.example/post" || oldest.Source != "block" ||
			oldest.Properties["section"] != "news" || oldest.OccurredAt != "2026-11-01T10:00:00.25Z" || oldest.Definition.Color != "#3B82F6" {
			t.Fatalf("oldest event %+v", oldest)
		}
		a.refused("BAD_USER_INPUT", "after", `query($id: ID!) { lead(id: $id) { timeline(after: "nope") { edges { cursor } } } }`, client.Var("id", ident.Identify.Lead.ID))

		var leads struct {
			Leads struct {
				Edges []struct {
					Node struct {
						Email       string
						EventCount  int
						FirstSeenAt string
					}
				}
			}
		}
		a.ok(`query($a: ID!) { leads(appId: $a, search: "reader") { edges { node { email eventCount firstSeenAt } } } }`, &leads, client.Var("a", appID))
		if len(leads.Leads.Edges) != 1 || leads.Leads.Edges[0].Node.EventCount != 3 || leads.Leads.Edges[0].Node.FirstSeenAt != "2026-11-01T10:00:00.25Z" {
			t.Fatalf("leads %+v", leads)
		}
		var dev struct {
			Device struct {
				ID       string
				Timeline struct {
					Edges []struct{ Node struct{ Code string } }
				}
			}
		}
		a.ok(`query($a: ID!) { device(appId: $a, deviceId: "browser-2") { id timeline { edges { node { code } } } } }`, &dev, client.Var("a", appID))
		if len(dev.Device.Timeline.Edges) != 1 || dev.Device.Timeline.Edges[0].Node.Code != "submit" {
			t.Fatalf("device %+v", dev)
		}
		var unknown struct {
			App struct {
				UnknownCodes []struct {
					Code  string
					Count int
				}
			}
		}
		a.ok(`query($a: ID!) { app(id: $a) { unknownCodes { code count } } }`, &unknown, client.Var("a", appID))
		if len(unknown.App.UnknownCodes) != 2 {
			t.Fatalf("unknown codes %+v", unknown)
		}

		var erased struct {
			EraseLead struct {
				Erased        bool
				DeletedEvents int
			}
		}
		a.ok(`mutation($a: ID!) { eraseLead(appId: $a, email: "reader@example.com") { erased deletedEvents } }`, &erased, client.Var("a", appID))
		if !erased.EraseLead.Erased || erased.EraseLead.DeletedEvents != 3 {
			t.Fatalf("erase %+v", erased)
		}
	})
}

// TestBadInputIsNeverInternal sends ill-typed input every way a client can
// and expects BAD_USER_INPUT naming the field, never a 500.
func TestBadInputIsNeverInternal(t *testing.T) {
	a := newAPI(t, modelstest.SQLite(t))
	appID, _ := a.createApp("Typed")
	item := func(extra map[string]any) map[string]any {
		m := map[string]any{"appId": appID, "deviceId": "d", "code": "view"}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}
	for _, tc := range []struct {
		name, field string
		in          map[string]any
	}{
		{"properties array", "properties", item(map[string]any{"properties": []any{}})},
		{"properties string", "properties", item(map[string]any{"properties": "x"})},
		{"occurredAt garbage", "occurredAt", item(map[string]any{"occurredAt": "yesterday"})},
		{"occurredAt number", "occurredAt", item(map[string]any{"occurredAt": 12})},
		{"unknown source", "in.source", item(map[string]any{"source": "email"})},
		{"deviceId null", "in.deviceId", item(map[string]any{"deviceId": nil})},
		{"missing code", "in.code", map[string]any{"appId": appID, "deviceId": "d"}},
	} {
		t.Log(tc.name)
		a.refused("BAD_USER_INPUT", tc.field, triggerMutation, client.Var("in", tc.in))
	}
	// In a batch, a trigger whose properties are not an object is refused alone.
	var batch struct {
		TriggerBatch []struct {
			Accepted bool
			Error    *struct{ Code, Field string }
		}
	}
	a.ok(`mutation($in: [TriggerInput!]!) { triggerBatch(inputs: $in) { accepted error { code field } } }`, &batch,
		client.Var("in", []map[string]any{item(map[string]any{"properties": []any{1}}), item(nil)}))
	b := batch.TriggerBatch
	if b[0].Accepted || b[0].Error == nil || b[0].Error.Code != "BAD_USER_INPUT" || b[0].Error.Field != "properties" || !b[1].Accepted {
		t.Fatalf("batch %+v", b)
	}
	a.refused("BAD_USER_INPUT", "", `{ apps { id `)
	a.refused("BAD_USER_INPUT", "", `{ nosuchfield }`)
	a.refused("BAD_USER_INPUT", "f", `query($f: Int) { leads(appId: "x", first: $f) { edges { cursor } } }`, client.Var("f", "many"))
}

// An id that is not one names the argument it came in, so a client can
// tell which of an operation's ids was wrong.
func TestMalformedIDsNameTheirArgument(t *testing.T) {
	a := newAPI(t, modelstest.SQLite(t))
	appID, _ := a.createApp("Ids")
	const day = `{from: "2026-12-01T00:00:00Z", to: "2026-12-02T00:00:00Z"}`
	for _, tc := range []struct{ field, query string }{
		{"goalId", `query($a: ID!, $i: ID!) { goalReport(appId: $a, goalId: $i, range: ` + day + `) { started } }`},
		{"actionId", `mutation($a: ID!, $i: ID!) { sendTestDelivery(appId: $a, actionId: $i) { __typename } }`},
		{"ruleId", `mutation($a: ID!, $i: ID!) { addAutomationAction(appId: $a, ruleId: $i, input: {kind: webhook, url: "https://example.com/h"}) { __typename } }`},
		{"id", `mutation($a: ID!, $i: ID!) { updateGoal(appId: $a, id: $i, input: {name: "x"}) { id } }`},
		{"id", `mutation($a: ID!, $i: ID!) { rotateActionSecret(appId: $a, id: $i) { __typename } }`},
	} {
		for _, id := range []string{"abc", "-1", "18446744073709551616"} {
			a.refused("BAD_USER_INPUT", tc.field, tc.query, client.Var("a", appID), client.Var("i", id))
		}
		a.refused("NOT_FOUND", "", tc.query, client.Var("a", appID), client.Var("i", "999999"))
	}
}

// A page size over the largest page is refused naming first, not as an
// operation too complex, which would not say what to change.
func TestPageSizeOverTheLimitNamesFirst(t *testing.T) {
	a := newAPI(t, modelstest.SQLite(t))
	appID, _ := a.createApp("Pages")
	const day = `{from: "2026-12-01T00:00:00Z", to: "2026-12-02T00:00:00Z"}`
	for _, q := range []string{
		`query($a: ID!, $f: Int) { events(appId: $a, first: $f) { edges { node { id code url } } } }`,
		`query($a: ID!, $f: Int) { leads(appId: $a, first: $f) { edges { node { id email } } } }`,
		`query($a: ID!, $f: Int) { app(id: $a) { unknownCodes(first: $f) { code count } } }`,
		`query($a: ID!, $f: Int) { breakdown(appId: $a, range: ` + day + `, by: pages, first: $f) { value count } }`,
	} {
		for _, f := range []int{1000, 1<<31 - 1} {
			a.refused("BAD_USER_INPUT", "first", q, client.Var("a", appID), client.Var("f", f))
		}
	}
}

// Names with control characters are refused, as ingest token names were:
// goals and rules reference matchers by name, where "base\x00" passed for
// "base", and lists showed them alike.
func TestNamesWithControlCharactersAreRefused(t *testing.T) {
	a := newAPI(t, modelstest.SQLite(t))
	appID, _ := a.createApp("Names")
	a.ok(`mutation($a: ID!) { createEventMatcher(appId: $a, input: {name: "base", code: "view"}) { id } }`, &map[string]any{}, client.Var("a", appID))
	for _, name := range []string{"base\x00", "two\nlines", "bell\a"} {
		for _, q := range []string{
			`mutation($n: String!) { createApp(input: {name: $n}) { secretKey } }`,
			`mutation($a: ID!, $n: String!) { createEventDefinition(input: {appId: $a, code: "named", name: $n}) { id } }`,
			`mutation($a: ID!, $n: String!) { createEventMatcher(appId: $a, input: {name: $n, code: "view"}) { id } }`,
			`mutation($a: ID!, $n: String!) { createGoal(appId: $a, input: {name: $n, startMatcher: "base", completionMatcher: "base"}) { id } }`,
			`mutation($a: ID!, $n: String!) { createAutomationRule(appId: $a, input: {name: $n, matcher: "base", actions: [{kind: webhook, url: "https://93.184.216.34/h"}]}) { __typename } }`,
			`mutation($a: ID!, $n: String!) { updateApp(id: $a, input: {name: $n}) { id } }`,
		} {
			vars := []client.Option{client.Var("n", name)}
			if strings.Contains(q, "$a") {
				vars = append(vars, client.Var("a", appID))
			}
			a.refused("BAD_USER_INPUT", "name", q, vars...)
		}
	}
}
