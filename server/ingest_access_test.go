package main

import (
	"encoding/json"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/crumbs-dev/crumbs/models/modelstest"
	"github.com/crumbs-dev/crumbs/server/ingest"
	"gorm.io/gorm"
)

// routeAccess is who may use each endpoint of the JSON API, per caller, as
// operations is for GraphQL's root fields. The JSON API takes an app's
// secret key or no credentials (a browser, held to the app's origins): a
// dashboard access token is no app credential there, and another app's key
// is refused as on GraphQL. TestRouteAccess fails on an endpoint without an
// entry, so whoever adds one decides who may call it.
var routeAccess = map[string]expect{
	"POST /api/v1/apps/{appId}/events": {other: unauth, viewer: unauth, editor: unauth, owner: unauth, otherServer: unauth},
	// Without an Origin header a caller with no key is a server that forgot it.
	"POST /api/v1/apps/{appId}/identify": {anon: unauth, other: unauth, viewer: unauth, editor: unauth, owner: unauth, otherServer: unauth},
	// Segment's API names no app: the key does, so another app's key
	// records into that other app (the answer holds only ids).
	"POST /v1/track":           segmentAccess,
	"POST /v1/t":               segmentAccess,
	"POST /v1/identify":        segmentAccess,
	"POST /v1/i":               segmentAccess,
	"POST /v1/page":            segmentAccess,
	"POST /v1/p":               segmentAccess,
	"POST /v1/screen":          segmentAccess,
	"POST /v1/s":               segmentAccess,
	"POST /v1/alias":           segmentAccess,
	"POST /v1/a":               segmentAccess,
	"POST /v1/group":           segmentAccess,
	"POST /v1/g":               segmentAccess,
	"POST /v1/batch":           segmentAccess,
	"GET /api/v1/openapi.json": publicDocument,
	"POST /webhooks/{ingestToken}/{integration}/track":             webhookAccess,
	"POST /webhooks/{ingestToken}/{integration}/batch/events":      webhookAccess,
	"POST /webhooks/{ingestToken}/{integration}/batch/subscribers": webhookAccess,
}

// The webhook URL holds its credential (an ingest token of app A): every
// caller's headers are ignored, and each records into app A.
var webhookAccess = expect{}

// The OpenAPI document is public.
var publicDocument = expect{}

var segmentAccess = expect{anon: unauth, other: unauth, viewer: unauth, editor: unauth, owner: unauth}

// TestRouteAccess calls every JSON API endpoint on app A as every caller:
// each gets its expected code, and no answer holds a marker of an app or a
// lead, since an endpoint that takes no credentials answers nothing beyond
// what the caller sent.
func TestRouteAccess(t *testing.T) {
	patterns := ingest.New(ingest.Options{}).Patterns()
	if got := slices.Sorted(maps.Keys(routeAccess)); !slices.Equal(got, patterns) {
		t.Fatalf("routeAccess lists %v; the JSON API serves %v: classify every endpoint", got, patterns)
	}
	bodies := map[string]string{
		"POST /api/v1/apps/{appId}/events":   `{"events":[{"device_id":"d-route","code":"alpha_code","url":"https://a.example/route"},{"device_id":"d-route","code":"nope"}]}`,
		"POST /api/v1/apps/{appId}/identify": `{"device_id":"d-route","email":"route@example.com","fields":{"plan":"route"}}`,
		"POST /v1/track":                     `{"anonymousId":"d-route","event":"View"}`,
		"POST /v1/t":                         `{"anonymousId":"d-route","event":"View"}`,
		"POST /v1/identify":                  `{"anonymousId":"d-route","traits":{"email":"route@example.com"}}`,
		"POST /v1/i":                         `{"anonymousId":"d-route","traits":{"email":"route@example.com"}}`,
		"POST /v1/page":                      `{"anonymousId":"d-route","properties":{"url":"https://a.example/route"}}`,
		"POST /v1/p":                         `{"anonymousId":"d-route"}`,
		"POST /v1/screen":                    `{"anonymousId":"d-route","name":"Home"}`,
		"POST /v1/s":                         `{"anonymousId":"d-route","name":"Home"}`,
		"POST /v1/alias":                     `{"previousId":"d-route","userId":"u-route"}`,
		"POST /v1/a":                         `{"previousId":"d-route","userId":"u-route"}`,
		"POST /v1/group":                     `{"userId":"u-route","groupId":"g-route","traits":{"name":"Route"}}`,
		"POST /v1/g":                         `{"userId":"u-route","groupId":"g-route","traits":{"name":"Route"}}`,
		"POST /v1/batch":                     `{"batch":[{"type":"track","anonymousId":"d-route","event":"view"}]}`,
		"POST /webhooks/{ingestToken}/{integration}/track":             `{"events":[{"type":"view","email":"route@example.com","fields":{"plan":"route"}}]}`,
		"POST /webhooks/{ingestToken}/{integration}/batch/events":      `{"events":[{"type":"view","email":"route@example.com"}]}`,
		"POST /webhooks/{ingestToken}/{integration}/batch/subscribers": `{"subscribers":[{"email":"route@example.com","plan":"route"}]}`,
	}
	modelstest.Each(t, func(t *testing.T, db *gorm.DB) {
		f := newFixture(t, db)
		srv := httptest.NewServer(f.a.handler)
		defer srv.Close()
		for _, pattern := range patterns {
			method, path, _ := strings.Cut(pattern, " ")
			for _, caller := range callers {
				req, _ := http.NewRequest(method, srv.URL+strings.NewReplacer("{appId}", f.appA, "{ingestToken}", f.ingestToken, "{integration}", "generic").Replace(path), strings.NewReader(bodies[pattern]))
				req.Header.Set("Content-Type", "application/json")
				if b := f.bearer(caller); b != "" {
					req.Header.Set("Authorization", b)
				}
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				raw, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				var out struct {
					Error   *struct{ Code string }
					Results []struct {
						Accepted bool
						Error    *struct{ Code string }
					}
					DeviceID string `json:"device_id"`
				}
				// A webhook's "results" is Bento's count, not a list.
				if err := json.Unmarshal(raw, &out); err != nil && !strings.HasPrefix(pattern, "POST /webhooks/") && !strings.HasPrefix(pattern, "GET ") {
					t.Fatalf("%s as %s: %d %s", pattern, caller, resp.StatusCode, raw)
				}
				switch want := routeAccess[pattern][caller]; {
				case want != "":
					if out.Error == nil || out.Error.Code != want || resp.StatusCode != http.StatusUnauthorized {
						t.Errorf("%s as %s: %d %s, want %s", pattern, caller, resp.StatusCode, raw, want)
					}
				case strings.HasPrefix(pattern, "GET "):
					if resp.StatusCode != http.StatusOK || !strings.Contains(string(raw), `"openapi": "3.1.0"`) {
						t.Errorf("%s as %s: %d %.200s, want the document", pattern, caller, resp.StatusCode, raw)
					}
				case strings.HasPrefix(pattern, "POST /webhooks/"):
					if resp.StatusCode != http.StatusOK || !strings.Contains(string(raw), `"results":1,`) {
						t.Errorf("%s as %s: %d %s, want the event taken", pattern, caller, resp.StatusCode, raw)
					}
				case strings.HasPrefix(pattern, "POST /v1/"):
					if resp.StatusCode != http.StatusOK || out.Error != nil || len(out.Results) != 1 {
						t.Errorf("%s as %s: %d %s, want the message taken", pattern, caller, resp.StatusCode, raw)
					}
				case strings.HasSuffix(pattern, "/identify"):
					if resp.StatusCode != http.StatusOK || out.Error != nil || out.DeviceID != "d-route" {
						t.Errorf("%s as %s: %d %s, want the device identified", pattern, caller, resp.StatusCode, raw)
					}
				case resp.StatusCode != http.StatusOK || out.Error != nil || len(out.Results) != 2 || !out.Results[0].Accepted ||
					out.Results[1].Error == nil || out.Results[1].Error.Code != "UNKNOWN_EVENT_CODE":
					t.Errorf("%s as %s: %d %s, want the event accepted and the unknown code refused", pattern, caller, resp.StatusCode, raw)
				}
				for _, marker := range append(slices.Clone(f.markersA), f.markersB...) {
					if strings.Contains(string(raw), marker) {
						t.Errorf("%s as %s: the answer holds %q: %s", pattern, caller, marker, raw)
					}
				}
			}
		}
	})
}
