package main

import (
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/99designs/gqlgen/client"
	"github.com/crumbs-dev/crumbs/models/modelstest"
	"gorm.io/gorm"
)

// Every time a caller sends is read one way, as RFC 3339 defines it, in the
// years the stores hold: "T" and "Z" in lower case are taken (RFC 3339's
// section 5.6; Go's time.RFC3339 refused them), an offset of +24:00 or more
// is refused (time.Parse took it), and so is a time outside the years 1000
// to 9999 in UTC, which MySQL's driver cannot send (events(from:
// "9999-12-31T23:00:00-05:00") answered INTERNAL on MariaDB). That holds
// for every Time argument, the JSON API's occurred_at and the export's
// from and to. testRule and replayRule refuse an empty range on "to" as the
// other ranges do, replayRule before it looks at the rule's actions.
func TestTimesAreReadAsRFC3339InTheStoresYears(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *gorm.DB) {
		j := newJSONAPI(t, db, func(c *config) { c.Webhooks.Guard.AllowPrivate = true })
		a := j.a
		appID, secret := a.createApp("Times")
		a.ok(`mutation($a: ID!) { createEventMatcher(appId: $a, input: {name: "M", code: "signup"}) { id } }`, &map[string]any{}, client.Var("a", appID))
		var rule struct {
			CreateAutomationRule struct{ Rule struct{ ID string } }
		}
		a.ok(`mutation($a: ID!) { createAutomationRule(appId: $a, input: {name: "R", matcher: "M", enabled: false, actions: [{kind: webhook, url: "http://127.0.0.1:9/h"}]}) { rule { id } } }`,
			&rule, client.Var("a", appID))
		args := []struct{ field, query string }{
			{"from", `query($a: ID!, $t: Time!) { events(appId: $a, from: $t) { edges { node { id } } } }`},
			{"to", `query($a: ID!, $t: Time!) { events(appId: $a, to: $t) { edges { node { id } } } }`},
			{"before", `mutation($a: ID!, $t: Time!) { eraseBefore(appId: $a, before: $t) { __typename } }`},
			{"from", `query($a: ID!, $t: Time!) { testRule(appId: $a, input: {matcher: "M"}, range: {from: $t, to: "2030-01-01T00:00:00Z"}) { matched } }`},
			{"from", `mutation($a: ID!, $r: ID!, $t: Time!) { replayRule(appId: $a, ruleId: $r, range: {from: $t, to: "2030-01-01T00:00:00Z"}) { events } }`},
			{"from", `query($a: ID!, $t: Time!) { overview(appId: $a, range: {from: $t, to: "2028-01-01T00:00:00Z", interval: month}) { to } }`},
		}
		vars := func(at string) []client.Option {
			return []client.Option{client.Var("a", appID), client.Var("r", rule.CreateAutomationRule.Rule.ID), client.Var("t", at)}
		}
		for _, at := range []string{"2026-11-23t10:00:00z", "2026-11-23t10:00:00.5+01:00", "2026-11-23T10:00:00.123456789Z"} {
			for _, arg := range args {
				if _, errs := a.do(arg.query, vars(at)...); len(errs) != 0 {
					t.Errorf("%s %s: %+v", at, arg.query, errs)
				}
			}
		}
		for _, at := range []string{"2026-11-23T10:00:00+24:00", "2026-11-23T10:00:00-30:00", "0999-12-31T23:59:59Z", "0001-01-01T00:00:00Z",
			"9999-12-31T23:00:00-05:00", "1000-01-01T00:30:00+01:00", "2026-11-23 10:00:00Z", "2026-11-23T10:00:00", "", "2026-11-23T10:00:00Z" + strings.Repeat("0", 100)} {
			for _, arg := range args {
				a.refused("BAD_USER_INPUT", arg.field, arg.query, vars(at)...)
			}
		}

		// An empty range: "to" is named, whatever the rule holds.
		for _, q := range []string{
			`query($a: ID!) { testRule(appId: $a, input: {matcher: "M"}, range: {from: "2030-01-01T00:00:00Z", to: "2030-01-01T00:00:00Z"}) { matched } }`,
			`mutation($a: ID!, $r: ID!) { replayRule(appId: $a, ruleId: $r, range: {from: "2030-01-02T00:00:00Z", to: "2030-01-01T00:00:00Z"}) { events } }`,
		} {
			a.refused("BAD_USER_INPUT", "to", q, vars("")...)
		}

		// The JSON API's occurred_at.
		key := []string{"Authorization", "Bearer " + secret}
		if r := j.post(appID, `{"device_id":"d-1","code":"view","occurred_at":"2026-01-02t03:04:05z"}`, key...); r.status != 200 || !r.item.Accepted {
			t.Fatalf("lower-case t and z: %d %s", r.status, r.raw)
		}
		for _, at := range []string{"2026-01-02T03:04:05+24:00", "9999-12-31T23:00:00-05:00"} {
			r := j.post(appID, `{"device_id":"d-1","code":"view","occurred_at":"`+at+`"}`, key...)
			if r.item.Error == nil || r.item.Error.Code != "BAD_USER_INPUT" || r.item.Error.Field == nil || *r.item.Error.Field != "occurred_at" {
				t.Fatalf("occurred_at %s: %d %s", at, r.status, r.raw)
			}
		}

		// The export's from and to.
		export := func(query url.Values) (int, string) {
			req, _ := http.NewRequest(http.MethodGet, j.srv.URL+"/api/v1/apps/"+appID+"/export?"+query.Encode(), nil)
			req.Header.Set("Authorization", "Bearer "+a.ownerToken)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			raw, _ := io.ReadAll(resp.Body)
			return resp.StatusCode, string(raw)
		}
		if status, body := export(url.Values{"from": {"2026-01-01t00:00:00z"}, "to": {"2027-01-01T00:00:00+01:00"}}); status != 200 || !strings.Contains(body, `"d-1"`) {
			t.Fatalf("export with lower-case t and z: %d %s", status, body)
		}
		for _, p := range []string{"from", "to"} {
			for _, at := range []string{"9999-12-31T23:00:00-05:00", "2026-01-01T00:00:00+24:00"} {
				if status, body := export(url.Values{p: {at}}); status != 400 || !strings.Contains(body, `"BAD_USER_INPUT"`) || !strings.Contains(body, `"`+p+`"`) {
					t.Fatalf("export %s=%s: %d %s", p, at, status, body)
				}
			}
		}
	})
}
