package main

import (
	"fmt"
	"testing"
	"time"

	"github.com/99designs/gqlgen/client"
	"github.com/crumbs-dev/crumbs/models/modelstest"
	"gorm.io/gorm"
)

func TestGraphQLInsights(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *gorm.DB) {
		a := newAPI(t, db)
		appID, secret := a.createApp("Insights")
		a.ok(`mutation($a: ID!) { updateApp(id: $a, input: {timezone: "Europe/Amsterdam"}) { id } }`, &map[string]any{}, client.Var("a", appID))
		for _, c := range []string{"trial_click", "signup"} {
			a.ok(`mutation($a: ID!, $c: String!) { createEventDefinition(input: {appId: $a, code: $c, name: $c}) { id } }`, &map[string]any{}, client.Var("a", appID), client.Var("c", c))
		}
		// Two visitors: d1 views pricing, clicks trial and signs up an hour later; d2 only views.
		base := time.Date(2026, 10, 24, 22, 30, 0, 0, time.UTC) // 00:30 in Amsterdam on the 25th, the DST day
		send := func(device, code, url string, after time.Duration, props map[string]any) {
			var out triggerOut
			a.ok(triggerMutation, &out, client.Var("in", map[string]any{"appId": appID, "deviceId": device, "code": code, "url": url,
				"referrer": "https://www.google.com/x", "properties": props, "occurredAt": base.Add(after).Format(time.RFC3339)}),
				as(secret)) // backdated events come from servers
		}
		send("d1", "view", "https://s.example/pricing?utm=a", 0, map[string]any{"plan": "pro"})
		send("d1", "trial_click", "https://s.example/pricing", time.Minute, map[string]any{"plan": "pro"})
		send("d1", "signup", "https://s.example/signup", time.Hour+time.Minute, nil)
		send("d2", "view", "https://s.example/pricing", 2*time.Hour, nil)
		send("d2", "trial_click", "https://s.example/", 50*time.Hour, nil) // the next local day but one

		rng := map[string]any{"from": "2026-10-25T00:00:00+02:00", "to": "2026-10-26T00:00:00+01:00", "interval": "hour"}
		var ov struct {
			Overview struct {
				From, To, Timezone string
				TotalEvents        int
				UniqueDevices      int
				UniqueDevicesExact bool
				Series             []struct {
					Start string
					Count int
				}
				Definitions []struct {
					Definition           struct{ Code string }
					Count, UniqueDevices int
					Series               []struct{ Count int }
				}
			}
		}
		a.ok(`query($a: ID!, $r: RangeInput!) { overview(appId: $a, range: $r) { from to timezone totalEvents uniqueDevices uniqueDevicesExact
			series { start count } definitions { definition { code } count uniqueDevices series { count } } } }`, &ov, client.Var("a", appID), client.Var("r", rng))
		o := ov.Overview
		if o.Timezone != "Europe/Amsterdam" || len(o.Series) != 25 || o.TotalEvents != 4 || o.UniqueDevices != 2 || o.UniqueDevicesExact ||
			o.From != "2026-10-24T22:00:00Z" || o.To != "2026-10-25T23:00:00Z" || o.Series[0].Count != 2 {
			t.Fatalf("overview %+v", o)
		}
		for _, d := range o.Definitions {
			if d.Definition.Code == "trial_click" && (d.Count != 1 || d.UniqueDevices != 1 || len(d.Series) != 25) {
				t.Fatalf("trial_click %+v", d)
			}
		}

		var bd struct {
			Breakdown []struct {
				Value      string
				Count      int
				Engagement []struct {
					Definition struct{ Code string }
					Count      int
				}
			}
		}
		a.ok(`query($a: ID!, $r: RangeInput!) { breakdown(appId: $a, range: $r, by: pages) { value count engagement { definition { code } count } } }`, &bd, client.Var("a", appID), client.Var("r", rng))
		if len(bd.Breakdown) != 2 || bd.Breakdown[0].Value != "/pricing" || bd.Breakdown[0].Count != 3 || len(bd.Breakdown[0].Engagement) != 2 ||
			bd.Breakdown[0].Engagement[0].Definition.Code != "view" || bd.Breakdown[0].Engagement[0].Count != 2 {
			t.Fatalf("pages %+v", bd)
		}
		a.ok(`query($a: ID!, $r: RangeInput!) { breakdown(appId: $a, range: $r, by: referrers) { value count engagement { count } } }`, &bd, client.Var("a", appID), client.Var("r", rng))
		if len(bd.Breakdown) != 1 || bd.Breakdown[0].Value != "google.com" || bd.Breakdown[0].Count != 4 {
			t.Fatalf("referrers %+v", bd)
		}

		var fn struct {
			Funnel struct {
				Steps []struct {
					Code                      string
					Entered, Converted        int
					ConversionRate            float64
					MedianSecondsFromPrevious *float64
				}
			}
		}
		funnel := map[string]any{"appId": appID, "range": rng, "windowSeconds": 7200, "steps": []map[string]any{
			{"code": "view", "rules": []map[string]any{{"field": "url", "operator": "contains", "value": "pricing"}}},
			{"code": "trial_click", "rules": []map[string]any{{"field": "properties.plan", "operator": "equals", "value": "pro"}}},
			{"code": "signup"},
		}}
		a.ok(`query($in: FunnelInput!) { funnel(input: $in) { steps { code entered converted conversionRate medianSecondsFromPrevious } } }`, &fn, client.Var("in", funnel))
		s := fn.Funnel.Steps
		if len(s) != 3 || s[0].Entered != 2 || s[0].Converted != 1 || s[0].ConversionRate != 0.5 || s[2].Entered != 1 || *s[2].MedianSecondsFromPrevious != 3600 {
			t.Fatalf("funnel %+v", s)
		}
		funnel["steps"] = []map[string]any{{"code": "view"}}
		a.refused("BAD_USER_INPUT", "steps", `query($in: FunnelInput!) { funnel(input: $in) { from } }`, client.Var("in", funnel))

		var m struct{ CreateEventMatcher struct{ ID, Name string } }
		a.ok(`mutation($a: ID!) { createEventMatcher(appId: $a, input: {name: "Pricing view", code: "view", rules: [{field: "url", operator: ends_with, value: "/pricing"}]}) { id name } }`, &m, client.Var("a", appID))
		a.ok(`mutation($a: ID!) { createEventMatcher(appId: $a, input: {name: "Signup", code: "signup"}) { id name } }`, &map[string]any{}, client.Var("a", appID))
		a.refused("BAD_USER_INPUT", "rules.0.field", `mutation($a: ID!) { createEventMatcher(appId: $a, input: {name: "X", code: "view", rules: [{field: "nope", operator: equals}]}) { id } }`, client.Var("a", appID))
		var g struct {
			CreateGoal struct {
				ID           string
				StartMatcher struct {
					Name  string
					Rules []struct{ Field, Operator, Value string }
				}
			}
		}
		a.ok(`mutation($a: ID!) { createGoal(appId: $a, input: {name: "Trial", startMatcher: "Pricing view", completionMatcher: "Signup", windowSeconds: 86400}) {
			id startMatcher { name rules { field operator value } } } }`, &g, client.Var("a", appID))
		if g.CreateGoal.StartMatcher.Name != "Pricing view" || g.CreateGoal.StartMatcher.Rules[0].Operator != "ends_with" {
			t.Fatalf("goal %+v", g)
		}
		var gr struct {
			GoalReport struct {
				Started, Completed      int
				ConversionRate          float64
				MedianSecondsToComplete *float64
			}
		}
		a.ok(`query($a: ID!, $g: ID!, $r: RangeInput!) { goalReport(appId: $a, goalId: $g, range: $r) { started completed conversionRate medianSecondsToComplete } }`,
			&gr, client.Var("a", appID), client.Var("g", g.CreateGoal.ID), client.Var("r", rng))
		// d1's view is on /pricing?utm=a, which does not end with /pricing: only d2 started.
		if gr.GoalReport.Started != 1 || gr.GoalReport.Completed != 0 || gr.GoalReport.MedianSecondsToComplete != nil {
			t.Fatalf("goal report %+v", gr)
		}
		a.refused("CONFLICT", "", `mutation($a: ID!, $id: ID!) { deleteEventMatcher(appId: $a, id: $id) { id } }`, client.Var("a", appID), client.Var("id", m.CreateEventMatcher.ID))
		// A name already taken is a conflict about the name, which a form marks.
		a.refused("CONFLICT", "name", `mutation($a: ID!) { createGoal(appId: $a, input: {name: "Trial", startMatcher: "Pricing view", completionMatcher: "Signup", windowSeconds: 86400}) { id } }`, client.Var("a", appID))
		a.refused("CONFLICT", "name", `mutation($a: ID!) { createEventMatcher(appId: $a, input: {name: "Signup", code: "signup"}) { id } }`, client.Var("a", appID))
		a.ok(`mutation($a: ID!, $id: ID!) { deleteGoal(appId: $a, id: $id) { id } }`, &map[string]any{}, client.Var("a", appID), client.Var("id", g.CreateGoal.ID))
		a.ok(`mutation($a: ID!, $id: ID!) { deleteEventMatcher(appId: $a, id: $id) { id } }`, &map[string]any{}, client.Var("a", appID), client.Var("id", m.CreateEventMatcher.ID))

		var ev struct {
			Events struct {
				Edges []struct {
					Node struct {
						Code   string
						Device struct{ ID string }
						Lead   *struct{ Email string }
					}
				}
				PageInfo struct{ HasNextPage bool }
			}
		}
		a.ok(`mutation($a: ID!) { identify(input: {appId: $a, deviceId: "d1", email: "ann@example.com"}) { moved } }`, &map[string]any{}, client.Var("a", appID), as(secret))
		a.ok(`query($a: ID!) { events(appId: $a, first: 2, match: any, rules: [{field: "lead.email", operator: equals, value: "ann@example.com"}, {field: "code", operator: equals, value: "signup"}]) {
			edges { node { code device { id } lead { email } } } pageInfo { hasNextPage } } }`, &ev, client.Var("a", appID))
		if len(ev.Events.Edges) != 2 || ev.Events.Edges[0].Node.Code != "signup" || ev.Events.Edges[0].Node.Lead.Email != "ann@example.com" || !ev.Events.PageInfo.HasNextPage {
			t.Fatalf("events %+v", ev)
		}
		a.refused("BAD_USER_INPUT", "rules.0.field", `query($a: ID!) { events(appId: $a, rules: [{field: "e.id; DROP TABLE events", operator: equals, value: "x"}]) { pageInfo { hasNextPage } } }`, client.Var("a", appID))
		a.refused("NOT_FOUND", "", `query { overview(appId: "app_missing", range: {from: "2026-01-01T00:00:00Z", to: "2026-01-02T00:00:00Z"}) { totalEvents } }`)
		a.refused("BAD_USER_INPUT", "interval", `query($a: ID!) { overview(appId: $a, range: {from: "2025-01-01T00:00:00Z", to: "2026-01-02T00:00:00Z", interval: hour}) { totalEvents } }`, client.Var("a", appID))

		// The unknown-code inbox suggests the closest defined code.
		a.refused("UNKNOWN_EVENT_CODE", "", triggerMutation, client.Var("in", map[string]any{"appId": appID, "deviceId": "d1", "code": "trail_click"}))
		a.refused("UNKNOWN_EVENT_CODE", "", triggerMutation, client.Var("in", map[string]any{"appId": appID, "deviceId": "d1", "code": "zzzzzz"}))
		var uc struct {
			App struct {
				UnknownCodes []struct {
					Code       string
					Suggestion *string
				}
			}
		}
		a.ok(`query($a: ID!) { app(id: $a) { unknownCodes { code suggestion } } }`, &uc, client.Var("a", appID))
		got := map[string]string{}
		for _, c := range uc.App.UnknownCodes {
			got[c.Code] = fmt.Sprint(deref(c.Suggestion))
		}
		if got["trail_click"] != "trial_click" || got["zzzzzz"] != "<nil>" {
			t.Fatalf("unknown codes %v", got)
		}
	})
}

func deref[T any](p *T) any {
	if p == nil {
		return nil
	}
	return *p
}

func TestGraphQLLiveEvents(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *gorm.DB) {
		a := newAPI(t, db)
		appID, secret := a.createApp("Live")
		// Browsers cannot set headers on websockets: the token rides in connection_init.
		sub := a.gql.WebsocketWithPayload(`subscription($a: ID!) { eventStored(appId: $a) { code url device { id } lead { email } } }`,
			map[string]any{"Authorization": "Bearer " + a.ownerToken}, client.Var("a", appID))
		defer sub.Close()
		// The event is stored by another replica: its own handler, catalog and writer.
		other := newAPI(t, db)
		go func() {
			time.Sleep(300 * time.Millisecond)
			var out triggerOut
			other.ok(triggerMutation, &out, client.Var("in", map[string]any{"appId": appID, "deviceId": "live-1", "code": "click", "url": "https://s.example/live"}))
		}()
		var msg struct {
			EventStored struct {
				Code, URL string
				Device    struct{ ID string }
				Lead      *struct{ Email string }
			}
		}
		if err := sub.Next(&msg); err != nil {
			t.Fatal(err)
		}
		if msg.EventStored.Code != "click" || msg.EventStored.URL != "https://s.example/live" || msg.EventStored.Device.ID != "live-1" || msg.EventStored.Lead != nil {
			t.Fatalf("live event %+v", msg)
		}
		// Identified after its first event: the next event shows the lead,
		// so nested fields are not served from a cache as old as the stream.
		other.ok(`mutation($a: ID!) { identify(input: {appId: $a, deviceId: "live-1", email: "live@example.com"}) { moved } }`, &map[string]any{}, client.Var("a", appID), as(secret))
		go func() {
			var out triggerOut
			other.ok(triggerMutation, &out, client.Var("in", map[string]any{"appId": appID, "deviceId": "live-1", "code": "view", "url": "https://s.example/2"}))
		}()
		if err := sub.Next(&msg); err != nil {
			t.Fatal(err)
		}
		if msg.EventStored.Code != "view" || msg.EventStored.Lead == nil || msg.EventStored.Lead.Email != "live@example.com" {
			t.Fatalf("second live event %+v", msg)
		}
		bad := a.gql.WebsocketWithPayload(`subscription { eventStored(appId: "app_missing") { code } }`, map[string]any{"Authorization": "Bearer " + a.ownerToken})

		defer bad.Close()
		if err := bad.Next(&msg); err == nil {
			t.Fatal("subscribing to an unknown app succeeded")
		}
		for name, payload := range map[string]map[string]any{
			"anonymous":               nil,
			"a member of another app": {"Authorization": "Bearer " + a.signUp()},
		} {
			s := a.gql.WebsocketWithPayload(`subscription($a: ID!) { eventStored(appId: $a) { code } }`, payload, client.Var("a", appID))
			if err := s.Next(&msg); err == nil {
				t.Fatalf("%s subscribed to the app's live events", name)
			}
			s.Close()
		}
	})
}

// The compact series (bucketStarts, seriesCounts) say what series says.
func TestGraphQLOverviewCompactSeries(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *gorm.DB) {
		a := newAPI(t, db)
		appID, secret := a.createApp("Compact")
		base := time.Date(2026, 10, 24, 22, 30, 0, 0, time.UTC)
		for i, after := range []time.Duration{0, time.Minute, 3 * time.Hour, 20 * time.Hour} {
			var out triggerOut
			a.ok(triggerMutation, &out, client.Var("in", map[string]any{"appId": appID, "deviceId": fmt.Sprintf("d%d", i), "code": []string{"view", "click"}[i%2],
				"occurredAt": base.Add(after).Format(time.RFC3339)}), as(secret))
		}
		rng := map[string]any{"from": "2026-10-24T22:00:00Z", "to": "2026-10-25T22:00:00Z", "interval": "hour", "timezone": "UTC"}
		type point struct {
			Start string
			Count int
		}
		var ov struct {
			Overview struct {
				Series       []point
				BucketStarts []string
				SeriesCounts []int
				Definitions  []struct {
					Series       []point
					SeriesCounts []int
				}
			}
		}
		a.ok(`query($a: ID!, $r: RangeInput!) { overview(appId: $a, range: $r) { series { start count } bucketStarts seriesCounts
			definitions { series { start count } seriesCounts } } }`, &ov, client.Var("a", appID), client.Var("r", rng))
		o := ov.Overview
		if len(o.Series) != 24 || len(o.BucketStarts) != 24 || len(o.SeriesCounts) != 24 || len(o.Definitions) == 0 {
			t.Fatalf("overview %+v", o)
		}
		for i, p := range o.Series {
			if o.BucketStarts[i] != p.Start || o.SeriesCounts[i] != p.Count {
				t.Fatalf("bucket %d: series %+v, compact %s %d", i, p, o.BucketStarts[i], o.SeriesCounts[i])
			}
		}
		for _, d := range o.Definitions {
			for i, p := range d.Series {
				if d.SeriesCounts[i] != p.Count {
					t.Fatalf("definition bucket %d: series %+v, compact %d", i, p, d.SeriesCounts[i])
				}
			}
		}
	})
}

// A range reaching past the year 9999 once widened to whole buckets (MySQL's
// driver takes no such time; SQLite answered an Overview.to of
// "10000-01-01T23:00:00Z", no RFC 3339 time), or starting before the year
// 1000, is refused naming the end that is out, not answered INTERNAL or with
// "to: must be after from".
func TestInsightRangesStayInTheStoresYears(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *gorm.DB) {
		a := newAPI(t, db)
		appID, _ := a.createApp("Years")
		a.ok(`mutation($a: ID!) { updateApp(id: $a, input: {timezone: "Europe/Amsterdam"}) { id } }`, &map[string]any{}, client.Var("a", appID))
		queries := []string{
			`query($a: ID!, $r: RangeInput!) { overview(appId: $a, range: $r) { to } }`,
			`query($a: ID!, $r: RangeInput!) { breakdown(appId: $a, range: $r, by: pages) { value } }`,
			`query($a: ID!, $r: RangeInput!) { funnel(input: {appId: $a, range: $r, steps: [{code: "view"}, {code: "click"}], windowSeconds: 60}) { to } }`,
		}
		for _, tc := range []struct {
			field string
			rng   map[string]any
		}{
			{"to", map[string]any{"from": "9999-12-30T00:00:00Z", "to": "9999-12-31T23:59:59Z"}},
			{"to", map[string]any{"from": "9999-11-30T00:00:00Z", "to": "9999-12-01T00:00:01Z", "interval": "month", "timezone": "UTC"}},
			{"from", map[string]any{"from": "0001-01-01T00:00:00Z", "to": "0001-01-02T00:00:00Z"}},
			{"from", map[string]any{"from": "1000-01-01T00:00:00Z", "to": "1000-01-02T00:00:00Z", "timezone": "America/New_York"}},
		} {
			for _, q := range queries {
				a.refused("BAD_USER_INPUT", tc.field, q, client.Var("a", appID), client.Var("r", tc.rng))
			}
		}
		// The last whole day the stores hold is answered.
		var ov struct{ Overview struct{ To string } }
		a.ok(queries[0], &ov, client.Var("a", appID), client.Var("r", map[string]any{"from": "9999-12-30T00:00:00Z", "to": "9999-12-31T00:00:00Z", "timezone": "UTC"}))
		if ov.Overview.To != "9999-12-31T00:00:00Z" {
			t.Fatalf("overview to %q", ov.Overview.To)
		}
	})
}

// A window out of bounds names windowSeconds, the argument both inputs
// have (it said "window", which neither has).
func TestWindowRefusalsNameWindowSeconds(t *testing.T) {
	a := newAPI(t, modelstest.SQLite(t))
	appID, _ := a.createApp("Windows")
	a.ok(`mutation($a: ID!) { createEventMatcher(appId: $a, input: {name: "v", code: "view"}) { id } }`, &map[string]any{}, client.Var("a", appID))
	for _, w := range []int{0, 90*24*3600 + 1} {
		a.refused("BAD_USER_INPUT", "windowSeconds", `mutation($a: ID!, $w: Int) { createGoal(appId: $a, input: {name: "g", startMatcher: "v", completionMatcher: "v", windowSeconds: $w}) { id } }`,
			client.Var("a", appID), client.Var("w", w))
		a.refused("BAD_USER_INPUT", "windowSeconds", `query($a: ID!, $w: Int!) { funnel(input: {appId: $a, range: {from: "2026-12-01T00:00:00Z", to: "2026-12-02T00:00:00Z"}, steps: [{code: "view"}, {code: "view"}], windowSeconds: $w}) { from } }`,
			client.Var("a", appID), client.Var("w", w))
	}
}
