package main

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/crumbs-dev/crumbs/models"
	"github.com/crumbs-dev/crumbs/models/modelstest"
	"gorm.io/gorm"
)

// jsonHostileCase is one request of the JSON API's hostile-input corpus, in
// the style of hostileCase: the status and code it must get, and the field
// of the first error when the refusal names one.
type jsonHostileCase struct {
	name        string
	as          string // "browser" (Origin, no credentials) or "server" (secret key)
	app         string // the path's app id; "" is the app under attack
	rawPath     string // the whole (escaped) path instead, when set
	contentType string // application/json unless set
	body        string
	status      int
	code        string
	field       string
}

// send posts tc through the real handler stack and returns the status, the
// codes and fields of every error (the request's, or each event's), and the
// body.
func (tc jsonHostileCase) send(t *testing.T, a *api, appID, secret string) (int, []string, []string, string) {
	t.Helper()
	target := "/api/v1/apps/" + appID + "/events"
	switch {
	case tc.rawPath != "":
		target = tc.rawPath
	case tc.app != "":
		target = "/api/v1/apps/" + tc.app + "/events"
	}
	req := httptest.NewRequest(http.MethodPost, target, strings.NewReader(tc.body))
	ct := tc.contentType
	if ct == "" {
		ct = "application/json"
	}
	req.Header.Set("Content-Type", ct)
	req.RemoteAddr = "198.51.100.99:4000"
	switch tc.as {
	case "browser":
		req.Header.Set("Origin", "https://site.example")
	case "server":
		req.Header.Set("Authorization", "Bearer "+secret)
	default:
		t.Fatalf("%s: unknown caller %q", tc.name, tc.as)
	}
	rec := httptest.NewRecorder()
	a.handler.ServeHTTP(rec, req)
	raw, _ := io.ReadAll(rec.Body)
	type refusal struct {
		Code  string
		Field *string
	}
	var out struct {
		Results []struct{ Error *refusal }
	}
	var one struct{ Error *refusal }
	if json.Unmarshal(raw, &out) != nil || json.Unmarshal(raw, &one) != nil {
		t.Fatalf("%s: answer is not JSON (%d): %.300s", tc.name, rec.Code, raw)
	}
	var codes, fields []string
	add := func(r *refusal) {
		if r != nil {
			field := ""
			if r.Field != nil {
				field = *r.Field
			}
			codes, fields = append(codes, r.Code), append(fields, field)
		}
	}
	if out.Results == nil {
		add(one.Error) // the request's refusal, or the one event's
	}
	for _, r := range out.Results {
		add(r.Error)
	}
	return rec.Code, codes, fields, string(raw)
}

// jsonHostileCorpus is the hostile-input corpus of the GraphQL trigger
// (hostile_test.go) sent to the JSON API, plus what only this API can be
// sent: a hostile path, content types, bodies that are not events.
func jsonHostileCorpus() []jsonHostileCase {
	ev := func(extra string) string { return `{"device_id":"hostile","code":"view"` + extra + `}` }
	items := func(n int) string {
		return `{"events":[` + strings.TrimSuffix(strings.Repeat(ev("")+",", n), ",") + `]}`
	}
	bad := func(name, as, body, field string) jsonHostileCase {
		return jsonHostileCase{name: name, as: as, body: body, status: http.StatusBadRequest, code: models.CodeBadUserInput, field: field}
	}
	badRequest := func(name, body string) jsonHostileCase {
		return jsonHostileCase{name: name, as: "browser", body: body, status: http.StatusBadRequest, code: models.CodeBadRequest}
	}
	p := func(n int) string { return strings.Repeat("p", n) }
	return []jsonHostileCase{
		// Oversized.
		{name: "body over the limit", as: "browser", body: ev(`,"title":"` + strings.Repeat("x", 70<<10) + `"`),
			status: http.StatusRequestEntityTooLarge, code: models.CodePayloadTooLarge},
		bad("properties over 8 KiB", "browser", ev(`,"properties":{"x":"`+p(2000)+`","y":"`+p(2000)+`","z":"`+p(2000)+`","w":"`+p(2000)+`","v":"`+p(500)+`"}`), "properties"),
		bad("property string over 2 KiB", "browser", ev(`,"properties":{"x":"`+p(2049)+`"}`), "properties"),
		bad("property key over 128 bytes", "browser", ev(`,"properties":{"`+strings.Repeat("k", 129)+`":1}`), "properties"),
		bad("url over 2 KiB", "browser", ev(`,"url":"https://x.example/`+strings.Repeat("u", 2048)+`"`), "url"),
		bad("title over 512 bytes", "browser", ev(`,"title":"`+strings.Repeat("t", 513)+`"`), "title"),
		bad("message_id over 128 bytes", "browser", ev(`,"message_id":"`+strings.Repeat("m", 129)+`"`), "message_id"),
		bad("device_id over 128 bytes", "browser", `{"device_id":"`+strings.Repeat("d", 129)+`","code":"view"}`, "device_id"),
		{name: "app id over 64 bytes", as: "browser", app: strings.Repeat("a", 65), body: ev(""),
			status: http.StatusBadRequest, code: models.CodeBadUserInput, field: "app_id"},
		bad("browser batch of 21", "browser", items(21), "events"),
		bad("server batch of 501", "server", items(501), "events"),

		// Deep.
		bad("properties nine levels deep", "browser", ev(`,"properties":`+deepObject(9)), "properties"),
		bad("properties 40 levels deep", "browser", ev(`,"properties":`+deepObject(40)), "properties"),
		badRequest("properties 1,300 levels deep", ev(`,"properties":`+deepObject(1300))),
		bad("nested arrays", "browser", ev(`,"properties":{"a":`+strings.Repeat("[", 40)+strings.Repeat("]", 40)+`}`), "properties"),

		// Non-finite numbers.
		bad("property 1e309", "browser", ev(`,"properties":{"n":1e309}`), "properties"),
		bad("property -1e309 in a list", "browser", ev(`,"properties":{"n":[1,-1e309]}`), "properties"),

		// Invalid UTF-8 and control characters.
		badRequest("invalid UTF-8 in a body", ev(`,"message_id":"m-`+"\xff\xfe"+`"`)),
		{name: "invalid UTF-8 in the path", as: "browser", rawPath: "/api/v1/apps/app_%FF/events", body: ev(""),
			status: http.StatusBadRequest, code: models.CodeBadRequest},
		bad("NUL in device_id", "browser", `{"device_id":"a\u0000b","code":"view"}`, "device_id"),
		bad("bell in message_id", "browser", ev(`,"message_id":"m\u0007"`), "message_id"),
		bad("NUL in url", "browser", ev(`,"url":"https://x.example/\u0000"`), "url"),
		bad("escape in title", "browser", ev(`,"title":"\u001b[31mred"`), "title"),
		bad("NUL in a property key", "browser", ev(`,"properties":{"a\u0000b":1}`), "properties"),
		bad("NUL in code", "browser", `{"device_id":"d","code":"view\u0000"}`, "code"),
		{name: "NUL in the app id", as: "browser", rawPath: "/api/v1/apps/app_%00/events", body: ev(""),
			status: http.StatusBadRequest, code: models.CodeBadUserInput, field: "app_id"},

		// SQL-looking values are refused by their format, or are just text.
		bad("SQL in a code", "browser", `{"device_id":"d","code":"view'; DROP TABLE events; --"}`, "code"),
		bad("source in capitals", "browser", ev(`,"source":"JS"`), "source"),
		{name: "SQL in an app id", as: "browser", rawPath: "/api/v1/apps/x%27%20OR%20%271%27%3D%271/events", body: ev(""),
			status: http.StatusNotFound, code: models.CodeNotFound},

		// Out-of-range times.
		bad("occurred_at in the year 1", "server", ev(`,"occurred_at":"0001-01-01T00:00:00Z"`), "occurred_at"),
		bad("occurred_at in the year 9999", "server", ev(`,"occurred_at":"9999-12-31T23:59:59Z"`), "occurred_at"),
		bad("occurred_at in the year 10000", "server", ev(`,"occurred_at":"10000-01-01T00:00:00Z"`), "occurred_at"),
		bad("occurred_at backdated by a browser", "browser", ev(`,"occurred_at":"2020-01-01T00:00:00Z"`), "occurred_at"),

		// Not an event at all.
		badRequest("an empty body", ""),
		badRequest("an array", `[`+ev("")+`]`),
		badRequest("a string", `"view"`),
		badRequest("events that are not a list", `{"events":{"device_id":"d"}}`),
		badRequest("an event beside a batch", `{"device_id":"d","events":[]}`),
		{name: "text/plain without an Origin", as: "server", contentType: "text/plain", body: ev(""),
			status: http.StatusUnsupportedMediaType, code: models.CodeBadRequest},
		{name: "a form", as: "browser", contentType: "application/x-www-form-urlencoded", body: "device_id=d&code=view",
			status: http.StatusUnsupportedMediaType, code: models.CodeBadRequest},
	}
}

// TestJSONHostileInputs sends the JSON API's hostile-input corpus through the
// HTTP handler on both stores: each request gets its own code (never
// INTERNAL_SERVER_ERROR, never a 5xx) and changes no table.
func TestJSONHostileInputs(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *gorm.DB) {
		a := newAPI(t, db, func(c *config) {
			c.MaxBodyBytes = 64 << 10
			c.RatePerIP, c.RatePerDevice = models.Rate{}, models.Rate{}
		})
		appID, secret := a.createApp("Hostile JSON")
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
		for _, tc := range jsonHostileCorpus() {
			t.Run(tc.name, func(t *testing.T) {
				before := counts()
				status, codes, fields, raw := tc.send(t, a, appID, secret)
				if strings.Contains(raw, models.CodeInternal) || status >= 500 {
					t.Fatalf("answered %d: %.400s", status, raw)
				}
				if status != tc.status {
					t.Fatalf("HTTP %d, want %d: %.400s", status, tc.status, raw)
				}
				if len(codes) == 0 {
					t.Fatalf("answered, want %s: %.400s", tc.code, raw)
				}
				for _, code := range codes {
					if code != tc.code {
						t.Fatalf("code %s, want %s: %.400s", code, tc.code, raw)
					}
				}
				if tc.field != "" && fields[0] != tc.field {
					t.Fatalf("field %q, want %q: %.400s", fields[0], tc.field, raw)
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
		// The API still works.
		status, codes, _, raw := jsonHostileCase{name: "after the corpus", as: "browser", body: `{"device_id":"d","code":"view"}`}.send(t, a, appID, secret)
		if status != http.StatusOK || len(codes) > 0 {
			t.Fatalf("after the corpus: %d %s", status, raw)
		}
	})
}

// FuzzJSONEvents sends any body to the JSON API on SQLite, as a browser or a
// server with the secret key: whatever it is sent, it answers without
// INTERNAL_SERVER_ERROR and without a 5xx (a panic would be recovered into
// one). The hostile-input corpus is its seed; `go test -fuzz FuzzJSONEvents
// ./server` explores further.
func FuzzJSONEvents(f *testing.F) {
	a := newAPI(f, modelstest.SQLite(f), func(c *config) { c.RatePerIP, c.RatePerDevice = models.Rate{}, models.Rate{} })
	appID, secret := a.createApp("Fuzzed JSON")
	for i, tc := range jsonHostileCorpus() {
		if tc.rawPath == "" && tc.app == "" && tc.contentType == "" {
			f.Add([]byte(tc.body), uint8(i))
		}
	}
	f.Add([]byte(`{"events":[{"device_id":"d","code":"view","properties":{"n":1,"s":"x","l":[true,null]}}]}`), uint8(1))
	f.Fuzz(func(t *testing.T, body []byte, caller uint8) {
		tc := jsonHostileCase{name: "fuzz", as: "browser", body: string(body)}
		if caller%2 == 1 {
			tc.as = "server"
		}
		status, _, _, raw := tc.send(t, a, appID, secret)
		if status >= 500 || strings.Contains(raw, `"code":"INTERNAL_SERVER_ERROR"`) {
			t.Fatalf("HTTP %d for %q: %.500s", status, body, raw)
		}
	})
}
