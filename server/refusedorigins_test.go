package main

import (
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

type refusedOrigin struct {
	Origin                  string
	Count                   int
	FirstSeenAt, LastSeenAt string
}

// refusedOrigins reads app { refusedOrigins } until it holds want distinct
// origins and its counts add up to total (the writer counts about once a
// second), or fails.
func refusedOrigins(t *testing.T, a *api, appID string, want, total int) []refusedOrigin {
	t.Helper()
	var last []refusedOrigin
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		var out struct {
			App struct{ RefusedOrigins []refusedOrigin }
		}
		a.ok(`query($a: ID!) { app(id: $a) { refusedOrigins(first: 500) { origin count firstSeenAt lastSeenAt } } }`, &out, client.Var("a", appID))
		last = out.App.RefusedOrigins
		sum := 0
		for _, o := range last {
			sum += o.Count
		}
		if len(last) == want && sum == total {
			return last
		}
	}
	t.Fatalf("refusedOrigins: %+v, want %d origins counting %d", last, want, total)
	return nil
}

// Browser requests from an origin the app does not allow (triggers and
// identify) are counted per app and origin, on GraphQL and the JSON API, a
// batch once; what is stored
// is cleaned and capped, and an app keeps at most 100 origins, the least
// recently seen dropped.
func TestRefusedOrigins(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *gorm.DB) {
		j := newJSONAPI(t, db, func(c *config) { c.RatePerIP, c.RatePerDevice = models.Rate{}, models.Rate{} })
		appID, _ := j.a.createApp("Origins")
		otherID, _ := j.a.createApp("Other")
		for _, id := range []string{appID, otherID} {
			j.a.ok(`mutation($a: ID!) { updateApp(id: $a, input: {allowedOrigins: ["https://shop.example"]}) { id } }`, &map[string]any{}, client.Var("a", id))
		}
		if got := gqlTriggerFrom(t, j, appID, "https://shop.example", "d-ok"); got != "accepted" {
			t.Fatalf("allowed origin: %s", got)
		}
		typo := "https://shopp.example"
		for _, devices := range [][]string{{"d-1"}, {"d-2", "d-3", "d-4"}} {
			if got := gqlTriggerFrom(t, j, appID, typo, devices...); !strings.HasPrefix(got, "FORBIDDEN") {
				t.Fatalf("mistyped origin: %s", got)
			}
		}
		if r := j.post(appID, `{"device_id":"d-5","code":"view"}`, "Origin", typo); r.status != 403 {
			t.Fatalf("JSON API, refused origin: %d %s", r.status, r.raw)
		}
		if r := j.post(appID, `{"events":[{"device_id":"d-6","code":"view"},{"device_id":"d-6","code":"click"}]}`, "Origin", "HTTPS://WWW.Shop.example"); r.status != 403 {
			t.Fatalf("JSON API batch, refused origin: %d %s", r.status, r.raw)
		}
		// identify from the mistyped origin counts too, on GraphQL and the JSON API.
		if r := j.identify(appID, `{"device_id":"d-8","email":"ann@example.com"}`, "Origin", typo); r.status != 403 {
			t.Fatalf("JSON API identify, refused origin: %d %s", r.status, r.raw)
		}
		if code := gqlIdentifyFrom(t, j, appID, typo, "d-9"); code != "FORBIDDEN" {
			t.Fatalf("GraphQL identify, refused origin: %s", code)
		}
		long := "https://" + strings.Repeat("x", 200) + ".example"
		if r := j.post(appID, `{"device_id":"d-7","code":"view"}`, "Origin", long); r.status != 403 {
			t.Fatalf("JSON API, long origin: %d %s", r.status, r.raw)
		}
		got := refusedOrigins(t, j.a, appID, 3, 7)
		counts := map[string]int{}
		for _, o := range got {
			counts[o.Origin] = o.Count
			first, err1 := time.Parse(time.RFC3339Nano, o.FirstSeenAt)
			last, err2 := time.Parse(time.RFC3339Nano, o.LastSeenAt)
			if err1 != nil || err2 != nil || last.Before(first) {
				t.Errorf("times of %+v", o)
			}
		}
		capped := ("https://" + strings.Repeat("x", 200))[:100]
		if counts[typo] != 5 || counts["https://www.shop.example"] != 1 || counts[capped] != 1 {
			t.Fatalf("counts %v", counts)
		}
		refusedOrigins(t, j.a, otherID, 0, 0)

		// A flood of made-up origins keeps at most 100, the most recent.
		for i := range 120 {
			if r := j.post(otherID, `{"device_id":"d","code":"view"}`, "Origin", fmt.Sprintf("https://junk%03d.example", i)); r.status != 403 {
				t.Fatalf("flood %d: %d %s", i, r.status, r.raw)
			}
			if i%40 == 39 {
				// Flushes between the waves keep the order by last seen.
				time.Sleep(1200 * time.Millisecond)
			}
		}
		// The first wave was written a second before the others: 20 of it
		// stay (which ones, among origins seen in the same millisecond, is up
		// to the order of their names), every later one stays.
		var kept []string
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
			kept = nil
			if err := db.Model(&models.RefusedOrigin{}).Where("app_id = (SELECT id FROM apps WHERE public_id = ?)", otherID).Order("origin").Pluck("origin", &kept).Error; err != nil {
				t.Fatal(err)
			}
			if len(kept) == 100 && kept[99] == "https://junk119.example" {
				break
			}
		}
		if len(kept) != 100 || kept[20] != "https://junk040.example" || kept[99] != "https://junk119.example" {
			t.Fatalf("kept %d: %v", len(kept), kept)
		}
		// The other app's counts are untouched.
		refusedOrigins(t, j.a, appID, 3, 7)
	})
}

// gqlTriggerFrom sends a browser's trigger (one device) or triggerBatch from
// origin and returns "accepted" or the first error code.
func gqlTriggerFrom(t *testing.T, j *jsonAPI, appID, origin string, devices ...string) string {
	t.Helper()
	return strings.Join(gqlTriggerOrigin(t, j.srv, appID, "", chromeUA, origin, devices...), ",")
}

// gqlIdentifyFrom sends a browser's identify from origin and returns its
// error code, or "" when it was accepted.
func gqlIdentifyFrom(t *testing.T, j *jsonAPI, appID, origin, device string) string {
	t.Helper()
	body, _ := json.Marshal(map[string]any{
		"query":     `mutation($in: IdentifyInput!) { identify(input: $in) { moved } }`,
		"variables": map[string]any{"in": map[string]any{"appId": appID, "deviceId": device, "email": "bob@example.com"}},
	})
	req, _ := http.NewRequest(http.MethodPost, j.srv.URL+"/graphql", strings.NewReader(string(body)))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", chromeUA)
	req.Header.Set("Origin", origin)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		Errors []struct {
			Extensions struct{ Code string }
		}
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatal(err)
	}
	if len(out.Errors) == 0 {
		return ""
	}
	return out.Errors[0].Extensions.Code
}

// An app whose saved entries no browser can send (set aside by migration
// 2026120410_allowed_origins) shows them with why, keeps refusing browsers
// while its list is empty, and takes a new list in their place.
func TestSetAsideOrigins(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *gorm.DB) {
		j := newJSONAPI(t, db, func(c *config) { c.RatePerIP, c.RatePerDevice = models.Rate{}, models.Rate{} })
		appID, _ := j.a.createApp("Set aside")
		if err := db.Model(&models.App{}).Where("public_id = ?", appID).
			Update("set_aside_origins", models.StringList{"https://*.shop.example"}).Error; err != nil {
			t.Fatal(err)
		}
		type setAside struct{ Entry, Reason string }
		read := func() (allowed []string, aside []setAside) {
			var out struct {
				App struct {
					AllowedOrigins  []string
					SetAsideOrigins []setAside
				}
			}
			j.a.ok(`query($a: ID!) { app(id: $a) { allowedOrigins setAsideOrigins { entry reason } } }`, &out, client.Var("a", appID))
			return out.App.AllowedOrigins, out.App.SetAsideOrigins
		}
		if allowed, aside := read(); len(allowed) != 0 || len(aside) != 1 || aside[0].Entry != "https://*.shop.example" ||
			!strings.Contains(aside[0].Reason, "browsers send no wildcard") {
			t.Fatalf("allowedOrigins %q, setAsideOrigins %+v", allowed, aside)
		}
		if got := gqlTriggerFrom(t, j, appID, "https://a.shop.example", "d-1"); !strings.HasPrefix(got, "FORBIDDEN") {
			t.Fatalf("browser trigger while only set-aside entries: %s", got)
		}
		if r := j.post(appID, `{"device_id":"d-2","code":"view"}`, "Origin", "https://a.shop.example"); r.status != 403 {
			t.Fatalf("JSON API while only set-aside entries: %d %s", r.status, r.raw)
		}
		j.a.ok(`mutation($a: ID!) { updateApp(id: $a, input: {allowedOrigins: ["https://a.shop.example"]}) { id } }`, &map[string]any{}, client.Var("a", appID))
		if allowed, aside := read(); len(allowed) != 1 || len(aside) != 0 {
			t.Fatalf("after updateApp: allowedOrigins %q, setAsideOrigins %+v", allowed, aside)
		}
		if got := gqlTriggerFrom(t, j, appID, "https://a.shop.example", "d-3"); got != "accepted" {
			t.Fatalf("browser trigger from the new list: %s", got)
		}
	})
}
