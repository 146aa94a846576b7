package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/99designs/gqlgen/client"
	"github.com/crumbs-dev/crumbs/models"
	"github.com/crumbs-dev/crumbs/models/modelstest"
	"github.com/crumbs-dev/crumbs/server/ingest"
	"gorm.io/gorm"
)

// jsonAPI posts to the JSON ingestion API of a real HTTP server.
type jsonAPI struct {
	t   *testing.T
	a   *api
	srv *httptest.Server
	// loose leaves the answer's body to the caller.
	loose bool
}

type apiItem struct {
	Accepted  bool
	Duplicate bool
	EventID   *string `json:"event_id"`
	Error     *struct {
		Code, Message string
		Field         *string
	}
}

type apiResponse struct {
	status     int
	retryAfter string
	header     http.Header
	raw        string
	item       apiItem
	Results    []apiItem
	Error      *struct{ Code, Message string }
}

func newJSONAPI(t *testing.T, db *gorm.DB, mutate ...func(*config)) *jsonAPI {
	a := newAPI(t, db, mutate...)
	srv := httptest.NewServer(a.handler)
	t.Cleanup(srv.Close)
	return &jsonAPI{t: t, a: a, srv: srv}
}

// post sends body to the app's events endpoint; header holds name, value pairs.
func (j *jsonAPI) post(appID, body string, header ...string) apiResponse {
	j.t.Helper()
	return j.postTo("/api/v1/apps/"+appID+"/events", body, header...)
}

// postTo sends body to path on the server; header holds name, value pairs.
func (j *jsonAPI) postTo(path, body string, header ...string) apiResponse {
	j.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, j.srv.URL+path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		j.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	out := apiResponse{status: resp.StatusCode, retryAfter: resp.Header.Get("Retry-After"), header: resp.Header, raw: string(raw)}
	if j.loose {
		// The caller decodes the body itself (a webhook's "results" is a count).
		var e struct {
			Error *struct{ Code, Message string }
		}
		json.Unmarshal(raw, &e)
		out.Error = e.Error
		return out
	}
	if err := json.Unmarshal(raw, &out); err != nil {
		j.t.Fatalf("%d %s: %v", resp.StatusCode, raw, err)
	}
	json.Unmarshal(raw, &out.item)
	return out
}

func (r apiResponse) code() string {
	switch {
	case r.Error != nil:
		return r.Error.Code
	case r.item.Error != nil:
		return r.item.Error.Code
	}
	return ""
}

func TestJSONEventsEndpoint(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *gorm.DB) {
		j := newJSONAPI(t, db)
		appID, secret := j.a.createApp("JSON API")
		key := []string{"Authorization", "Bearer " + secret}

		// One event with the secret key, then its retry.
		one := `{"device_id":"d-42","code":"view","url":"https://example.com/pricing","referrer":"https://news.example/",
			"title":"Pricing","properties":{"plan":"pro","n":3},"occurred_at":"2026-01-02T03:04:05.678Z","message_id":"m-1","source":"api"}`
		r := j.post(appID, one, key...)
		if r.status != 200 || !r.item.Accepted || r.item.Duplicate || r.item.EventID == nil || r.item.Error != nil {
			t.Fatalf("one event: %d %s", r.status, r.raw)
		}
		again := j.post(appID, one, key...)
		if again.status != 200 || !again.item.Accepted || !again.item.Duplicate || *again.item.EventID != *r.item.EventID {
			t.Fatalf("retried event: %d %s", again.status, again.raw)
		}
		var stored models.Event
		if err := db.Where("id = ?", *r.item.EventID).Take(&stored).Error; err != nil {
			t.Fatal(err)
		}
		if stored.URL != "https://example.com/pricing" || stored.Title != "Pricing" || stored.Source != "api" ||
			fmt.Sprint(stored.Properties) != "map[n:3 plan:pro]" || !stored.OccurredAt.Equal(time.Date(2026, 1, 2, 3, 4, 5, 678e6, time.UTC)) {
			t.Fatalf("stored %+v", stored)
		}

		// A batch is answered per item, in order; bad items do not sink the rest.
		j.a.ok(`mutation($a: ID!) { createEventDefinition(input: {appId: $a, code: "old", name: "Old", enabled: false}) { id } }`, &map[string]any{}, client.Var("a", appID))
		batch := `{"events":[
			{"device_id":"d-1","code":"click"},
			{"device_id":"d-1","code":"nope"},
			{"device_id":"","code":"view"},
			{"device_id":"d-1","code":"view","occurred_at":"yesterday"},
			{"device_id":"d-1","code":"old"},
			{"device_id":"d-1","code":"view","properties":[1,2]},
			"not an event",
			{"device_id":"d-2","code":"submit","message_id":"m-1"}]}`
		r = j.post(appID, batch, key...)
		want := []string{"", "UNKNOWN_EVENT_CODE", "BAD_USER_INPUT device_id", "BAD_USER_INPUT occurred_at", "EVENT_DISABLED",
			"BAD_USER_INPUT properties", "BAD_USER_INPUT events", ""}
		if r.status != 200 || len(r.Results) != len(want) {
			t.Fatalf("batch: %d %s", r.status, r.raw)
		}
		for i, res := range r.Results {
			got := ""
			if res.Error != nil {
				got = res.Error.Code
				if res.Error.Field != nil {
					got += " " + *res.Error.Field
				}
			}
			if got != want[i] || res.Accepted != (want[i] == "") || (res.EventID != nil) != res.Accepted {
				t.Fatalf("batch item %d: %+v (error %q), want %q", i, res, got, want[i])
			}
		}
		if !r.Results[7].Duplicate || *r.Results[7].EventID != *again.item.EventID {
			t.Fatalf("a known message id in a batch: %+v", r.Results[7])
		}

		// One refused event gets its refusal's status.
		for body, status := range map[string]int{
			`{"device_id":"d-1","code":"nope"}`:                           http.StatusUnprocessableEntity,
			`{"device_id":"d-1","code":"old"}`:                            http.StatusUnprocessableEntity,
			`{"device_id":"d-1","code":"BAD CODE"}`:                       http.StatusBadRequest,
			`{"device_id":"d-1","code":"view","source":"carrier pigeon"}`: http.StatusBadRequest,
		} {
			if r := j.post(appID, body, key...); r.status != status || r.item.Accepted || r.item.Error == nil {
				t.Fatalf("%s: %d %s", body, r.status, r.raw)
			}
		}

		// Whole-request failures.
		for _, c := range []struct {
			name, app, body string
			header          []string
			status          int
			code            string
		}{
			{"unknown app", "app_nope", `{"device_id":"d","code":"view"}`, key, 404, "NOT_FOUND"},
			{"wrong key", appID, `{"device_id":"d","code":"view"}`, []string{"Authorization", "Bearer sk_wrong"}, 401, "UNAUTHENTICATED"},
			{"not a key", appID, `{"device_id":"d","code":"view"}`, []string{"Authorization", "Bearer eyJhbGciOi"}, 401, "UNAUTHENTICATED"},
			{"not json", appID, `{"device_id":`, key, 400, "BAD_REQUEST"},
			{"an array", appID, `[{"device_id":"d","code":"view"}]`, key, 400, "BAD_REQUEST"},
			{"event and batch", appID, `{"device_id":"d","events":[]}`, key, 400, "BAD_REQUEST"},
			{"too many", appID, `{"events":[` + strings.Repeat(`{"device_id":"d","code":"view"},`, 500) + `{"device_id":"d","code":"view"}]}`, key, 400, "BAD_USER_INPUT"},
			{"too large", appID, `{"device_id":"d","code":"view","title":"` + strings.Repeat("x", 3<<20) + `"}`, key, 413, "PAYLOAD_TOO_LARGE"},
			{"form", appID, `a=b`, []string{"Content-Type", "application/x-www-form-urlencoded"}, 415, "BAD_REQUEST"},
		} {
			if r := j.post(c.app, c.body, c.header...); r.status != c.status || r.Error == nil || r.Error.Code != c.code {
				t.Fatalf("%s: %d %s", c.name, r.status, r.raw)
			}
		}
		if r := j.post(appID, `{"events":[]}`, key...); r.status != 200 || len(r.Results) != 0 || !strings.Contains(r.raw, `"results":[]`) {
			t.Fatalf("empty batch: %d %s", r.status, r.raw)
		}
	})
}

// Browsers (no key) are held to the GraphQL trigger's rules: the app's
// origins, batches of 20, recent times, per-IP limits; sendBeacon's
// text/plain works, and CORS answers as on /graphql.
func TestJSONEventsFromBrowsers(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *gorm.DB) {
		j := newJSONAPI(t, db, func(c *config) {
			c.RatePerIP = models.Rate{PerSecond: 0.01, Burst: 30}
			c.RatePerDevice = models.Rate{}
		})
		appID, secret := j.a.createApp("Browser")
		j.a.ok(`mutation($a: ID!) { updateApp(id: $a, input: {allowedOrigins: ["https://shop.example"]}) { id } }`, &map[string]any{}, client.Var("a", appID))
		origin := []string{"Origin", "https://shop.example"}

		r := j.post(appID, `{"device_id":"b-1","code":"view"}`, "Origin", "https://shop.example", "Content-Type", "text/plain;charset=UTF-8")
		if r.status != 200 || !r.item.Accepted || r.header.Get("Access-Control-Allow-Origin") != "https://shop.example" {
			t.Fatalf("beacon: %d %s %v", r.status, r.raw, r.header)
		}
		if r := j.post(appID, `{"device_id":"b-1","code":"view"}`, "Origin", "https://evil.example"); r.status != 403 || r.code() != "FORBIDDEN" {
			t.Fatalf("foreign origin: %d %s", r.status, r.raw)
		}
		items := strings.TrimSuffix(strings.Repeat(`{"device_id":"b-1","code":"view"},`, 21), ",")
		if r := j.post(appID, `{"events":[`+items+`]}`, origin...); r.status != 400 || r.code() != "BAD_USER_INPUT" || !strings.Contains(r.raw, `"field":"events"`) {
			t.Fatalf("browser batch of 21: %d %s", r.status, r.raw)
		}
		old := time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)
		if r := j.post(appID, `{"device_id":"b-1","code":"view","occurred_at":"`+old+`"}`, origin...); r.status != 400 || r.item.Error == nil || *r.item.Error.Field != "occurred_at" {
			t.Fatalf("backdated browser event: %d %s", r.status, r.raw)
		}
		if r := j.post(appID, `{"device_id":"b-1","code":"view","occurred_at":"`+old+`"}`, "Authorization", "Bearer "+secret); r.status != 200 {
			t.Fatalf("backdated server event: %d %s", r.status, r.raw)
		}

		// Preflight, as for /graphql.
		req, _ := http.NewRequest(http.MethodOptions, j.srv.URL+"/api/v1/apps/"+appID+"/events", nil)
		req.Header.Set("Origin", "https://shop.example")
		req.Header.Set("Access-Control-Request-Method", "POST")
		req.Header.Set("Access-Control-Request-Headers", "content-type")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode/100 != 2 || resp.Header.Get("Access-Control-Allow-Origin") != "https://shop.example" ||
			!strings.Contains(strings.ToLower(resp.Header.Get("Access-Control-Allow-Headers")), "content-type") {
			t.Fatalf("preflight: %d %v", resp.StatusCode, resp.Header)
		}

		// The per-IP burst of 30 is spent: a batch of which nothing passes is a 429.
		for range 3 {
			j.post(appID, `{"events":[`+strings.TrimSuffix(strings.Repeat(`{"device_id":"b-2","code":"view"},`, 10), ",")+`]}`, origin...)
		}
		r = j.post(appID, `{"events":[{"device_id":"b-3","code":"view"},{"device_id":"b-4","code":"view"}]}`, origin...)
		if r.status != 429 || r.retryAfter == "" || r.code() != "RATE_LIMITED" {
			t.Fatalf("rate-limited batch: %d %q %s", r.status, r.retryAfter, r.raw)
		}
		r = j.post(appID, `{"device_id":"b-3","code":"view"}`, origin...)
		if r.status != 429 || r.retryAfter == "" || r.code() != "RATE_LIMITED" {
			t.Fatalf("rate-limited event: %d %q %s", r.status, r.retryAfter, r.raw)
		}
		if r := j.post(appID, `{"device_id":"b-3","code":"view"}`, "Authorization", "Bearer "+secret); r.status != 200 {
			t.Fatalf("a server was limited per IP: %d %s", r.status, r.raw)
		}
	})
}

// jsonEventsOver posts events to the JSON API as a browser (no secret) or,
// with secret, a server, and reads the answer the way storefault_test.go
// reads GraphQL ones: a whole-request error or each item's error becomes
// an entry of errors, and accepted outcomes a "trigger" or "triggerBatch"
// datum, so that ack, wantAccepted and wantUnavailable judge it.
func jsonEventsOver(base, appID, secret string, ids ...string) httpAnswer {
	events := make([]map[string]any, len(ids))
	for i, id := range ids {
		events[i] = map[string]any{"device_id": "fault-dev", "code": "view", "message_id": id}
	}
	var body any = map[string]any{"events": events}
	what := "JSON batch " + strings.Join(ids, ",")
	if len(ids) == 1 && secret == "" {
		body, what = events[0], "JSON event "+ids[0]
	}
	raw, _ := json.Marshal(body)
	req, err := http.NewRequest(http.MethodPost, base+"/api/v1/apps/"+appID+"/events", strings.NewReader(string(raw)))
	if err != nil {
		return httpAnswer{what: what, err: err}
	}
	req.Header.Set("Content-Type", "application/json")
	if secret != "" {
		req.Header.Set("Authorization", "Bearer "+secret)
	}
	resp, err := faultClient.Do(req)
	if err != nil {
		return httpAnswer{what: what, err: err}
	}
	defer resp.Body.Close()
	a := httpAnswer{what: what, status: resp.StatusCode, retryAfter: resp.Header.Get("Retry-After"), data: map[string]json.RawMessage{}}
	var out struct {
		apiItem
		Results []apiItem
		Error   *struct{ Code, Message string }
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		a.err = fmt.Errorf("HTTP %d, body: %w", resp.StatusCode, err)
		return a
	}
	items := out.Results
	switch {
	case out.Error != nil:
		a.refuse(out.Error.Code, out.Error.Message)
		return a
	case len(ids) == 1 && secret == "":
		items = []apiItem{out.apiItem}
	}
	var accepted []map[string]bool
	for _, it := range items {
		if it.Error != nil {
			a.refuse(it.Error.Code, it.Error.Message)
		}
		accepted = append(accepted, map[string]bool{"accepted": it.Accepted})
	}
	if len(a.errors) == 0 {
		key, v := "triggerBatch", any(accepted)
		if len(ids) == 1 && secret == "" {
			key, v = "trigger", accepted[0]
		}
		a.data[key], _ = json.Marshal(v)
	}
	return a
}

// The JSON API answers store faults as GraphQL does: UNAVAILABLE, HTTP 503
// with Retry-After, a message that tells nothing of the store, and nothing
// acknowledged is lost or stored twice once the client retries.
func TestJSONEventsStoreFaults(t *testing.T) {
	for _, fault := range storeFaults {
		t.Run(fault.name, func(t *testing.T) {
			proxy, db, a, base := proxiedServer(t)
			appID, secret := a.createApp("JSON faults " + fault.name)
			acked := messageIDs("json-"+fault.name+"-acked", 3)
			ack(t, func() httpAnswer { return jsonEventsOver(base, appID, "", acked[0]) })
			ack(t, func() httpAnswer { return jsonEventsOver(base, appID, secret, acked[1:]...) })

			fault.break_(proxy)
			mend := func() { fault.fix(proxy) }
			refused := messageIDs("json-"+fault.name+"-refused", 3)
			answers := make(chan httpAnswer, 2)
			go func() { answers <- jsonEventsOver(base, appID, "", refused[0]) }()
			go func() { answers <- jsonEventsOver(base, appID, secret, refused[1:]...) }()
			for _, ans := range collectAnswers(t, answers, 2, mend) {
				wantUnavailable(t, ans, "the store is unavailable; retry later")
			}
			mend()
			for _, id := range refused {
				ack(t, func() httpAnswer { return jsonEventsOver(base, appID, "", id) })
			}
			wantStoredOnce(t, db, base, appID, append(acked, refused...))
		})
	}
}

// A SQLite file locked by another process: the JSON API waits the busy
// timeout and answers UNAVAILABLE, then stores the retry.
func TestJSONEventsLockedSQLite(t *testing.T) {
	db, path, a, base := sqliteFileServer(t)
	appID, _ := a.createApp("Locked JSON")
	ack(t, func() httpAnswer { return jsonEventsOver(base, appID, "", "json-locked-acked") })
	a.settle() // nothing left for the rollups consumer to wait on the lock for

	unlock := lockSQLite(t, path)
	answers := make(chan httpAnswer, 1)
	go func() { answers <- jsonEventsOver(base, appID, "", "json-locked-refused") }()
	for _, ans := range collectAnswers(t, answers, 1, unlock) {
		wantUnavailable(t, ans, "the store is unavailable; retry later")
	}
	unlock()
	ack(t, func() httpAnswer { return jsonEventsOver(base, appID, "", "json-locked-refused") })
	wantStoredOnce(t, db, base, appID, []string{"json-locked-acked", "json-locked-refused"})
}

// Numbers in properties and lead fields read back through GraphQL exactly
// as they were sent and stored (an export gives the same digits): integers
// beyond 2^53 and decimals a double cannot hold are not rounded, also
// after a lead's fields were merged again.
func TestNumbersReadBackAsSent(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *gorm.DB) {
		j := newJSONAPI(t, db)
		appID, secret := j.a.createApp("Numbers")
		key := []string{"Authorization", "Bearer " + secret}
		numbers := `{"id":12345678901234567890,"odd":9007199254740993,"price":0.30000000000000004441,"neg":-123456789012345678901234567890,"list":[18446744073709551615]}`
		if r := j.post(appID, `{"device_id":"num-1","code":"view","properties":`+numbers+`}`, key...); r.status != 200 {
			t.Fatalf("trigger: %d %s", r.status, r.raw)
		}
		for _, fields := range []string{numbers, `{"plan":"pro"}`} { // the second merges into the first
			if r := j.postTo("/api/v1/apps/"+appID+"/identify", `{"device_id":"num-1","email":"num@example.com","fields":`+fields+`}`, key...); r.status != 200 {
				t.Fatalf("identify: %d %s", r.status, r.raw)
			}
		}
		graphql := func(query string, vars ...string) string {
			t.Helper()
			body := fmt.Sprintf(`{"query":%q,"variables":{"a":%q%s}}`, query, appID, strings.Join(vars, ""))
			req, _ := http.NewRequest(http.MethodPost, j.srv.URL+"/graphql", strings.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Authorization", "Bearer "+j.a.ownerToken)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			raw, _ := io.ReadAll(resp.Body)
			return string(raw)
		}
		// The same numbers through GraphQL's trigger, in its variables.
		if raw := graphql(`mutation($a: ID!, $p: JSON) { trigger(input: {appId: $a, deviceId: "num-2", code: "view", properties: $p}) { accepted } }`,
			`,"p":`+numbers); !strings.Contains(raw, `"accepted":true`) {
			t.Fatalf("GraphQL trigger: %s", raw)
		}
		want := []string{`"id":12345678901234567890`, `"odd":9007199254740993`, `"price":0.30000000000000004441`,
			`"neg":-123456789012345678901234567890`, `"list":[18446744073709551615]`}
		for name, query := range map[string]string{
			"properties":                      `query($a: ID!) { device(appId: $a, deviceId: "num-1") { timeline(first: 1) { edges { node { properties } } } } }`,
			"properties sent through GraphQL": `query($a: ID!) { device(appId: $a, deviceId: "num-2") { timeline(first: 1) { edges { node { properties } } } } }`,
			"lead fields":                     `query($a: ID!) { leadByEmail(appId: $a, email: "num@example.com") { fields } }`,
		} {
			raw := graphql(query)
			for _, w := range want {
				if !strings.Contains(raw, w) {
					t.Errorf("%s: %s lacks %s", name, raw, w)
				}
			}
		}
		req, _ := http.NewRequest(http.MethodGet, j.srv.URL+"/api/v1/apps/"+appID+"/export", nil)
		req.Header.Set("Authorization", "Bearer "+j.a.ownerToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		export, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		for _, w := range want {
			if !strings.Contains(string(export), w) {
				t.Errorf("export: %s lacks %s", export, w)
			}
		}
	})
}

// Every endpoint of the ingestion APIs answers a method it does not serve
// with 405, its Allow header and the JSON error body of every other
// whole-request refusal, not ServeMux's plain text (curl -X GET
// .../events answered "Method Not Allowed" as text/plain).
func TestIngestWrongMethodAnswersJSON(t *testing.T) {
	j := newJSONAPI(t, modelstest.SQLite(t))
	for _, pattern := range ingest.New(ingest.Options{}).Patterns() {
		method, path, _ := strings.Cut(pattern, " ")
		path = strings.NewReplacer("{appId}", "app_x", "{ingestToken}", "it_x", "{integration}", "generic").Replace(path)
		wrong, allow := http.MethodGet, method
		if method == http.MethodGet {
			wrong, allow = http.MethodPost, "GET, HEAD"
		}
		j.refusal(wrong, path, http.StatusMethodNotAllowed, allow, models.CodeBadRequest)
	}
}

// The rest of the API's paths answer the same way: the export's other
// methods 405, and a path under an API prefix that is no endpoint 404
// NOT_FOUND, where ServeMux answered both in plain text (POST .../export
// "Method Not Allowed", GET /api/v1/nope "404 page not found").
func TestAPIUnknownPathsAnswerJSON(t *testing.T) {
	j := newJSONAPI(t, modelstest.SQLite(t))
	for _, c := range []struct {
		method, path string
		status       int
		allow, code  string
	}{
		{http.MethodPost, "/api/v1/apps/app_x/export", http.StatusMethodNotAllowed, "GET, HEAD", models.CodeBadRequest},
		{http.MethodDelete, "/api/v1/apps/app_x/export", http.StatusMethodNotAllowed, "GET, HEAD", models.CodeBadRequest},
		{http.MethodGet, "/api/v1/", http.StatusNotFound, "", models.CodeNotFound},
		{http.MethodGet, "/api/v1/nope", http.StatusNotFound, "", models.CodeNotFound},
		{http.MethodPost, "/api/v1/apps/app_x/event", http.StatusNotFound, "", models.CodeNotFound},
		{http.MethodPost, "/api/v1/apps/app_x/events/more", http.StatusNotFound, "", models.CodeNotFound},
		{http.MethodGet, "/api/v1/apps/app_x", http.StatusNotFound, "", models.CodeNotFound},
		{http.MethodPost, "/v1/nope", http.StatusNotFound, "", models.CodeNotFound},
		{http.MethodGet, "/v1/", http.StatusNotFound, "", models.CodeNotFound},
		{http.MethodPost, "/webhooks/it_x/generic/nope", http.StatusNotFound, "", models.CodeNotFound},
		{http.MethodPost, "/webhooks/it_x", http.StatusNotFound, "", models.CodeNotFound},
	} {
		j.refusal(c.method, c.path, c.status, c.allow, c.code)
	}
}

// refusal sends an empty JSON object to path and requires a whole-request
// refusal of the API: status, Allow header, and {"error":{"code"}} in JSON.
func (j *jsonAPI) refusal(method, path string, status int, allow, code string) {
	j.t.Helper()
	req, _ := http.NewRequest(method, j.srv.URL+path, strings.NewReader(`{}`))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		j.t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var body struct {
		Error *struct{ Code, Message string }
	}
	json.Unmarshal(raw, &body)
	if resp.StatusCode != status || resp.Header.Get("Allow") != allow ||
		resp.Header.Get("Content-Type") != "application/json" || body.Error == nil || body.Error.Code != code {
		j.t.Errorf("%s %s: %d Allow %q %s %s; want %d Allow %q %s", method, path, resp.StatusCode, resp.Header.Get("Allow"),
			resp.Header.Get("Content-Type"), raw, status, allow, code)
	}
}
