package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/crumbs-dev/crumbs/graph"
	"github.com/crumbs-dev/crumbs/models/modelstest"
	"gorm.io/gorm"
)

// The planned path decodes TriggerInput itself (graph/fastpath_input.go),
// where gqlgen decodes the variables into maps and coerces them against the
// schema. Member names are where the two can part: encoding/json matches
// them case-insensitively (and folds "ſ" to "s"), GraphQL matches them
// exactly and refuses the others as unknown; a repeated name is the last
// one's in both. TestPlannedTriggerInputs and FuzzPlannedTriggerInputs send
// each input to a server with the planned path and to one without, on
// SQLite and (when configured) MySQL, and compare the answers and the rows
// each request stored.

const (
	plannedOne   = `mutation($in: TriggerInput!) { trigger(input: $in) { accepted duplicate eventId } }`
	plannedBatch = `mutation($in: [TriggerInput!]!) { triggerBatch(inputs: $in) { accepted duplicate eventId error { code field message } } }`
)

// triggerPair is a planned and a plain (gqlgen only) server on one kind of
// store.
type triggerPair struct {
	store          string
	planned, plain *pairSide
}

// pairSide is one server of a pair with an app of its own.
type pairSide struct {
	a             *api
	db            *gorm.DB
	appID, secret string
	app           uint64 // the app's row id
	// What stored has reported: events up to lastEvent, devices, and
	// unknown codes' counts.
	lastEvent uint64
	devices   map[string]bool
	unknown   map[string]int64
}

// triggerPairs starts a pair on SQLite and, when configured (always under
// CI=true), one on MySQL, where both servers share the test database.
func triggerPairs(t testing.TB) []*triggerPair {
	stores := []string{"sqlite"}
	if os.Getenv("CRUMBS_TEST_MYSQL_DSN") != "" || os.Getenv("CI") == "true" {
		stores = append(stores, "mysql")
	}
	var pairs []*triggerPair
	for _, store := range stores {
		side := func(noFastPath bool) *pairSide {
			var db *gorm.DB
			if store == "sqlite" {
				db = modelstest.SQLite(t)
			} else {
				db = modelstest.MySQL(t)
			}
			a := newAPI(t, db, func(c *config) { c.noFastPath = noFastPath })
			s := &pairSide{a: a, db: db}
			s.appID, s.secret = a.createApp("Planned inputs")
			if err := db.Raw("SELECT id FROM apps WHERE public_id = ?", s.appID).Scan(&s.app).Error; err != nil {
				t.Fatal(err)
			}
			return s
		}
		pairs = append(pairs, &triggerPair{store: store, planned: side(false), plain: side(true)})
	}
	return pairs
}

var eventIDs = regexp.MustCompile(`"eventId":"\d+"`)

// send posts body, with APP standing for the side's app id, as a server
// holding the secret key, and returns the status, the content type and the
// body with the app id put back to APP and event ids to N.
func (s *pairSide) send(t *testing.T, body string) (int, string, string) {
	body = strings.ReplaceAll(body, "APP", s.appID)
	req := httptest.NewRequest(http.MethodPost, "/graphql", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+s.secret)
	rec := httptest.NewRecorder()
	s.a.handler.ServeHTTP(rec, req)
	out, err := io.ReadAll(rec.Body)
	if err != nil {
		t.Fatal(err)
	}
	got := strings.ReplaceAll(string(out), s.appID, "APP")
	return rec.Code, rec.Header().Get("Content-Type"), eventIDs.ReplaceAllString(got, `"eventId":"N"`)
}

// stored returns, as JSON with the app id put back to APP, what the side
// stored since the last call: the new events, the new devices and the
// unknown codes counted since.
func (s *pairSide) stored(t *testing.T) string {
	var events []struct {
		ID                                               uint64 `json:"-"`
		DeviceID, Code, URL, Referrer, Title, Properties string
		Source, OccurredAt                               string
		MessageID                                        *string
	}
	// An event sent without occurredAt happened "now", at its receipt.
	err := s.db.Raw(`SELECT e.id, e.device_id, d.code, e.url, e.referrer, e.title, e.properties, e.source, e.message_id,
		CASE WHEN e.occurred_at = e.received_at THEN 'now' ELSE e.occurred_at END AS occurred_at
		FROM events e JOIN event_definitions d ON d.id = e.definition_id
		WHERE e.app_id = ? AND e.id > ? ORDER BY e.id`, s.app, s.lastEvent).Scan(&events).Error
	if err != nil {
		t.Fatal(err)
	}
	if len(events) > 0 {
		s.lastEvent = events[len(events)-1].ID
	}
	var devices []struct{ DeviceID, UserAgent string }
	var unknown []struct {
		Code  string
		Count int64
	}
	if err := s.db.Raw(`SELECT device_id, user_agent FROM devices WHERE app_id = ? ORDER BY device_id`, s.app).Scan(&devices).Error; err != nil {
		t.Fatal(err)
	}
	if err := s.db.Raw(`SELECT code, count FROM unknown_codes WHERE app_id = ? ORDER BY code`, s.app).Scan(&unknown).Error; err != nil {
		t.Fatal(err)
	}
	if s.devices == nil {
		s.devices, s.unknown = map[string]bool{}, map[string]int64{}
	}
	newDevices := devices[:0]
	for _, d := range devices {
		if !s.devices[d.DeviceID] {
			s.devices[d.DeviceID] = true
			newDevices = append(newDevices, d)
		}
	}
	counted := unknown[:0]
	for _, u := range unknown {
		if s.unknown[u.Code] != u.Count {
			s.unknown[u.Code] = u.Count
			counted = append(counted, u)
		}
	}
	b, err := json.Marshal(map[string]any{"events": events, "devices": newDevices, "unknownCodes": counted})
	if err != nil {
		t.Fatal(err)
	}
	return strings.ReplaceAll(string(b), s.appID, "APP")
}

// compare sends body to both servers, fails t unless they answer and store
// the same, and reports whether the planned server answered from its plan.
func (p *triggerPair) compare(t *testing.T, name, body string) bool {
	t.Helper()
	before := graph.PlannedRequests()
	s1, ct1, b1 := p.planned.send(t, body)
	planned := graph.PlannedRequests() != before
	s2, ct2, b2 := p.plain.send(t, body)
	// Both read what they stored before either fails, so that the next
	// input is compared on its own.
	r1, r2 := p.planned.stored(t), p.plain.stored(t)
	if s1 != s2 || ct1 != ct2 || (b1 != b2 && (planned || anyUnknownField(b1) != anyUnknownField(b2))) {
		t.Fatalf("%s: %s\nplanned %d %s %s\ngqlgen  %d %s %s", p.store, name, s1, ct1, b1, s2, ct2, b2)
	}
	if r1 != r2 {
		t.Fatalf("%s: %s stored\nplanned %s\ngqlgen  %s", p.store, name, r1, r2)
	}
	return planned
}

// anyUnknownField returns a GraphQL response with the field that each
// "unknown field" error names left out. Of an input with several unknown
// fields, gqlgen names the first its map iteration meets, so when it
// answered on both servers, the names may differ.
func anyUnknownField(body string) string {
	var resp map[string]any
	if json.Unmarshal([]byte(body), &resp) != nil {
		return body
	}
	errs, _ := resp["errors"].([]any)
	for _, e := range errs {
		e, _ := e.(map[string]any)
		path, _ := e["path"].([]any)
		if e["message"] != "unknown field" || len(path) == 0 {
			continue
		}
		e["path"] = path[:len(path)-1]
		if ext, ok := e["extensions"].(map[string]any); ok {
			delete(ext, "field")
		}
	}
	out, _ := json.Marshal(resp)
	return string(out)
}

// triggerBody is the request of one trigger (or, with batch, triggerBatch)
// with the variable in.
func triggerBody(in string, batch bool) string {
	query := plannedOne
	if batch {
		query = plannedBatch
	}
	q, _ := json.Marshal(query)
	return fmt.Sprintf(`{"query":%s,"variables":{"in":%s}}`, q, in)
}

// plannedInputCases are inputs and what the planned path should do with
// them: answer them itself (planned) or leave them to gqlgen. Either way
// the answer must be gqlgen's. They seed FuzzPlannedTriggerInputs too.
var plannedInputCases = []struct {
	name    string
	in      string
	batch   bool
	body    string // instead of in: the whole request
	planned bool
}{
	{name: "every field", in: `{"appId":"APP","deviceId":"k1","code":"view","url":"https://x.example/a","referrer":"https://r.example/","title":"T","properties":{"plan":"pro","n":1.50},"occurredAt":"2026-01-02T03:04:05Z","messageId":"k-1","source":"js"}`, planned: true},
	{name: "property names in any case", in: `{"appId":"APP","deviceId":"k1","code":"view","properties":{"DeviceId":"x","AppId":1,"nested":{"deviceid":"y","deviceId":"z","meſſageId":[{"Code":null}]}}}`, planned: true},
	{name: "repeated property name", in: `{"appId":"APP","deviceId":"k1","code":"view","properties":{"a":1,"a":2,"A":3}}`, planned: true},
	{name: "spaces around names", in: "{ \"appId\" : \"APP\" ,\n\t\"deviceId\" :\"k1\", \"code\":\"view\" }", planned: true},
	{name: "escaped name", in: `{"appId":"APP","device\u0049d":"k1","cod\u0065":"view"}`, planned: true},
	{name: "nulls where allowed", in: `{"appId":"APP","deviceId":"k1","code":"view","url":null,"referrer":null,"title":null,"properties":null,"occurredAt":null,"messageId":null,"source":null}`, planned: true},

	// A repeated name is the last one's, for gqlgen's maps as for encoding/json.
	{name: "repeated name", in: `{"appId":"APP","deviceId":"k-first","code":"view","deviceId":"k2"}`, planned: true},
	{name: "repeated name, null last", in: `{"appId":"APP","deviceId":"k2","code":"view","url":"https://x.example/","url":null}`, planned: true},
	{name: "repeated name, null first", in: `{"appId":"APP","deviceId":"k2","code":"view","title":null,"title":"Later"}`, planned: true},
	{name: "repeated properties", in: `{"appId":"APP","deviceId":"k2","code":"view","properties":{"a":1},"properties":{"b":2}}`, planned: true},
	{name: "repeated properties, null last", in: `{"appId":"APP","deviceId":"k2","code":"view","properties":{"a":1},"properties":null}`, planned: true},
	{name: "repeated messageId", in: `{"appId":"APP","deviceId":"k2","code":"view","messageId":"k-2","messageId":"k-1"}`, planned: true},
	{name: "repeated name, wrong type first", in: `{"appId":"APP","deviceId":1,"deviceId":"k3","code":"view"}`},
	{name: "repeated name, wrong type last", in: `{"appId":"APP","deviceId":"k3","deviceId":1,"code":"view"}`},
	{name: "repeated name, null last where not allowed", in: `{"appId":"APP","deviceId":"k3","code":"view","code":null}`},

	// Names in another case, or folded, are unknown fields to GraphQL.
	{name: "name in another case", in: `{"appId":"APP","DeviceId":"k4","code":"view"}`},
	{name: "both cases, exact first", in: `{"appId":"APP","deviceId":"k4","DeviceId":"k5","code":"view"}`},
	{name: "both cases, exact last", in: `{"appId":"APP","deviceID":"k5","deviceId":"k4","code":"view"}`},
	{name: "upper case", in: `{"AppID":"APP","deviceId":"k4","code":"view"}`},
	{name: "lower case, optional field", in: `{"appId":"APP","deviceId":"k4","code":"view","messageid":"k-4"}`},
	{name: "optional field in another case", in: `{"appId":"APP","deviceId":"k4","code":"view","URL":"https://x.example/"}`},
	{name: "properties in another case", in: `{"appId":"APP","deviceId":"k4","code":"view","Properties":{"a":1}}`},
	{name: "long s for s", in: `{"appId":"APP","deviceId":"k4","code":"view","meſſageId":"k-5"}`},
	{name: "long s, both", in: `{"appId":"APP","deviceId":"k4","code":"view","source":"js","ſource":"api"}`},
	{name: "escaped name in another case", in: `{"appId":"APP","device\u0069d":"k4","code":"view"}`},
	{name: "typename", in: `{"__typename":"TriggerInput","appId":"APP","deviceId":"k4","code":"view"}`},
	{name: "unknown field", in: `{"appId":"APP","deviceId":"k4","code":"view","colour":"red"}`},

	// Wrong types and nulls where a value is required.
	{name: "number for a string", in: `{"appId":"APP","deviceId":7,"code":"view"}`},
	{name: "number for an optional string", in: `{"appId":"APP","deviceId":"k6","code":"view","url":7}`},
	{name: "boolean for an optional string", in: `{"appId":"APP","deviceId":"k6","code":"view","title":true}`},
	{name: "object for an optional string", in: `{"appId":"APP","deviceId":"k6","code":"view","messageId":{}}`},
	{name: "number for a time", in: `{"appId":"APP","deviceId":"k6","code":"view","occurredAt":1767225600}`},
	{name: "not a time", in: `{"appId":"APP","deviceId":"k6","code":"view","occurredAt":"yesterday"}`},
	{name: "enum in another case", in: `{"appId":"APP","deviceId":"k6","code":"view","source":"JS"}`},
	{name: "number for an enum", in: `{"appId":"APP","deviceId":"k6","code":"view","source":1}`},
	{name: "string properties", in: `{"appId":"APP","deviceId":"k6","code":"view","properties":"x"}`, planned: true},
	{name: "number properties", in: `{"appId":"APP","deviceId":"k6","code":"view","properties":7}`, planned: true},
	{name: "list properties", in: `{"appId":"APP","deviceId":"k6","code":"view","properties":[{"a":1}]}`, planned: true},
	{name: "null app", in: `{"appId":null,"deviceId":"k6","code":"view"}`},
	{name: "null device", in: `{"appId":"APP","deviceId":null,"code":"view"}`},
	{name: "no code", in: `{"appId":"APP","deviceId":"k6"}`},
	{name: "null input", in: `null`},
	{name: "string input", in: `"APP"`},
	{name: "list input", in: `[{"appId":"APP","deviceId":"k6","code":"view"}]`},
	{name: "empty input", in: `{}`},

	// Batches.
	{name: "batch", batch: true, in: `[{"appId":"APP","deviceId":"k7","code":"view","deviceId":"k8","properties":{"Code":1}},{"appId":"APP","deviceId":"k7","code":"nope"},{"appId":"APP","deviceId":"","code":"view"}]`, planned: true},
	{name: "empty batch", batch: true, in: `[]`, planned: true},
	{name: "batch item with a name in another case", batch: true, in: `[{"appId":"APP","deviceId":"k7","code":"view"},{"appId":"APP","deviceId":"k7","Code":"click","code":"view"}]`},
	{name: "batch item with an unknown field", batch: true, in: `[{"appId":"APP","deviceId":"k7","code":"view","colour":"red"}]`},
	{name: "batch with a null item", batch: true, in: `[{"appId":"APP","deviceId":"k7","code":"view"},null]`},
	{name: "batch with a number item", batch: true, in: `[1]`},
	{name: "null batch", batch: true, in: `null`},
	{name: "one input for a batch", batch: true, in: `{"appId":"APP","deviceId":"k7","code":"view"}`},

	// The envelope is decoded case-insensitively by gqlgen too, and a
	// repeated variable is the last one's.
	{name: "envelope in another case", body: `{"Query":"mutation($in: TriggerInput!) { trigger(input: $in) { accepted } }","VARIABLES":{"in":{"appId":"APP","deviceId":"k9","code":"view"}}}`, planned: true},
	{name: "repeated variable", body: `{"query":"mutation($in: TriggerInput!) { trigger(input: $in) { accepted } }","variables":{"in":{"appId":"APP","deviceId":"k9","code":"nope"},"in":{"appId":"APP","deviceId":"k10","code":"view"}}}`, planned: true},
	{name: "repeated variables", body: `{"query":"mutation($in: TriggerInput!) { trigger(input: $in) { accepted } }","variables":{"in":{"appId":"APP","deviceId":"k9","code":"nope"}},"variables":{"in":{"appId":"APP","deviceId":"k11","code":"view"}}}`, planned: true},
	{name: "variable in another case", body: `{"query":"mutation($in: TriggerInput!) { trigger(input: $in) { accepted } }","variables":{"In":{"appId":"APP","deviceId":"k9","code":"view"}}}`},
}

func TestPlannedTriggerInputs(t *testing.T) {
	for _, p := range triggerPairs(t) {
		t.Run(p.store, func(t *testing.T) {
			for _, c := range plannedInputCases {
				body := c.body
				if body == "" {
					body = triggerBody(c.in, c.batch)
				}
				if planned := p.compare(t, c.name, body); planned != c.planned {
					t.Errorf("%s: answered from a plan: %v, want %v", c.name, planned, c.planned)
				}
			}
		})
	}
}

// FuzzPlannedTriggerInputs explores variables beyond the cases above:
//
//	go test ./server -run '^$' -fuzz FuzzPlannedTriggerInputs -fuzztime 60s
func FuzzPlannedTriggerInputs(f *testing.F) {
	for _, c := range plannedInputCases {
		if c.body == "" {
			f.Add(c.in, c.batch)
		}
	}
	pairs := triggerPairs(f)
	f.Fuzz(func(t *testing.T, in string, batch bool) {
		for _, p := range pairs {
			p.compare(t, in, triggerBody(in, batch))
		}
	})
}
