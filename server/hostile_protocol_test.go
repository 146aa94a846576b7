package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/99designs/gqlgen/client"
	"github.com/crumbs-dev/crumbs/models/modelstest"
	"github.com/crumbs-dev/crumbs/server/metrics"
	"gorm.io/gorm"
)

// logBuffer collects a server's log lines.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// newLoggedAPI is newAPI with its log (at debug level) kept for the test.
func newLoggedAPI(t *testing.T, db *gorm.DB, mutate ...func(*config)) (*api, *logBuffer) {
	t.Helper()
	env := map[string]string{"CRUMBS_ENV": "production", "CRUMBS_JWT_SECRET": testJWTSecret}
	cfg, err := parseConfig(nil, func(k string) string { return env[k] }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range mutate {
		m(cfg)
	}
	logs := &logBuffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	m := metrics.New()
	resolver, closeResolver, err := newResolver(cfg, db, log, m)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(closeResolver)
	h := routes(cfg, log, resolver, m)
	a := &api{t: t, db: db, handler: h, gql: client.New(h, client.Path("/graphql")), resolver: resolver}
	a.ownerToken = a.signUp()
	return a, logs
}

// storeTables are counted before and after each hostile request: none may
// change.
var storeTables = []string{"apps", "event_definitions", "devices", "device_moves", "leads", "events", "unknown_codes",
	"users", "memberships", "invitations", "refresh_tokens", "sign_ins", "rollups"}

func rowCounts(t *testing.T, db *gorm.DB) map[string]int64 {
	t.Helper()
	counts := map[string]int64{}
	for _, table := range storeTables {
		var n int64
		if err := db.Table(table).Count(&n).Error; err != nil {
			t.Fatal(err)
		}
		counts[table] = n
	}
	return counts
}

// hostileRequest is one request that is not a GraphQL request at all, or a
// document built to make the server work; each is refused with its own
// status and code before anything runs.
type hostileRequest struct {
	name        string
	method      string
	contentType string   // "" sends none
	header      []string // name, value pairs
	query       string   // GET: the URL's query string
	body        func(trigger string) string
	status      int
	code        string
	allow       string // the Allow header wanted, if any
}

func jsonBody(query string) string {
	b, _ := json.Marshal(map[string]any{"query": query})
	return string(b)
}

func fragmentBomb(n int, root, typ string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s ...F0 } ", root)
	for i := range n {
		fmt.Fprintf(&b, "fragment F%d on %s { ...F%d ...F%d } ", i, typ, i+1, i+1)
	}
	fmt.Fprintf(&b, "fragment F%d on %s { __typename }", n, typ)
	return b.String()
}

func aliased(n int, field string) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, " a%d: %s", i, field)
	}
	return b.String()
}

var hostileRequests = []hostileRequest{
	// Documents that cost work before any limit answered.
	{name: "fragment bomb (23 fragments, each spreading the next twice)", body: func(trigger string) string {
		return jsonBody(fragmentBomb(23, "mutation { "+trigger, "Mutation"))
	}, status: 422, code: "COMPLEXITY_LIMIT_EXCEEDED"},
	{name: "fragment bomb in a query", body: func(string) string { return jsonBody(fragmentBomb(23, "query {", "Query")) }, status: 422, code: "COMPLEXITY_LIMIT_EXCEEDED"},
	{name: "alias flood of triggers", body: func(trigger string) string { return jsonBody("mutation {" + aliased(1200, trigger) + " }") }, status: 422, code: "COMPLEXITY_LIMIT_EXCEEDED"},
	{name: "alias flood of logins", body: func(string) string {
		return jsonBody("mutation {" + aliased(500, `login(email: "a@example.com", password: "guess") { accessToken }`) + " }")
	}, status: 422, code: "COMPLEXITY_LIMIT_EXCEEDED"},
	{name: "one alias repeated (quadratic validation)", body: func(trigger string) string {
		return jsonBody("mutation { " + trigger + strings.Repeat(` a: __typename`, 400) + " }")
	}, status: 422, code: "COMPLEXITY_LIMIT_EXCEEDED"},
	{name: "selections nested 100 deep", body: func(trigger string) string {
		return jsonBody("mutation { " + trigger + ` identify(input: {appId: "x", deviceId: "x", email: "a@example.com"}) ` +
			strings.Repeat("{ lead { devices ", 50) + "{ id }" + strings.Repeat(" } }", 50) + " }")
	}, status: 422, code: "COMPLEXITY_LIMIT_EXCEEDED"},
	{name: "6,000 tokens", body: func(trigger string) string {
		return jsonBody("mutation { " + trigger + strings.Repeat(" __typename", 6000) + " }")
	}, status: 422, code: "COMPLEXITY_LIMIT_EXCEEDED"},
	{name: "a 100 KB document", body: func(trigger string) string {
		return jsonBody("mutation { " + trigger + " } # " + strings.Repeat("x", 100<<10))
	}, status: 422, code: "COMPLEXITY_LIMIT_EXCEEDED"},
	{name: "introspection in production", body: func(string) string { return jsonBody("{ __schema { types { name fields { name } } } }") }, status: 422, code: "INTROSPECTION_DISABLED"},
	{name: "introspection through a fragment", body: func(string) string {
		return jsonBody(`query { ...F } fragment F on Query { __type(name: "App") { fields { name } } }`)
	}, status: 422, code: "INTROSPECTION_DISABLED"},

	{name: "subscription over POST (it held the request open until an event came)", body: func(string) string {
		return jsonBody(`subscription { eventStored(appId: "app_none") { id } }`)
	}, status: 422, code: "BAD_REQUEST"},

	// Bodies that are not a GraphQL request.
	{name: "not JSON", body: func(trigger string) string { return "mutation { " + trigger + " }" }, status: 400, code: "BAD_REQUEST"},
	{name: "truncated JSON", body: func(trigger string) string { return jsonBody("mutation { " + trigger + " }")[:40] }, status: 400, code: "BAD_REQUEST"},
	{name: "empty body", body: func(string) string { return "" }, status: 400, code: "BAD_REQUEST"},
	{name: "whitespace body", body: func(string) string { return " \n\t " }, status: 400, code: "BAD_REQUEST"},
	{name: "JSON null", body: func(string) string { return "null" }, status: 400, code: "BAD_REQUEST"},
	{name: "array batch", body: func(trigger string) string { return "[" + jsonBody("mutation { "+trigger+" }") + "]" }, status: 400, code: "BAD_REQUEST"},
	{name: "20,000-deep JSON", body: func(string) string { return strings.Repeat("[", 20000) + strings.Repeat("]", 20000) }, status: 400, code: "BAD_REQUEST"},
	{name: "20,000-deep variables", body: func(string) string {
		return `{"query":"query($v: Map) { me { id } }","variables":{"v":` + strings.Repeat(`{"a":`, 20000) + "1" + strings.Repeat("}", 20000) + "}}"
	}, status: 400, code: "BAD_REQUEST"},
	{name: "query is a number", body: func(string) string { return `{"query": 7}` }, status: 400, code: "BAD_REQUEST"},
	{name: "variables are a list", body: func(trigger string) string {
		return `{"query": "mutation { ` + strings.ReplaceAll(trigger, `"`, `\"`) + ` }", "variables": [1]}`
	}, status: 400, code: "BAD_REQUEST"},
	{name: "no Content-Type", contentType: "-", body: func(trigger string) string { return jsonBody("mutation { " + trigger + " }") }, status: 415, code: "BAD_REQUEST"},
	{name: "text/plain without a browser's Origin", contentType: "text/plain;charset=UTF-8", body: func(trigger string) string {
		return jsonBody("mutation { " + trigger + " }")
	}, status: 415, code: "BAD_REQUEST"},
	{name: "a form", contentType: "application/x-www-form-urlencoded", body: func(trigger string) string { return "query=mutation+%7B+" + url.QueryEscape(trigger) + "+%7D" }, status: 415, code: "BAD_REQUEST"},
	{name: "PUT", method: http.MethodPut, body: func(trigger string) string { return jsonBody("mutation { " + trigger + " }") }, status: 405, code: "BAD_REQUEST", allow: "GET, POST, OPTIONS"},
	// GraphQL over HTTP: a mutation over GET is 405 Method Not Allowed.
	{name: "mutation over GET", method: http.MethodGet, query: "query=" + url.QueryEscape(`mutation { createApp(input: {name: "x"}) { secretKey } }`), status: 405, code: "BAD_REQUEST", allow: "POST"},
	{name: "mutation over GET, asking for graphql-response+json", method: http.MethodGet, query: "query=" + url.QueryEscape("mutation { __typename }"),
		header: []string{"Accept", "application/graphql-response+json"}, status: 405, code: "BAD_REQUEST", allow: "POST"},
	{name: "mutation chosen by operationName over GET", method: http.MethodGet, query: "query=" + url.QueryEscape("query Q { __typename } mutation M { __typename }") + "&operationName=M", status: 405, code: "BAD_REQUEST", allow: "POST"},
	{name: "GET with variables that are not JSON", method: http.MethodGet, query: "query=" + url.QueryEscape("{ me { id } }") + "&variables=%7Bnope", status: 400, code: "BAD_REQUEST"},
	{name: "GET with deep variables", method: http.MethodGet, query: "query=" + url.QueryEscape("{ me { id } }") + "&variables=" + strings.Repeat("%7B%22a%22%3A", 100) + "1" + strings.Repeat("%7D", 100), status: 400, code: "BAD_REQUEST"},
	{name: "100,001 JSON values", body: func(string) string {
		return `{"query": "{ __typename }", "variables": {"x": [` + strings.Repeat("1,", 100_000) + `1]}}`
	}, status: 413, code: "PAYLOAD_TOO_LARGE"},
	{name: "a body over the limit", body: func(trigger string) string {
		return `{"query": "mutation { ` + strings.ReplaceAll(trigger, `"`, `\"`) + ` }", "variables": {"pad": "` + strings.Repeat("x", 2<<20) + `"}}`
	}, status: 413, code: "PAYLOAD_TOO_LARGE"},
}

// Every hostile request gets its own status and code, never an internal
// error or a logged failure, and writes nothing, on both stores.
func TestHostileProtocolRequests(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *gorm.DB) {
		a, logs := newLoggedAPI(t, db)
		srv := httptest.NewServer(a.handler)
		defer srv.Close()
		appID, _ := a.createApp("Hostile")
		trigger := fmt.Sprintf(`trigger(input: {appId: %q, deviceId: "hostile", code: "view"}) { accepted }`, appID)
		// The trigger works when sent properly, so the refusals below are the
		// requests' doing.
		if _, errs := a.do("mutation { "+trigger+" }", anonymous()); len(errs) != 0 {
			t.Fatalf("a plain trigger failed: %v", errs)
		}
		a.settle()
		before := rowCounts(t, db)
		for _, c := range hostileRequests {
			t.Run(c.name, func(t *testing.T) {
				method := c.method
				if method == "" {
					method = http.MethodPost
				}
				var body io.Reader
				if c.body != nil {
					body = strings.NewReader(c.body(trigger))
				}
				req, _ := http.NewRequest(method, srv.URL+"/graphql?"+c.query, body)
				switch c.contentType {
				case "":
					req.Header.Set("Content-Type", "application/json")
				case "-":
				default:
					req.Header.Set("Content-Type", c.contentType)
				}
				req.Header.Set("Authorization", "Bearer "+a.ownerToken)
				for i := 0; i+1 < len(c.header); i += 2 {
					req.Header.Set(c.header[i], c.header[i+1])
				}
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				raw, _ := io.ReadAll(resp.Body)
				var out struct {
					Data   json.RawMessage
					Errors []gqlError
				}
				json.Unmarshal(raw, &out)
				if resp.StatusCode != c.status || len(out.Errors) != 1 || out.Errors[0].Extensions.Code != c.code {
					t.Fatalf("got %d %.300s, want %d with one %s", resp.StatusCode, raw, c.status, c.code)
				}
				if allow := resp.Header.Get("Allow"); allow != c.allow {
					t.Errorf("Allow: %q, want %q", allow, c.allow)
				}
				if bytes.Contains(raw, []byte("INTERNAL_SERVER_ERROR")) || (len(out.Data) > 0 && string(out.Data) != "null") {
					t.Fatalf("answered %.300s", raw)
				}
			})
		}
		if after := rowCounts(t, db); fmt.Sprint(after) != fmt.Sprint(before) {
			t.Errorf("hostile requests wrote: before %v, after %v", before, after)
		}
		for _, line := range strings.Split(logs.String(), "\n") {
			if strings.Contains(line, "level=ERROR") || strings.Contains(line, "panic") || strings.Contains(line, "stack") {
				t.Errorf("logged: %.300s", line)
			}
		}
		if !strings.Contains(logs.String(), "introspection refused") {
			t.Error("introspection refusals are not logged at debug level")
		}
	})
}

// Production names nothing the caller did not send: no "did you mean" for
// fields, arguments, enum values or input fields. Development keeps them.
func TestProductionGivesNoHints(t *testing.T) {
	db := modelstest.SQLite(t)
	prod := newAPI(t, db)
	dev := newAPI(t, db, func(c *config) { c.Development = true })
	appID, _ := prod.createApp("Hints")
	for name, query := range map[string]string{
		"field":       `{ apps { nam } }`,
		"argument":    `{ apps { unknownCodes(frist: 5) { code } } }`,
		"enum value":  fmt.Sprintf(`mutation { trigger(input: {appId: %q, deviceId: "d", code: "view", source: jss}) { accepted } }`, appID),
		"input field": fmt.Sprintf(`mutation { trigger(input: {appId: %q, deviceId: "d", cod: "view"}) { accepted } }`, appID),
		"type":        `query($r: Rol) { me { id } }`,
	} {
		t.Run(name, func(t *testing.T) {
			_, errs := prod.do(query)
			if len(errs) == 0 {
				t.Fatal("accepted")
			}
			for _, e := range errs {
				if strings.Contains(e.Message, "Did you mean") || e.Extensions.Code == "INTERNAL_SERVER_ERROR" {
					t.Errorf("production: %+v", e)
				}
			}
		})
	}
	if _, errs := dev.do(`{ apps { nam } }`, as(prod.ownerToken)); len(errs) != 1 || !strings.Contains(errs[0].Message, `Did you mean "name"?`) {
		t.Fatalf("development lost its hints: %+v", errs)
	}
	// A variable of an enum type with an unknown value.
	_, errs := prod.do(`mutation($s: EventSource) { trigger(input: {appId: "x", deviceId: "d", code: "view", source: $s}) { accepted } }`, client.Var("s", "jss"))
	if len(errs) == 0 || strings.Contains(errs[0].Message, "Did you mean") || errs[0].Extensions.Code != "BAD_USER_INPUT" {
		t.Fatalf("enum variable: %+v", errs)
	}
}

// Production answers whether a type exists (validation errors tell as
// much; graphql-http's conformance audit relies on it) and nothing more of
// the schema.
func TestIntrospectionInProduction(t *testing.T) {
	db := modelstest.SQLite(t)
	prod := newAPI(t, db)
	var existence struct {
		Type struct{ Name, Kind string } `json:"__type"`
	}
	prod.ok(`{ __type(name: "App") { name kind } }`, &existence)
	prod.ok(`{ __typename __type(name: "App") { __typename } }`, &map[string]any{})
	if existence.Type.Name != "App" || existence.Type.Kind != "OBJECT" {
		t.Fatalf("type existence: %+v", existence)
	}
	for _, query := range []string{
		`{ __schema { queryType { name } } }`,
		`{ __type(name: "App") { name fields { name } } }`,
		`{ __type(name: "App") { ... on __Type { description } } }`,
		`{ a: __type(name: "App") { name } b: __schema { types { name } } }`,
	} {
		prod.refused("INTROSPECTION_DISABLED", "", query)
	}
	dev := newAPI(t, db, func(c *config) { c.Development = true })
	var schema struct {
		Type struct{ Fields []struct{ Name string } } `json:"__type"`
	}
	dev.ok(`{ __type(name: "App") { fields { name } } }`, &schema)
	if len(schema.Type.Fields) < 5 {
		t.Fatalf("development introspection: %+v", schema)
	}
}
