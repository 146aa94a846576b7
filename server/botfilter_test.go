package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/crumbs-dev/crumbs/models"
	"github.com/crumbs-dev/crumbs/models/modelstest"
	"gorm.io/gorm"
)

const (
	googlebotUA = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
	headlessUA  = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/131.0.0.0 Safari/537.36"
	chromeUA    = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
	cubotUA     = "Mozilla/5.0 (Linux; Android 10; CUBOT_X50) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Mobile Safari/537.36"
)

// gqlTrigger sends a browser's (or, with secret, a server's) trigger or
// triggerBatch through /graphql with a User-Agent, and returns each item's
// outcome: "accepted" or the error code.
func gqlTrigger(t *testing.T, srv *httptest.Server, appID, secret, ua string, devices ...string) []string {
	t.Helper()
	return gqlTriggerOrigin(t, srv, appID, secret, ua, "https://shop.example", devices...)
}

// gqlTriggerOrigin is gqlTrigger from a browser at origin.
func gqlTriggerOrigin(t *testing.T, srv *httptest.Server, appID, secret, ua, origin string, devices ...string) []string {
	t.Helper()
	var inputs []map[string]any
	for _, d := range devices {
		inputs = append(inputs, map[string]any{"appId": appID, "deviceId": d, "code": "view", "source": "js"})
	}
	query := `mutation($in: TriggerInput!) { trigger(input: $in) { accepted } }`
	vars := map[string]any{"in": inputs[0]}
	if len(inputs) > 1 {
		query = `mutation($in: [TriggerInput!]!) { triggerBatch(inputs: $in) { accepted error { code } } }`
		vars = map[string]any{"in": inputs}
	}
	body, _ := json.Marshal(map[string]any{"query": query, "variables": vars})
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/graphql", strings.NewReader(string(body)))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", ua)
	if secret != "" {
		req.Header.Set("Authorization", "Bearer "+secret)
	} else {
		req.Header.Set("Origin", origin)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		Data struct {
			Trigger      *struct{ Accepted bool }
			TriggerBatch []struct {
				Accepted bool
				Error    *struct{ Code string }
			}
		}
		Errors []gqlError
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != 200 {
		t.Fatalf("status %d: %v", resp.StatusCode, err)
	}
	switch {
	case len(out.Errors) > 0:
		return []string{out.Errors[0].Extensions.Code}
	case out.Data.Trigger != nil && out.Data.Trigger.Accepted:
		return []string{"accepted"}
	}
	var got []string
	for _, r := range out.Data.TriggerBatch {
		switch {
		case r.Accepted:
			got = append(got, "accepted")
		case r.Error != nil:
			got = append(got, r.Error.Code)
		default:
			got = append(got, "?")
		}
	}
	return got
}

// Browser triggers from bot User-Agents are refused BOT_FILTERED (final, so
// clients do not retry), counted in crumbs_triggers_total and never stored,
// on GraphQL's trigger and triggerBatch and on the JSON API without a key;
// callers with the secret key are never filtered. CRUMBS_BOT_FILTER picks
// what counts as a bot.
func TestBotFilter(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *gorm.DB) {
		j := newJSONAPI(t, db, func(c *config) { c.MetricsToken = testMetricsToken })
		appID, secret := j.a.createApp("Bots")
		app, err := models.AppByPublicID(context.Background(), db, appID)
		if err != nil {
			t.Fatal(err)
		}
		stored := func(device string) int64 {
			t.Helper()
			var n int64
			if err := db.Model(&models.Event{}).Where("app_id = ? AND device_id = ?", app.ID, device).Count(&n).Error; err != nil {
				t.Fatal(err)
			}
			return n
		}
		before := scrape(t, j.srv.URL+"/metrics", testMetricsToken)

		// The default (crawlers): GraphQL.
		for _, c := range []struct {
			ua, secret string
			devices    []string
			want       string
		}{
			{googlebotUA, "", []string{"gql-bot"}, "BOT_FILTERED"},
			{googlebotUA, "", []string{"gql-bot-b1", "gql-bot-b2"}, "BOT_FILTERED,BOT_FILTERED"},
			{googlebotUA, secret, []string{"gql-bot-keyed"}, "accepted"},
			{chromeUA, "", []string{"gql-chrome"}, "accepted"},
			{cubotUA, "", []string{"gql-cubot"}, "accepted"},
			{headlessUA, "", []string{"gql-headless"}, "accepted"},
		} {
			if got := strings.Join(gqlTrigger(t, j.srv, appID, c.secret, c.ua, c.devices...), ","); got != c.want {
				t.Fatalf("%s %v: %s, want %s", c.ua, c.devices, got, c.want)
			}
		}
		// The JSON API.
		bot := []string{"User-Agent", googlebotUA, "Origin", "https://shop.example"}
		r := j.post(appID, `{"device_id":"json-bot","code":"view"}`, bot...)
		if r.status != http.StatusUnprocessableEntity || r.item.Accepted || r.item.Error == nil || r.item.Error.Code != "BOT_FILTERED" || r.retryAfter != "" {
			t.Fatalf("one event from a bot: %d %s", r.status, r.raw)
		}
		r = j.post(appID, `{"events":[{"device_id":"json-bot-b","code":"view"},{"device_id":"json-bot-b","code":"click"}]}`, bot...)
		if r.status != 200 || len(r.Results) != 2 || r.Results[0].Error == nil || r.Results[0].Error.Code != "BOT_FILTERED" || r.Results[1].Error == nil || r.Results[1].Error.Code != "BOT_FILTERED" {
			t.Fatalf("a batch from a bot: %d %s", r.status, r.raw)
		}
		r = j.post(appID, `{"device_id":"json-bot-keyed","code":"view"}`, "User-Agent", googlebotUA, "Authorization", "Bearer "+secret)
		if r.status != 200 || !r.item.Accepted {
			t.Fatalf("a server with the key and a bot's User-Agent: %d %s", r.status, r.raw)
		}
		for device, want := range map[string]int64{"gql-bot": 0, "gql-bot-b1": 0, "gql-bot-b2": 0, "json-bot": 0, "json-bot-b": 0,
			"gql-bot-keyed": 1, "gql-chrome": 1, "gql-cubot": 1, "gql-headless": 1, "json-bot-keyed": 1} {
			if got := stored(device); got != want {
				t.Errorf("device %s: %d events stored, want %d", device, got, want)
			}
		}
		after := scrape(t, j.srv.URL+"/metrics", testMetricsToken)
		var moved float64
		for _, source := range []string{"js", "api"} {
			b, _ := sample(before, "crumbs_triggers_total", "source", source, "outcome", "BOT_FILTERED")
			a, _ := sample(after, "crumbs_triggers_total", "source", source, "outcome", "BOT_FILTERED")
			moved += a - b
		}
		if moved != 6 {
			t.Errorf("crumbs_triggers_total{outcome=BOT_FILTERED} moved by %v, want 6 (3 GraphQL, 3 JSON)", moved)
		}

		// all: headless browsers too; off: nothing.
		all := newJSONAPI(t, db, func(c *config) { c.BotFilter = models.BotFilterAll })
		if got := gqlTrigger(t, all.srv, appID, "", headlessUA, "all-headless"); got[0] != "BOT_FILTERED" {
			t.Fatalf("headless under all: %v", got)
		}
		if r := all.post(appID, `{"device_id":"all-headless","code":"view"}`, "User-Agent", headlessUA, "Origin", "https://shop.example"); r.status != 422 {
			t.Fatalf("headless under all, JSON: %d %s", r.status, r.raw)
		}
		if got := gqlTrigger(t, all.srv, appID, "", chromeUA, "all-chrome"); got[0] != "accepted" {
			t.Fatalf("a browser under all: %v", got)
		}
		off := newJSONAPI(t, db, func(c *config) { c.BotFilter = models.BotFilterOff })
		if got := gqlTrigger(t, off.srv, appID, "", googlebotUA, "off-bot"); got[0] != "accepted" {
			t.Fatalf("a bot with the filter off: %v", got)
		}
		if stored("all-headless") != 0 || stored("all-chrome") != 1 || stored("off-bot") != 1 {
			t.Fatalf("stored: all-headless %d, all-chrome %d, off-bot %d", stored("all-headless"), stored("all-chrome"), stored("off-bot"))
		}
	})
}

func TestBotFilterSetting(t *testing.T) {
	for v, want := range map[string]models.BotFilter{"": models.BotFilterCrawlers, "off": models.BotFilterOff, "crawlers": models.BotFilterCrawlers, "ALL": models.BotFilterAll} {
		cfg, err := parseConfig(nil, func(k string) string {
			if k == "CRUMBS_BOT_FILTER" {
				return v
			}
			return ""
		}, &strings.Builder{})
		if err != nil || cfg.BotFilter != want {
			t.Errorf("CRUMBS_BOT_FILTER=%q: %v %v, want %v", v, cfg, err, want)
		}
	}
	if _, err := parseConfig(nil, func(k string) string {
		if k == "CRUMBS_BOT_FILTER" {
			return "robots"
		}
		return ""
	}, &strings.Builder{}); err == nil || !strings.Contains(err.Error(), "bot-filter") {
		t.Errorf("CRUMBS_BOT_FILTER=robots: %v", err)
	}
}
