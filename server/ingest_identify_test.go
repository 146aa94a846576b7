package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/99designs/gqlgen/client"
	"github.com/crumbs-dev/crumbs/models"
	"github.com/crumbs-dev/crumbs/models/modelstest"
	"gorm.io/gorm"
)

type identifyAnswer struct {
	apiResponse
	Moved    bool
	DeviceID string  `json:"device_id"`
	LeadID   *string `json:"lead_id"`
}

func (j *jsonAPI) identify(appID, body string, header ...string) identifyAnswer {
	j.t.Helper()
	r := j.postTo("/api/v1/apps/"+appID+"/identify", body, header...)
	out := identifyAnswer{apiResponse: r}
	json.Unmarshal([]byte(r.raw), &out)
	return out
}

// leadOf reads the lead of a device back through GraphQL, as the dashboard does.
func leadOf(a *api, appID, device string) (email string, fields map[string]any) {
	a.t.Helper()
	var out struct {
		Device struct {
			Lead *struct {
				Email  string
				Fields map[string]any
			}
		}
	}
	a.ok(`query($a: ID!, $d: ID!) { device(appId: $a, deviceId: $d) { lead { email fields } } }`, &out, client.Var("a", appID), client.Var("d", device))
	if out.Device.Lead == nil {
		return "", nil
	}
	return out.Device.Lead.Email, out.Device.Lead.Fields
}

// POST /api/v1/apps/{appId}/identify does what GraphQL's identify does, with
// the key in either header or from a browser on the app's origins, and
// answers a browser nothing beyond what it sent.
func TestJSONIdentify(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *gorm.DB) {
		j := newJSONAPI(t, db)
		appID, secret := j.a.createApp("JSON identify")
		j.a.ok(`mutation($a: ID!) { updateApp(id: $a, input: {allowedOrigins: ["https://shop.example"]}) { id } }`, &map[string]any{}, client.Var("a", appID))

		r := j.identify(appID, `{"device_id":"d-1","email":"Ada@Example.com","name":"Ada","fields":{"plan":"pro","seats":3}}`, "Authorization", "Bearer "+secret)
		if r.status != 200 || r.Moved || r.DeviceID != "d-1" || r.LeadID == nil {
			t.Fatalf("identify with the key: %d %s", r.status, r.raw)
		}
		if email, fields := leadOf(j.a, appID, "d-1"); email != "Ada@Example.com" || fmt.Sprint(fields) != "map[plan:pro seats:3]" {
			t.Fatalf("lead of d-1: %q %v", email, fields)
		}
		// X-App-Secret, the header Bread & Butter-style clients send; the
		// device moves to another lead, and fields merge (null removes one).
		r = j.identify(appID, `{"device_id":"d-1","email":"grace@example.com","fields":{"plan":"team"}}`, "X-App-Secret", secret)
		if r.status != 200 || !r.Moved || r.LeadID == nil {
			t.Fatalf("identify with X-App-Secret: %d %s", r.status, r.raw)
		}
		r = j.identify(appID, `{"device_id":"d-1","email":"grace@example.com","fields":{"plan":null,"role":"admin"}}`, "X-App-Secret", secret)
		if email, fields := leadOf(j.a, appID, "d-1"); r.status != 200 || r.Moved || email != "grace@example.com" || fmt.Sprint(fields) != "map[role:admin]" {
			t.Fatalf("merged fields: %d %s; lead %q %v", r.status, r.raw, email, fields)
		}

		// A browser on an allowed origin, also with sendBeacon's text/plain.
		r = j.identify(appID, `{"device_id":"b-1","email":"ada@example.com"}`, "Origin", "https://shop.example", "Content-Type", "text/plain")
		if r.status != 200 || r.DeviceID != "b-1" || r.LeadID != nil || strings.Contains(r.raw, "ada") {
			t.Fatalf("browser identify: %d %s", r.status, r.raw)
		}
		if email, _ := leadOf(j.a, appID, "b-1"); email != "Ada@Example.com" {
			t.Fatalf("browser's device joined %q", email)
		}

		for _, c := range []struct {
			name, body string
			header     []string
			status     int
			code       string
			field      string
		}{
			{"foreign origin", `{"device_id":"b-2","email":"x@example.com"}`, []string{"Origin", "https://evil.example"}, 403, "FORBIDDEN", ""},
			{"no key, no origin", `{"device_id":"b-2","email":"x@example.com"}`, nil, 401, "UNAUTHENTICATED", ""},
			{"wrong key", `{"device_id":"b-2","email":"x@example.com"}`, []string{"X-App-Secret", "sk_wrong"}, 401, "UNAUTHENTICATED", ""},
			{"two different keys", `{"device_id":"b-2","email":"x@example.com"}`, []string{"X-App-Secret", "sk_wrong", "Authorization", "Bearer " + secret}, 401, "UNAUTHENTICATED", ""},
			{"bad email", `{"device_id":"b-2","email":"not an email"}`, []string{"X-App-Secret", secret}, 400, "BAD_USER_INPUT", "email"},
			{"no device", `{"email":"x@example.com"}`, []string{"X-App-Secret", secret}, 400, "BAD_USER_INPUT", "device_id"},
			{"fields not an object", `{"device_id":"b-2","email":"x@example.com","fields":[1]}`, []string{"X-App-Secret", secret}, 400, "BAD_USER_INPUT", "fields"},
			{"not json", `{"device_id":`, []string{"X-App-Secret", secret}, 400, "BAD_REQUEST", ""},
		} {
			r := j.identify(appID, c.body, c.header...)
			if r.status != c.status || r.Error == nil || r.Error.Code != c.code || c.field != "" && !strings.Contains(r.raw, `"field":"`+c.field+`"`) {
				t.Fatalf("%s: %d %s", c.name, r.status, r.raw)
			}
		}
	})
}

// Keyed calls are servers importing or relaying for many visitors: a batch
// of 100 backdated events for one device is stored whole on the JSON API
// and through GraphQL, and keyed identifies are not limited per device,
// while browsers still are.
func TestKeyedCallsSkipDeviceLimit(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *gorm.DB) {
		j := newJSONAPI(t, db, func(c *config) { c.RatePerDevice = models.Rate{PerSecond: 0.001, Burst: 3} })
		appID, secret := j.a.createApp("Import")
		start := time.Now().Add(-48 * time.Hour).UTC()
		var items []string
		var gqlItems []map[string]any
		for i := range 100 {
			at := start.Add(time.Duration(i) * time.Minute).Format(time.RFC3339)
			items = append(items, fmt.Sprintf(`{"device_id":"imported","code":"view","occurred_at":%q,"message_id":"imp-%d"}`, at, i))
			gqlItems = append(gqlItems, map[string]any{"appId": appID, "deviceId": "imported-gql", "code": "view", "occurredAt": at})
		}
		r := j.post(appID, `{"events":[`+strings.Join(items, ",")+`]}`, "Authorization", "Bearer "+secret)
		if r.status != 200 || len(r.Results) != 100 {
			t.Fatalf("keyed import: %d %s", r.status, r.raw)
		}
		for i, it := range r.Results {
			if !it.Accepted {
				t.Fatalf("JSON item %d refused: %+v", i, it.Error)
			}
		}
		var out struct {
			TriggerBatch []struct {
				Accepted bool
				Error    *struct{ Code string }
			}
		}
		j.a.ok(`mutation($in: [TriggerInput!]!) { triggerBatch(inputs: $in) { accepted error { code } } }`, &out,
			client.Var("in", gqlItems), client.AddHeader("Authorization", "Bearer "+secret))
		for i, it := range out.TriggerBatch {
			if !it.Accepted {
				t.Fatalf("GraphQL item %d refused: %+v", i, it.Error)
			}
		}
		for i := range 5 {
			if r := j.identify(appID, `{"device_id":"imported","email":"bulk@example.com"}`, "X-App-Secret", secret); r.status != 200 {
				t.Fatalf("keyed identify %d: %d %s", i, r.status, r.raw)
			}
		}
		app, err := models.AppByPublicID(context.Background(), db, appID)
		if err != nil {
			t.Fatal(err)
		}
		var n int64
		db.Model(&models.Event{}).Where("app_id = ? AND device_id IN ?", app.ID, []string{"imported", "imported-gql"}).Count(&n)
		if n != 200 {
			t.Fatalf("stored %d of 200 imported events", n)
		}

		// A browser's device still has a burst of 3.
		for i := range 3 {
			if r := j.post(appID, `{"device_id":"tab","code":"view"}`, "Origin", "https://shop.example"); r.status != 200 {
				t.Fatalf("browser event %d: %d %s", i, r.status, r.raw)
			}
		}
		if r := j.post(appID, `{"device_id":"tab","code":"view"}`, "Origin", "https://shop.example"); r.status != 429 || r.retryAfter == "" || r.code() != "RATE_LIMITED" {
			t.Fatalf("browser over its device limit: %d %s", r.status, r.raw)
		}
		if r := j.identify(appID, `{"device_id":"tab","email":"tab@example.com"}`, "Origin", "https://shop.example"); r.status != 429 || r.retryAfter == "" {
			t.Fatalf("browser identify over its device limit: %d %s", r.status, r.raw)
		}
	})
}

// Identify answers a store fault UNAVAILABLE with 503 and Retry-After.
func TestJSONIdentifyStoreFault(t *testing.T) {
	proxy, _, a, base := proxiedServer(t)
	appID, secret := a.createApp("Identify faults")
	post := func() identifyAnswer {
		req, _ := http.NewRequest(http.MethodPost, base+"/api/v1/apps/"+appID+"/identify", strings.NewReader(`{"device_id":"f-1","email":"f@example.com"}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-App-Secret", secret)
		resp, err := faultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out identifyAnswer
		json.NewDecoder(resp.Body).Decode(&out)
		out.status, out.retryAfter = resp.StatusCode, resp.Header.Get("Retry-After")
		return out
	}
	if r := post(); r.status != 200 {
		t.Fatalf("before the fault: %d", r.status)
	}
	proxy.Stop()
	r := post()
	proxy.Start()
	if r.status != 503 || r.retryAfter != "5" || r.Error == nil || r.Error.Code != "UNAVAILABLE" || r.Error.Message != "the store is unavailable; retry later" {
		t.Fatalf("stopped store: %d %q %+v", r.status, r.retryAfter, r.Error)
	}
}
