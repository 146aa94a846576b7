package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/99designs/gqlgen/client"
	"github.com/coder/websocket"
	"github.com/crumbs-dev/crumbs/models"
	"github.com/crumbs-dev/crumbs/models/modelstest"
	"gorm.io/gorm"
)

const deleteAppMutation = `mutation($a: ID!, $p: String!) { deleteApp(appId: $a, password: $p) }`

// wayAnswer is what an ingestion endpoint or field answered: the HTTP
// status and the error codes, in order.
type wayAnswer struct {
	Status int
	Codes  []string
}

// ingestCalls sends an event (or an identify) for the app through every way
// in: GraphQL trigger and identify with the key and from a browser, the
// JSON API with the key and from a browser, Segment's API with the key,
// the webhook URL with the ingest token, and a live subscription over the
// websocket with the key. It answers what each said.
func ingestCalls(t *testing.T, l *liveApp, appID, secret, token string) map[string]wayAnswer {
	t.Helper()
	out := map[string]wayAnswer{}
	gql := func(name, query string, opts ...client.Option) {
		_, errs := l.a.do(query, opts...)
		var codes []string
		for _, e := range errs {
			codes = append(codes, e.Extensions.Code)
		}
		out[name] = wayAnswer{Status: 200, Codes: codes}
	}
	in := map[string]any{"appId": appID, "deviceId": "d-gone", "code": "view", "url": "https://s.example/gone"}
	gql("trigger with the key", triggerMutation, client.Var("in", in), as(secret))
	gql("trigger from a browser", triggerMutation, client.Var("in", in), anonymous(), client.AddHeader("Origin", "https://s.example"))
	identify := `mutation($in: IdentifyInput!) { identify(input: $in) { device { id } } }`
	gql("identify with the key", identify, client.Var("in", map[string]any{"appId": appID, "deviceId": "d-gone", "email": "gone@example.com"}), as(secret))

	post := func(name, path, auth, origin, body string) {
		resp, raw := sendAs(t, http.MethodPost, l.url+path, auth, origin, body)
		var body2 struct{ Error *struct{ Code string } }
		json.Unmarshal(raw, &body2)
		a := wayAnswer{Status: resp.StatusCode}
		if body2.Error != nil {
			a.Codes = []string{body2.Error.Code}
		}
		out[name] = a
	}
	events := `{"events":[{"device_id":"d-gone","code":"view","url":"https://s.example/gone"}]}`
	post("JSON events with the key", "/api/v1/apps/"+appID+"/events", "Bearer "+secret, "", events)
	post("JSON events from a browser", "/api/v1/apps/"+appID+"/events", "", "https://s.example", events)
	post("JSON identify with the key", "/api/v1/apps/"+appID+"/identify", "Bearer "+secret, "", `{"device_id":"d-gone","email":"gone@example.com"}`)
	post("Segment track with the key", "/v1/track", "Bearer "+secret, "", `{"anonymousId":"d-gone","event":"view"}`)
	post("Segment batch with the key", "/v1/batch", "Bearer "+secret, "", `{"batch":[{"type":"track","anonymousId":"d-gone","event":"view"}]}`)
	post("Bento webhook with the token", "/webhooks/"+token+"/generic/track", "", "", `{"events":[{"type":"view","email":"gone@example.com"}]}`)

	c, _, err := dialWS(t, l.url, "")
	if err != nil {
		t.Fatal(err)
	}
	ack, err := c.init(map[string]any{"Authorization": "Bearer " + secret})
	a := wayAnswer{}
	if err == nil && ack.Type == "connection_ack" {
		c.subscribe("live", liveQuery, map[string]any{"a": appID})
		msg, err := c.next()
		if err == nil {
			var p gqlPayload
			json.Unmarshal(msg.Payload, &p)
			a.Codes = append(a.Codes, msg.Type)
			for _, e := range p.Errors {
				a.Codes = append(a.Codes, e.Extensions.Code)
			}
		}
	}
	switch {
	case err != nil:
		a.Status = int(websocket.CloseStatus(err))
	case ack.Type != "connection_ack":
		code, _, _ := c.closedWith()
		a.Status = int(code)
	}
	out["websocket with the key"] = a
	c.conn.CloseNow()
	return out
}

// An owner deletes an app: with their password only; from the answer on
// the app is gone for everyone (not listed, NOT_FOUND, its live stream
// ends), every way in refuses its key, token and appId as it refuses an
// unknown app's, and its rows go in the background (this replica's job is
// woken at once) while another app's stay.
func TestDeleteApp(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *gorm.DB) {
		a := newAPI(t, db)
		l := newLiveApp(t, a)
		keptID, keptSecret := a.createApp("Kept " + t.Name())
		var made struct{ CreateIngestToken struct{ Token string } }
		a.ok(`mutation($a: ID!) { createIngestToken(appId: $a, name: "Zapier") { token } }`, &made, client.Var("a", l.appID))
		token := made.CreateIngestToken.Token
		a.ok(`mutation($a: ID!) { updateApp(id: $a, input: {allowedOrigins: ["https://s.example"]}) { id } }`, &map[string]any{}, client.Var("a", l.appID))
		for i := range 5 {
			for _, app := range []struct{ id, secret string }{{l.appID, l.secret}, {keptID, keptSecret}} {
				a.ok(triggerMutation, &map[string]any{}, client.Var("in", map[string]any{"appId": app.id, "deviceId": fmt.Sprintf("d-%d", i), "code": "view"}), as(app.secret))
			}
		}
		a.settle()
		// An app and a key that never existed, for comparison.
		unknown := ingestCalls(t, l, "app_neverexisted", "sk_"+strings.Repeat("x", 32), "it_"+strings.Repeat("x", 32))

		c := l.subscribe(t, "Bearer "+a.ownerToken)
		if msg, err := c.next(); err != nil || msg.Type != "next" {
			t.Fatalf("want an event, got %+v %v", msg, err)
		}

		editorToken := l.member(editor)
		// The dashboard offers deletion to owners: it reads viewerRole.
		for who, want := range map[string]any{a.ownerToken: "owner", editorToken: "editor", l.secret: nil} {
			var got struct{ App struct{ ViewerRole any } }
			a.ok(`query($a: ID!) { app(id: $a) { viewerRole } }`, &got, client.Var("a", l.appID), as(who))
			if got.App.ViewerRole != want {
				t.Fatalf("viewerRole %v, want %v", got.App.ViewerRole, want)
			}
		}
		a.refused("FORBIDDEN", "", deleteAppMutation, client.Var("a", l.appID), client.Var("p", "correct horse battery"), as(editorToken))
		a.refused("BAD_USER_INPUT", "password", deleteAppMutation, client.Var("a", l.appID), client.Var("p", "not my password"))
		var out struct{ DeleteApp bool }
		a.ok(deleteAppMutation, &out, client.Var("a", l.appID), client.Var("p", "correct horse battery"))
		if !out.DeleteApp {
			t.Fatal("deleteApp answered false")
		}

		// The stream of the deleted app completes.
		for {
			msg, err := c.next()
			if err != nil {
				t.Fatalf("the stream did not end: %v", err)
			}
			if msg.Type == "complete" && msg.ID == "live" {
				break
			}
			if msg.Type != "next" {
				t.Fatalf("before completing, the server sent %+v", msg)
			}
		}
		var apps struct{ Apps []struct{ ID string } }
		a.ok(`{ apps { id } }`, &apps)
		if len(apps.Apps) != 1 || apps.Apps[0].ID != keptID {
			t.Fatalf("apps after the deletion: %+v", apps.Apps)
		}
		a.refused("NOT_FOUND", "", `query($a: ID!) { app(id: $a) { id name } }`, client.Var("a", l.appID))
		a.refused("NOT_FOUND", "", `query($a: ID!) { app(id: $a) { id name } }`, client.Var("a", l.appID), as(editorToken))
		a.refused("NOT_FOUND", "", `query($a: ID!) { events(appId: $a) { edges { cursor } } }`, client.Var("a", l.appID))
		a.refused("NOT_FOUND", "", deleteAppMutation, client.Var("a", l.appID), client.Var("p", "correct horse battery"))
		a.refused("UNAUTHENTICATED", "", `query($a: ID!) { checkAppKey(appId: $a) { keyValid } }`, client.Var("a", l.appID), as(l.secret))

		gone := ingestCalls(t, l, l.appID, l.secret, token)
		for way, want := range unknown {
			got := gone[way]
			if got.Status != want.Status || fmt.Sprint(got.Codes) != fmt.Sprint(want.Codes) {
				t.Errorf("%s: the deleted app's answer %+v, an unknown app's %+v", way, got, want)
			}
		}

		// The rows go in the background; the app row after the settle time.
		app, err := models.AppByPublicID(context.Background(), db, keptID)
		if err != nil {
			t.Fatal(err)
		}
		var deletedID uint64
		if err := db.Raw("SELECT id FROM apps WHERE public_id = ?", l.appID).Scan(&deletedID).Error; err != nil || deletedID == 0 {
			t.Fatalf("the app row went before the settle time: %v", err)
		}
		deadline := time.Now().Add(20 * time.Second)
		for {
			var left, kept int64
			db.Model(&models.Event{}).Where("app_id = ?", deletedID).Count(&left)
			db.Model(&models.Event{}).Where("app_id = ?", app.ID).Count(&kept)
			if kept != 5 {
				t.Fatalf("the other app has %d events, want 5", kept)
			}
			if left == 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%d events of the deleted app left", left)
			}
			time.Sleep(50 * time.Millisecond)
		}
	})
}

// A replica whose cache still holds a deleted app (for CRUMBS_CACHE_TTL)
// records none of its events: the deletion disabled its definitions, which
// the writer checks under their row lock. (No deletion job runs here, so
// the definitions are still there.)
func TestDeletedAppOnAStaleReplica(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *gorm.DB) {
		a := newAPI(t, db)
		a.resolver.AppDeletions.Close()
		b := replicaOf(t, db, func(c *config) { c.CacheTTL = time.Minute })
		b.resolver.AppDeletions.Close()
		appID, secret := a.createApp("Stale " + t.Name())
		trigger := func() []gqlError {
			_, errs := b.do(triggerMutation, client.Var("in", map[string]any{"appId": appID, "deviceId": "d-b", "code": "view"}), as(secret))
			return errs
		}
		if errs := trigger(); len(errs) > 0 {
			t.Fatalf("trigger on b: %+v", errs)
		}
		a.ok(deleteAppMutation, &map[string]any{}, client.Var("a", appID), client.Var("p", "correct horse battery"))
		if errs := trigger(); len(errs) != 1 || errs[0].Extensions.Code != "EVENT_DISABLED" {
			t.Fatalf("trigger on b after the deletion: %+v", errs)
		}
		var stored int64
		if err := db.Raw("SELECT COUNT(*) FROM events e JOIN apps a ON a.id = e.app_id WHERE a.public_id = ?", appID).Scan(&stored).Error; err != nil || stored != 1 {
			t.Fatalf("%d events stored (%v), want the one before the deletion", stored, err)
		}
	})
}

// sendAs makes one request with a JSON body (if any), an Authorization
// and an Origin (each if given), and answers the response and its body.
func sendAs(t *testing.T, method, url, auth, origin, body string) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	if origin != "" {
		req.Header.Set("Origin", origin)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, raw
}
