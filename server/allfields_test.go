package main

import (
	"slices"
	"strings"
	"testing"

	"github.com/99designs/gqlgen/client"
	"github.com/crumbs-dev/crumbs/models/modelstest"
	"gorm.io/gorm"
)

// TestRefusalNamesEveryBadField sends forms of the dashboard with several
// bad fields at once: the answer is one BAD_USER_INPUT error per bad field,
// each naming its own, in the order they are checked, so errors[0] is the
// one a single-error answer named. Lookups in the store (a matcher's name)
// come only after the input is good, and are refused as before.
func TestRefusalNamesEveryBadField(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *gorm.DB) {
		a := newAPI(t, db)
		appID, _ := a.createApp("Shop")
		var def struct{ CreateEventDefinition struct{ ID string } }
		a.ok(`mutation($a: ID!) { createEventDefinition(input: {appId: $a, code: "signup", name: "Signup"}) { id } }`, &def, client.Var("a", appID))
		long := strings.Repeat("n", 201)

		for _, tc := range []struct {
			name, query string
			vars        []client.Option
			fields      []string
		}{
			{"createEventDefinition",
				`mutation($a: ID!, $n: String!) { createEventDefinition(input: {appId: $a, code: "Bad Code", name: $n, color: "green"}) { id } }`,
				[]client.Option{client.Var("a", appID), client.Var("n", long)}, []string{"code", "name", "color"}},
			{"updateEventDefinition",
				`mutation($id: ID!, $d: String!) { updateEventDefinition(id: $id, input: {color: "green", description: $d}) { id } }`,
				[]client.Option{client.Var("id", def.CreateEventDefinition.ID), client.Var("d", strings.Repeat("d", 2001))}, []string{"color", "description"}},
			{"createApp",
				`mutation { createApp(input: {name: "", timezone: "Nowhere/City", allowedOrigins: ["ftp://x"]}) { secretKey } }`,
				nil, []string{"name", "allowedOrigins", "timezone"}},
			{"updateApp",
				`mutation($a: ID!) { updateApp(id: $a, input: {name: " ", timezone: "Local", retentionDays: -1}) { id } }`,
				[]client.Option{client.Var("a", appID)}, []string{"name", "timezone", "retentionDays"}},
			{"createEventMatcher",
				`mutation($a: ID!) { createEventMatcher(appId: $a, input: {name: "", code: "Bad Code", rules: [{field: "nope", operator: equals}]}) { id } }`,
				[]client.Option{client.Var("a", appID)}, []string{"name", "code", "rules.0.field"}},
			{"createGoal (matchers not looked up)",
				`mutation($a: ID!) { createGoal(appId: $a, input: {name: "", startMatcher: "missing", completionMatcher: "missing", windowSeconds: 0}) { id } }`,
				[]client.Option{client.Var("a", appID)}, []string{"name", "windowSeconds"}},
			{"createGoal (lookup refused as before)",
				`mutation($a: ID!) { createGoal(appId: $a, input: {name: "G", startMatcher: "missing", completionMatcher: "missing", windowSeconds: 60}) { id } }`,
				[]client.Option{client.Var("a", appID)}, []string{"startMatcher"}},
			{"createAutomationRule",
				`mutation($a: ID!, $t: String!) { createAutomationRule(appId: $a, input: {name: "", matcher: "missing", actions: [{kind: webhook, url: "ftp://x", template: $t}, {kind: slack, url: "https://93.184.216.34/x", headers: [{name: "X-Key", value: "v"}]}]}) { rule { id } } }`,
				[]client.Option{client.Var("a", appID), client.Var("t", strings.Repeat("t", 2001))}, []string{"name", "actions.0.url", "actions.0.template", "actions.1.headers"}},
			{"createAutomationRule (no actions: first as before)",
				`mutation($a: ID!) { createAutomationRule(appId: $a, input: {name: "", matcher: "missing", actions: []}) { rule { id } } }`,
				[]client.Option{client.Var("a", appID)}, []string{"actions", "name"}},
			{"createEventMatcher (every bad rule)",
				`mutation($a: ID!) { createEventMatcher(appId: $a, input: {name: "M2", code: "signup", rules: [{field: "nope", operator: equals}, {field: "code", operator: equals, value: "ok"}, {field: "url", operator: greater_than, value: "x"}, {field: "lead.email", operator: equals, value: "a@b.c"}]}) { id } }`,
				[]client.Option{client.Var("a", appID)}, []string{"rules.0.field", "rules.2.value", "rules.3.field"}},
			{"funnel (every bad step)",
				`query($a: ID!) { funnel(input: {appId: $a, range: {from: "2026-11-01T00:00:00Z", to: "2026-11-02T00:00:00Z"}, windowSeconds: 60, steps: [{code: "nope"}, {code: "signup"}, {code: "signup", rules: [{field: "lead.email", operator: equals, value: "x"}, {field: "title", operator: less_than, value: "y"}]}]}) { to } }`,
				[]client.Option{client.Var("a", appID)}, []string{"steps.0.code", "steps.2.rules.0.field", "steps.2.rules.1.value"}},
			{"createAutomationRule (every bad header)",
				`mutation($a: ID!) { createAutomationRule(appId: $a, input: {name: "R", matcher: "missing", actions: [{kind: webhook, url: "https://93.184.216.34/x", headers: [{name: "Host", value: "v"}, {name: "X-A", value: "a\nb"}, {name: "x-a", value: "c"}, {name: "X-B", value: "ok"}]}]}) { rule { id } } }`,
				[]client.Option{client.Var("a", appID)}, []string{"actions.0.headers.0.name", "actions.0.headers.1.value", "actions.0.headers.2.name"}},
			{"addMember (role is an enum: one field)",
				`mutation($a: ID!) { addMember(appId: $a, email: "nope", role: viewer) { invitationToken } }`,
				[]client.Option{client.Var("a", appID)}, []string{"email"}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				data, errs := a.do(tc.query, tc.vars...)
				var fields []string
				for _, e := range errs {
					if e.Extensions.Code != "BAD_USER_INPUT" || !strings.HasPrefix(e.Message, e.Extensions.Field+": ") || len(e.Path) != 1 {
						t.Errorf("error %+v", e)
					}
					fields = append(fields, e.Extensions.Field)
				}
				if !slices.Equal(fields, tc.fields) || len(data) != 0 && data[strings.Fields(tc.name)[0]] != nil {
					t.Fatalf("fields %q, want %q (data %v)", fields, tc.fields, data)
				}
			})
		}

		// The allowed origins are one field (a list in one text box): its
		// message names every bad origin.
		e := a.refused("BAD_USER_INPUT", "allowedOrigins",
			`mutation { createApp(input: {name: "Origins", allowedOrigins: ["https://ok.example", "ftp://x", "https://*.shop.example", "https://a.example:99999"]}) { secretKey } }`)
		for _, bad := range []string{`"ftp://x"`, `"https://*.shop.example"`, `"https://a.example:99999"`} {
			if !strings.Contains(e.Message, bad) {
				t.Errorf("the message does not name %s: %s", bad, e.Message)
			}
		}
	})
}
