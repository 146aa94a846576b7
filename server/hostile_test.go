package main

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/99designs/gqlgen/client"
	"github.com/crumbs-dev/crumbs/models"
	"github.com/crumbs-dev/crumbs/models/modelstest"
	"gorm.io/gorm"
)

// hostileCase is one request of the hostile-input corpus and the refusal it
// must get: its HTTP status, the code of every error, and the field of the
// first (when the refusal names one). code "" means the request is answered
// normally (a SQL-looking rule value is just text).
type hostileCase struct {
	name   string
	as     string // "browser" (Origin, no credentials), "server" (secret key) or "owner" (dashboard token)
	body   string // a raw POST body; with get set, the query string instead
	get    bool
	status int
	code   string
	field  string
}

// hostileClient sends the corpus through the real handler stack.
type hostileClient struct {
	a      *api
	appID  string
	secret string
}

func (c *hostileClient) send(t *testing.T, tc hostileCase) (int, []gqlError, string) {
	t.Helper()
	var req *http.Request
	if tc.get {
		req = httptest.NewRequest(http.MethodGet, "/graphql?"+tc.body, nil)
	} else {
		req = httptest.NewRequest(http.MethodPost, "/graphql", strings.NewReader(tc.body))
		req.Header.Set("Content-Type", "application/json")
	}
	req.RemoteAddr = "198.51.100.99:4000"
	switch tc.as {
	case "browser":
		req.Header.Set("Origin", "https://site.example")
	case "server":
		req.Header.Set("Authorization", "Bearer "+c.secret)
	case "owner":
		req.Header.Set("Authorization", "Bearer "+c.a.ownerToken)
	default:
		t.Fatalf("%s: unknown caller %q", tc.name, tc.as)
	}
	rec := httptest.NewRecorder()
	c.a.handler.ServeHTTP(rec, req)
	raw, _ := io.ReadAll(rec.Body)
	var out struct {
		Errors []gqlError
		Data   json.RawMessage
	}
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatalf("%s: answer is not JSON (%d): %.300s", tc.name, rec.Code, raw)
	}
	var itemErrors struct {
		Data map[string][]struct {
			Error *struct{ Code, Field string }
		}
	}
	// triggerBatch answers per item: those errors count too.
	if json.Unmarshal(raw, &itemErrors) == nil {
		for _, items := range itemErrors.Data {
			for _, item := range items {
				if item.Error != nil {
					e := gqlError{}
					e.Extensions.Code, e.Extensions.Field = item.Error.Code, item.Error.Field
					out.Errors = append(out.Errors, e)
				}
			}
		}
	}
	return rec.Code, out.Errors, string(raw)
}

// gql builds a POST body from a document and variables.
func gql(query string, vars map[string]any) string {
	b, err := json.Marshal(map[string]any{"query": query, "variables": vars})
	if err != nil {
		panic(err)
	}
	return string(b)
}

// rawVars builds a POST body whose variables are raw JSON text, for what Go
// cannot marshal (1e309, invalid UTF-8, deep nesting).
func rawVars(query, vars string) string {
	q, _ := json.Marshal(query)
	return `{"query":` + string(q) + `,"variables":` + vars + `}`
}

func cursorAt(ms int64, id string) string {
	return base64.RawURLEncoding.EncodeToString(fmt.Appendf(nil, "%d:%s", ms, id))
}

func deepObject(levels int) string {
	return strings.Repeat(`{"a":`, levels) + "1" + strings.Repeat("}", levels)
}

const (
	hTrigger  = `mutation($in: TriggerInput!) { trigger(input: $in) { accepted eventId } }`
	hBatch    = `mutation($in: [TriggerInput!]!) { triggerBatch(inputs: $in) { accepted error { code field } } }`
	hIdentify = `mutation($in: IdentifyInput!) { identify(input: $in) { moved } }`
	hEvents   = `query($a: ID!, $rules: [RuleInput!], $after: String, $from: Time, $to: Time) { events(appId: $a, rules: $rules, after: $after, from: $from, to: $to, first: 5) { edges { node { id properties } } } }`
)

// hostileCorpus lists the inputs; appID is the app under attack.
func hostileCorpus(appID string) []hostileCase {
	trig := func(extra string) string {
		return `{"in":{"appId":"` + appID + `","deviceId":"hostile","code":"view"` + extra + `}}`
	}
	ident := func(extra string) string {
		return `{"in":{"appId":"` + appID + `","deviceId":"hostile","email":"hostile@example.com"` + extra + `}}`
	}
	rule := func(field, op, value string) map[string]any {
		return map[string]any{"a": appID, "rules": []map[string]any{{"field": field, "operator": op, "value": value}}}
	}
	items := func(n int) []map[string]any {
		out := make([]map[string]any, n)
		for i := range out {
			out[i] = map[string]any{"appId": appID, "deviceId": "hostile", "code": "view"}
		}
		return out
	}
	bad := func(name, as, body, field string) hostileCase {
		return hostileCase{name: name, as: as, body: body, status: http.StatusOK, code: models.CodeBadUserInput, field: field}
	}
	aliases := func(n int, field string) string {
		var b strings.Builder
		b.WriteString("query($a: ID!) {")
		for i := range n {
			fmt.Fprintf(&b, " a%d: %s", i, field)
		}
		return b.String() + " }"
	}
	return []hostileCase{
		// Oversized.
		{name: "body over the limit", as: "browser", body: rawVars(hTrigger, trig(`,"title":"`+strings.Repeat("x", 70<<10)+`"`)),
			status: http.StatusRequestEntityTooLarge, code: models.CodePayloadTooLarge},
		bad("properties over 8 KiB", "browser", rawVars(hTrigger, trig(`,"properties":{"x":"`+strings.Repeat("p", 2000)+`","y":"`+strings.Repeat("p", 2000)+`","z":"`+strings.Repeat("p", 2000)+`","w":"`+strings.Repeat("p", 2000)+`","v":"`+strings.Repeat("p", 500)+`"}`)), "properties"),
		bad("property string over 2 KiB", "browser", rawVars(hTrigger, trig(`,"properties":{"x":"`+strings.Repeat("p", 2049)+`"}`)), "properties"),
		bad("property key over 128 bytes", "browser", rawVars(hTrigger, trig(`,"properties":{"`+strings.Repeat("k", 129)+`":1}`)), "properties"),
		bad("url over 2 KiB", "browser", rawVars(hTrigger, trig(`,"url":"https://x.example/`+strings.Repeat("u", 2048)+`"`)), "url"),
		bad("title over 512 bytes", "browser", rawVars(hTrigger, trig(`,"title":"`+strings.Repeat("t", 513)+`"`)), "title"),
		bad("messageId over 128 bytes", "browser", rawVars(hTrigger, trig(`,"messageId":"`+strings.Repeat("m", 129)+`"`)), "messageId"),
		bad("deviceId over 128 bytes", "browser", gql(hTrigger, map[string]any{"in": map[string]any{"appId": appID, "deviceId": strings.Repeat("d", 129), "code": "view"}}), "deviceId"),
		// "." and ".." cannot stand in a URL's path (browsers resolve them), so
		// the dashboard's link to such a device opened another page.
		bad(`deviceId ".."`, "browser", gql(hTrigger, map[string]any{"in": map[string]any{"appId": appID, "deviceId": "..", "code": "view"}}), "deviceId"),
		bad(`deviceId "."`, "browser", gql(hTrigger, map[string]any{"in": map[string]any{"appId": appID, "deviceId": ".", "code": "view"}}), "deviceId"),
		bad(`identify deviceId ".."`, "browser", gql(hIdentify, map[string]any{"in": map[string]any{"appId": appID, "deviceId": "..", "email": "hostile@example.com"}}), "deviceId"),
		bad("email with a zero-width space", "browser", gql(hIdentify, map[string]any{"in": map[string]any{"appId": appID, "deviceId": "hostile", "email": "hostile\u200b@example.com"}}), "email"),
		bad("appId over 64 bytes", "browser", gql(hTrigger, map[string]any{"in": map[string]any{"appId": strings.Repeat("a", 65), "deviceId": "d", "code": "view"}}), "appId"),
		bad("browser batch of 21", "browser", gql(hBatch, map[string]any{"in": items(21)}), "inputs"),
		bad("server batch of 501", "server", gql(hBatch, map[string]any{"in": items(501)}), "inputs"),
		bad("fields over 8 KiB", "browser", rawVars(hIdentify, ident(`,"fields":{"x":"`+strings.Repeat("f", 2000)+`","y":"`+strings.Repeat("f", 2000)+`","z":"`+strings.Repeat("f", 2000)+`","w":"`+strings.Repeat("f", 2000)+`","v":"`+strings.Repeat("f", 500)+`"}`)), "fields"),
		bad("lead name over 200 characters", "browser", rawVars(hIdentify, ident(`,"name":"`+strings.Repeat("n", 201)+`"`)), "name"),
		bad("rule value over 2 KiB", "owner", gql(hEvents, rule("url", "contains", strings.Repeat("v", 2049))), "rules.0.value"),
		bad("search over 254 characters", "owner", gql(`query($a: ID!, $s: String) { leads(appId: $a, search: $s) { edges { cursor } } }`, map[string]any{"a": appID, "s": strings.Repeat("s", 255)}), "search"),
		bad("page of 501", "owner", gql(`query($a: ID!) { events(appId: $a, first: 501) { edges { cursor } } }`, map[string]any{"a": appID}), "first"),

		// Deep.
		bad("properties nine levels deep", "browser", rawVars(hTrigger, trig(`,"properties":`+deepObject(9))), "properties"),
		bad("properties 40 levels deep", "browser", rawVars(hTrigger, trig(`,"properties":`+deepObject(40))), "properties"),
		{name: "properties 1,300 levels deep", as: "browser", body: rawVars(hTrigger, trig(`,"properties":`+deepObject(1300))),
			status: http.StatusBadRequest, code: models.CodeBadRequest},
		bad("nested arrays", "browser", rawVars(hTrigger, trig(`,"properties":{"a":`+strings.Repeat("[", 40)+strings.Repeat("]", 40)+`}`)), "properties"),
		bad("fields nine levels deep", "browser", rawVars(hIdentify, ident(`,"fields":`+deepObject(9))), "fields"),

		// Non-finite numbers.
		bad("property 1e309", "browser", rawVars(hTrigger, trig(`,"properties":{"n":1e309}`)), "properties"),
		bad("property -1e309 in a list", "browser", rawVars(hTrigger, trig(`,"properties":{"n":[1,-1e309]}`)), "properties"),
		bad("field 1e309", "browser", rawVars(hIdentify, ident(`,"fields":{"n":1e309}`)), "fields"),
		bad("server field 1e309", "server", rawVars(hIdentify, ident(`,"fields":{"n":1e309}`)), "fields"),
		{name: "literal 1e309 in the document", as: "browser", body: gql(`mutation { trigger(input: {appId: "`+appID+`", deviceId: "d", code: "view", properties: {n: 1e309}}) { accepted } }`, nil),
			status: http.StatusUnprocessableEntity, code: models.CodeBadUserInput},
		bad("rule value NaN", "owner", gql(hEvents, rule("properties.n", "greater_than", "NaN")), "rules.0.value"),
		bad("rule value Inf", "owner", gql(hEvents, rule("properties.n", "less_than", "Inf")), "rules.0.value"),
		bad("rule value 1e309", "owner", gql(hEvents, rule("properties.n", "less_than", "1e309")), "rules.0.value"),
		bad("rule value in hex", "owner", gql(hEvents, rule("properties.n", "less_than", "0x10")), "rules.0.value"),
		bad("funnel rule value Infinity", "owner", gql(`query($in: FunnelInput!) { funnel(input: $in) { steps { entered } } }`, map[string]any{"in": map[string]any{
			"appId": appID, "windowSeconds": 60, "range": map[string]any{"from": "2026-01-01T00:00:00Z", "to": "2026-01-02T00:00:00Z"},
			"steps": []map[string]any{{"code": "view", "rules": []map[string]any{{"field": "properties.n", "operator": "greater_than", "value": "Infinity"}}}, {"code": "click"}},
		}}), "steps.0.rules.0.value"),
		bad("matcher rule value nan", "owner", gql(`mutation($a: ID!) { createEventMatcher(appId: $a, input: {name: "m", code: "view", rules: [{field: "properties.n", operator: less_than, value: "nan"}]}) { id } }`, map[string]any{"a": appID}), "rules.0.value"),

		// Invalid UTF-8 and control characters.
		{name: "invalid UTF-8 in a body", as: "browser", body: rawVars(hTrigger, trig(`,"messageId":"m-`+"\xff\xfe"+`"`)), status: http.StatusBadRequest, code: models.CodeBadRequest},
		{name: "invalid UTF-8 in a query string", as: "owner", get: true, body: "query=" + url.QueryEscape(`{ leads(appId: "`+appID+`", search: "`+"\xff"+`") { edges { cursor } } }`),
			status: http.StatusBadRequest, code: models.CodeBadRequest},
		{name: "invalid UTF-8 in GET variables", as: "owner", get: true, body: "query=" + url.QueryEscape(`query($s: String) { leads(appId: "`+appID+`", search: $s) { edges { cursor } } }`) + "&variables=" + url.QueryEscape(`{"s":"`+"\xc3"+`"}`),
			status: http.StatusBadRequest, code: models.CodeBadRequest},
		bad("NUL in deviceId", "browser", rawVars(hTrigger, `{"in":{"appId":"`+appID+`","deviceId":"a\u0000b","code":"view"}}`), "deviceId"),
		bad("bell in messageId", "browser", rawVars(hTrigger, trig(`,"messageId":"m\u0007"`)), "messageId"),
		bad("NUL in url", "browser", rawVars(hTrigger, trig(`,"url":"https://x.example/\u0000"`)), "url"),
		bad("escape in title", "browser", rawVars(hTrigger, trig(`,"title":"\u001b[31mred"`)), "title"),
		bad("NUL in a property key", "browser", rawVars(hTrigger, trig(`,"properties":{"a\u0000b":1}`)), "properties"),
		bad("newline in a field key", "browser", rawVars(hIdentify, ident(`,"fields":{"a\nb":1}`)), "fields"),
		bad("control character in a lead name", "browser", rawVars(hIdentify, ident(`,"name":"Ann\u0008"`)), "name"),
		bad("NUL in code", "browser", rawVars(hTrigger, `{"in":{"appId":"`+appID+`","deviceId":"d","code":"view\u0000"}}`), "code"),
		bad("NUL in appId", "browser", rawVars(hTrigger, `{"in":{"appId":"app_\u0000","deviceId":"d","code":"view"}}`), "appId"),
		bad("control character in a device lookup", "owner", gql(`query($a: ID!) { device(appId: $a, deviceId: "a\u0001") { id } }`, map[string]any{"a": appID}), "deviceId"),

		// SQL-looking rule values are text: answered, nothing matched, nothing written.
		{name: "SQL in a rule value", as: "owner", body: gql(hEvents, rule("url", "equals", "' OR 1=1 --")), status: http.StatusOK},
		{name: "SQL in a contains value", as: "owner", body: gql(hEvents, rule("properties.plan", "contains", `%' OR '1'='1`)), status: http.StatusOK},
		{name: "SQL in a search", as: "owner", body: gql(`query($a: ID!, $s: String) { leads(appId: $a, search: $s) { edges { cursor } } }`, map[string]any{"a": appID, "s": "x%' OR 1=1; DROP TABLE leads; --"}), status: http.StatusOK},
		bad("rule operator in capitals", "owner", gql(hEvents, rule("url", "EQUALS", "x")), "rules.0.operator"),
		bad("source in capitals", "browser", gql(hTrigger, map[string]any{"in": map[string]any{"appId": appID, "deviceId": "d", "code": "view", "source": "JS"}}), "input.source"),
		bad("SQL in a rule field", "owner", gql(hEvents, rule("properties.a') OR 1=1 --", "equals", "x")), "rules.0.field"),
		{name: "SQL in a rule operator", as: "owner", body: gql(hEvents, rule("url", "equals' OR 1=1 --", "x")),
			status: http.StatusUnprocessableEntity, code: models.CodeBadUserInput, field: "rules.0.operator"},
		bad("SQL in a code", "browser", gql(hTrigger, map[string]any{"in": map[string]any{"appId": appID, "deviceId": "d", "code": "view'; DROP TABLE events; --"}}), "code"),
		{name: "SQL in an appId", as: "browser", body: gql(hTrigger, map[string]any{"in": map[string]any{"appId": "x' OR '1'='1", "deviceId": "d", "code": "view"}}), status: http.StatusOK, code: models.CodeNotFound},

		// Out-of-range times and cursors.
		bad("occurredAt in the year 1", "server", gql(hTrigger, map[string]any{"in": map[string]any{"appId": appID, "deviceId": "d", "code": "view", "occurredAt": "0001-01-01T00:00:00Z"}}), "occurredAt"),
		bad("occurredAt in the year 9999", "server", gql(hTrigger, map[string]any{"in": map[string]any{"appId": appID, "deviceId": "d", "code": "view", "occurredAt": "9999-12-31T23:59:59Z"}}), "occurredAt"),
		bad("occurredAt in the year 10000", "server", gql(hTrigger, map[string]any{"in": map[string]any{"appId": appID, "deviceId": "d", "code": "view", "occurredAt": "10000-01-01T00:00:00Z"}}), "occurredAt"),
		bad("occurredAt backdated by a browser", "browser", gql(hTrigger, map[string]any{"in": map[string]any{"appId": appID, "deviceId": "d", "code": "view", "occurredAt": "2020-01-01T00:00:00Z"}}), "occurredAt"),
		bad("cursor in the year 31,690", "owner", gql(hEvents, map[string]any{"a": appID, "after": cursorAt(999_999_999_999_999, "5")}), "after"),
		bad("cursor before Christ", "owner", gql(hEvents, map[string]any{"a": appID, "after": cursorAt(-99_999_999_999_999, "5")}), "after"),
		bad("cursor with a 64-bit id", "owner", gql(hEvents, map[string]any{"a": appID, "after": cursorAt(1_700_000_000_000, "18446744073709551615")}), "after"),
		bad("timeline cursor in the year 10000", "owner", gql(`query($a: ID!, $c: String) { device(appId: $a, deviceId: "seen") { timeline(after: $c) { edges { cursor } } } }`, map[string]any{"a": appID, "c": cursorAt(253_402_300_800_000, "1")}), "after"),
		bad("leads cursor beyond int64", "owner", gql(`query($a: ID!) { leads(appId: $a, after: "18446744073709551615") { edges { cursor } } }`, map[string]any{"a": appID}), "after"),
		bad("lead id beyond int64", "owner", gql(`{ lead(id: "18446744073709551615") { id } }`, nil), "id"),
		bad("definition id beyond int64", "owner", gql(`mutation { updateEventDefinition(id: "9223372036854775808", input: {name: "x"}) { id } }`, nil), "id"),
		{name: "events from the year 1000 to 9999", as: "owner", body: gql(hEvents, map[string]any{"a": appID, "from": "1000-01-01T00:00:00Z", "to": "9999-12-31T23:59:59Z"}), status: http.StatusOK},
		bad("events from the year 1", "owner", gql(hEvents, map[string]any{"a": appID, "from": "0001-01-01T00:00:00Z"}), "from"),
		bad("events to the year 10000 in UTC", "owner", gql(hEvents, map[string]any{"a": appID, "to": "9999-12-31T23:00:00-05:00"}), "to"),

		// Aliases.
		{name: "aliases past the complexity limit", as: "owner", body: gql(aliases(60, `events(appId: $a, first: 500) { edges { node { id url } } }`), map[string]any{"a": appID}),
			status: http.StatusUnprocessableEntity, code: "COMPLEXITY_LIMIT_EXCEEDED"},
		bad("aliases of a hostile rule", "owner", gql(aliases(20, `events(appId: $a, rules: [{field: "properties.n", operator: greater_than, value: "NaN"}]) { edges { cursor } }`), map[string]any{"a": appID}), "rules.0.value"),
		bad("aliases of a hostile trigger", "browser", gql(strings.Replace(aliases(20, `trigger(input: {appId: $a, deviceId: "d", code: "view", properties: {n: "x"}, occurredAt: "1999-12-31T23:59:59Z"}) { accepted }`), "query", "mutation", 1), map[string]any{"a": appID}), "occurredAt"),
	}
}

// TestHostileInputs sends every input of the corpus through the HTTP
// handler on both stores: each gets its own code (never
// INTERNAL_SERVER_ERROR, never a 5xx) and changes no table.
func TestHostileInputs(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *gorm.DB) {
		a := newAPI(t, db, func(c *config) {
			c.MaxBodyBytes = 64 << 10
			c.RatePerIP, c.RatePerDevice = models.Rate{}, models.Rate{}
		})
		appID, secret := a.createApp("Hostile")
		c := &hostileClient{a: a, appID: appID, secret: secret}
		// Something to read: an event with properties, a device, a lead.
		var trig triggerOut
		a.ok(hTrigger, &trig, client.Var("in", map[string]any{"appId": appID, "deviceId": "seen", "code": "view", "properties": map[string]any{"n": 3, "plan": "pro"}}))
		var ident struct{ Identify struct{ Moved bool } }
		a.ok(hIdentify, &ident, client.Var("in", map[string]any{"appId": appID, "deviceId": "seen", "email": "seen@example.com"}), as(secret))
		a.settle()

		tables, err := db.Migrator().GetTables()
		if err != nil {
			t.Fatal(err)
		}
		counts := func() map[string]int64 {
			t.Helper()
			out := map[string]int64{}
			for _, table := range tables {
				var n int64
				if err := db.Table(table).Count(&n).Error; err != nil {
					t.Fatal(err)
				}
				out[table] = n
			}
			return out
		}
		for _, tc := range hostileCorpus(appID) {
			t.Run(tc.name, func(t *testing.T) {
				before := counts()
				status, errs, raw := c.send(t, tc)
				if strings.Contains(raw, models.CodeInternal) || status >= 500 {
					t.Fatalf("answered %d: %.400s", status, raw)
				}
				if status != tc.status {
					t.Fatalf("HTTP %d, want %d: %.400s", status, tc.status, raw)
				}
				switch {
				case tc.code == "" && len(errs) > 0:
					t.Fatalf("refused, want an answer: %.400s", raw)
				case tc.code != "" && len(errs) == 0:
					t.Fatalf("answered, want %s: %.400s", tc.code, raw)
				}
				for _, e := range errs {
					if e.Extensions.Code != tc.code {
						t.Fatalf("code %s, want %s: %.400s", e.Extensions.Code, tc.code, raw)
					}
				}
				if tc.field != "" && errs[0].Extensions.Field != tc.field {
					t.Fatalf("field %q, want %q: %.400s", errs[0].Extensions.Field, tc.field, raw)
				}
				if after := counts(); !maps.Equal(before, after) {
					var changed []string
					for _, table := range slices.Sorted(maps.Keys(after)) {
						if before[table] != after[table] {
							changed = append(changed, fmt.Sprintf("%s %d→%d", table, before[table], after[table]))
						}
					}
					t.Fatalf("wrote: %s", strings.Join(changed, ", "))
				}
			})
		}
		// The server still works, and what was stored reads back.
		var page struct {
			Events struct {
				Edges []struct {
					Node struct {
						ID         string
						Properties map[string]any
					}
				}
			}
		}
		a.ok(hEvents, &page, client.Var("a", appID))
		if len(page.Events.Edges) != 1 || page.Events.Edges[0].Node.Properties["plan"] != "pro" {
			t.Fatalf("after the corpus: %+v", page)
		}
	})
}

// TestIdentifyIsRateLimitedOverHTTP checks that identify answers 429 with
// Retry-After once the client IP's bucket, shared with triggers, is empty.
func TestIdentifyIsRateLimitedOverHTTP(t *testing.T) {
	a := newAPI(t, modelstest.SQLite(t), func(c *config) {
		c.RatePerIP = models.Rate{PerSecond: 0.001, Burst: 3}
	})
	appID, _ := a.createApp("Identify limits")
	c := &hostileClient{a: a, appID: appID}
	send := func(query string, in map[string]any) (int, []gqlError) {
		t.Helper()
		status, errs, _ := c.send(t, hostileCase{name: "limit", as: "browser", body: gql(query, map[string]any{"in": in})})
		return status, errs
	}
	identify := func(email string) (int, []gqlError) {
		return send(hIdentify, map[string]any{"appId": appID, "deviceId": "d-" + email, "email": email})
	}
	if status, errs := send(hTrigger, map[string]any{"appId": appID, "deviceId": "t", "code": "view"}); status != 200 || len(errs) > 0 {
		t.Fatalf("trigger: %d %+v", status, errs)
	}
	for _, email := range []string{"a@example.com", "b@example.com"} {
		if status, errs := identify(email); status != 200 || len(errs) > 0 {
			t.Fatalf("identify %s: %d %+v", email, status, errs)
		}
	}
	req := httptest.NewRequest(http.MethodPost, "/graphql", strings.NewReader(gql(hIdentify, map[string]any{"in": map[string]any{"appId": appID, "deviceId": "d", "email": "c@example.com"}})))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Origin", "https://site.example")
	req.RemoteAddr = "198.51.100.99:4000"
	rec := httptest.NewRecorder()
	a.handler.ServeHTTP(rec, req)
	if rec.Code != http.StatusTooManyRequests || rec.Header().Get("Retry-After") == "" || !strings.Contains(rec.Body.String(), models.CodeRateLimited) {
		t.Fatalf("the fourth anonymous write from one IP: %d %q %s", rec.Code, rec.Header().Get("Retry-After"), rec.Body)
	}
	var leads int64
	a.db.Model(&models.Lead{}).Where("email_key = ?", "c@example.com").Count(&leads)
	if leads != 0 {
		t.Fatal("the refused identify created its lead")
	}
}
