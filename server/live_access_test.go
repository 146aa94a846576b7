package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/99designs/gqlgen/client"
	"github.com/coder/websocket"
	"github.com/crumbs-dev/crumbs/models"
	"github.com/crumbs-dev/crumbs/models/modelstest"
	"gorm.io/gorm"
)

const liveQuery = `subscription($a: ID!) { eventStored(appId: $a) { id url device { id } } }`

// liveApp is an app on a real HTTP server, with helpers to subscribe to its
// events over a real websocket and to keep events coming.
type liveApp struct {
	a      *api
	url    string
	appID  string
	secret string
}

func newLiveApp(t *testing.T, a *api) *liveApp {
	srv := httptest.NewServer(a.handler)
	t.Cleanup(srv.Close)
	appID, secret := a.createApp("Live " + t.Name())
	return &liveApp{a: a, url: srv.URL, appID: appID, secret: secret}
}

// member makes a new user a member of the app and returns its access token.
func (l *liveApp) member(role string) string {
	token := l.a.signUp()
	id, err := l.a.tokenUser(token)
	if err != nil {
		l.a.t.Fatal(err)
	}
	f := &fixture{a: l.a}
	f.join(l.appID, l.a.ownerToken, id, role)
	return token
}

// subscribe opens a websocket with the credential in connection_init.
func (l *liveApp) subscribe(t *testing.T, auth string) *wsClient {
	c, _, err := dialWS(t, l.url, "")
	if err != nil {
		t.Fatal(err)
	}
	if ack, err := c.init(map[string]any{"Authorization": auth}); err != nil || ack.Type != "connection_ack" {
		t.Fatalf("connection_init answered %+v %v", ack, err)
	}
	c.subscribe("live", liveQuery, map[string]any{"a": l.appID})
	return c
}

// triggering stores browser events for the app until the returned stop is
// called, so a subscriber always has something to receive. stop waits for
// the trigger in flight, so none outlives the test's server; a trigger's
// answer does not matter here (the server may be refusing while the test
// takes access away), so it is not checked.
func (l *liveApp) triggering() (stop func()) {
	return l.triggeringAt("https://s.example/live")
}

// triggeringAt is triggering with events of this url.
func (l *liveApp) triggeringAt(url string) (stop func()) {
	done := make(chan struct{})
	ended := make(chan struct{})
	go func() {
		defer close(ended)
		for {
			select {
			case <-done:
				return
			case <-time.After(200 * time.Millisecond):
				var out map[string]any
				_ = l.a.gql.Post(`mutation($in: TriggerInput!) { trigger(input: $in) { accepted } }`, &out, l.a.withCredentials([]client.Option{
					client.Var("in", map[string]any{"appId": l.appID, "deviceId": "live-device", "code": "view", "url": url}), anonymous()})...)
			}
		}
	}()
	return func() { close(done); <-ended }
}

// receive waits for one event of the subscription.
func receive(t *testing.T, c *wsClient) {
	t.Helper()
	msg, err := c.next()
	if err != nil || msg.Type != "next" || msg.ID != "live" {
		t.Fatalf("want an event, got %+v %v", msg, err)
	}
	var p gqlPayload
	json.Unmarshal(msg.Payload, &p)
	if len(p.Errors) > 0 || !strings.Contains(string(msg.Payload), "https://s.example/live") {
		t.Fatalf("event %s", msg.Payload)
	}
}

// wantClosed waits for the server to close the connection with code, while
// events keep being stored.
func wantClosed(t *testing.T, c *wsClient, code websocket.StatusCode) {
	t.Helper()
	got, reason, msgs := c.closedWith()
	if got != code {
		t.Fatalf("closed with %d %q after %d messages, want %d", got, reason, len(msgs), code)
	}
	for _, m := range msgs {
		if m.Type != "next" {
			t.Fatalf("before closing, the server sent %+v", m)
		}
	}
}

// A subscription ends when its subscriber loses access: a removed member
// (4403), a rotated secret key (4401), an expired access token (4401).
func TestSubscriptionsEndWithAccess(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *gorm.DB) {
		t.Run("member removed", func(t *testing.T) {
			l := newLiveApp(t, newAPI(t, db))
			token := l.member(viewer)
			userID, _ := l.a.tokenUser(token)
			c := l.subscribe(t, "Bearer "+token)
			defer l.triggering()()
			receive(t, c)
			l.a.ok(`mutation($a: ID!, $u: ID!) { removeMember(appId: $a, userId: $u) }`, &map[string]any{}, client.Var("a", l.appID), client.Var("u", models.FormatID(userID)))
			wantClosed(t, c, 4403)
		})
		t.Run("secret key rotated", func(t *testing.T) {
			l := newLiveApp(t, newAPI(t, db))
			c := l.subscribe(t, "Bearer "+l.secret)
			defer l.triggering()()
			receive(t, c)
			l.a.ok(`mutation($a: ID!) { rotateAppSecret(id: $a) { secretKey } }`, &map[string]any{}, client.Var("a", l.appID))
			wantClosed(t, c, 4401)
		})
		t.Run("token expired", func(t *testing.T) {
			a := newAPI(t, db)
			l := newLiveApp(t, a)
			// Tokens signed from now on live 2 seconds (plus the verifier's
			// 5 seconds of leeway for clock skew).
			a.resolver.Tokens.AccessTTL = 2 * time.Second
			token := l.member(viewer)
			c := l.subscribe(t, "Bearer "+token)
			defer l.triggering()()
			receive(t, c)
			wantClosed(t, c, 4401)
		})
	})
}

// The websocket follows graphql-transport-ws: the acknowledgement never
// echoes the init payload, and protocol violations close with its codes.
func TestWebsocketProtocol(t *testing.T) {
	a := newAPI(t, modelstest.SQLite(t))
	l := newLiveApp(t, a)
	open := func() *wsClient {
		c, _, err := dialWS(t, l.url, "")
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	t.Run("ack without the payload", func(t *testing.T) {
		c := open()
		c.send(wsMsg{Type: "connection_init", Payload: json.RawMessage(`{"Authorization":"Bearer ` + a.ownerToken + `","note":"echo me"}`)})
		_, raw, err := c.conn.Read(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		var ack wsMsg
		json.Unmarshal(raw, &ack)
		if ack.Type != "connection_ack" || len(ack.Payload) > 0 || strings.Contains(string(raw), a.ownerToken) || strings.Contains(string(raw), "echo me") {
			t.Fatalf("connection_ack %s", raw)
		}
	})
	cases := []struct {
		name string
		code websocket.StatusCode
		run  func(c *wsClient)
	}{
		{"second connection_init", 4429, func(c *wsClient) {
			c.init(map[string]any{"Authorization": "Bearer " + a.ownerToken})
			c.send(wsMsg{Type: "connection_init"})
		}},
		{"subscribe before connection_init", 4401, func(c *wsClient) {
			c.subscribe("1", liveQuery, map[string]any{"a": l.appID})
		}},
		{"duplicate subscription id", 4409, func(c *wsClient) {
			c.init(map[string]any{"Authorization": "Bearer " + a.ownerToken})
			c.subscribe("1", liveQuery, map[string]any{"a": l.appID})
			c.subscribe("1", liveQuery, map[string]any{"a": l.appID})
		}},
		{"invalid token", 4401, func(c *wsClient) {
			c.send(wsMsg{Type: "connection_init", Payload: json.RawMessage(`{"Authorization":"Bearer not-a-token"}`)})
		}},
		{"connection_init payload not an object", 4400, func(c *wsClient) {
			c.sendRaw(`{"type":"connection_init","payload":"x"}`)
		}},
		{"not a protocol message", 4400, func(c *wsClient) {
			c.init(nil)
			c.sendRaw(`{"type":"start","id":"1"}`)
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := open()
			tc.run(c)
			got, reason, _ := c.closedWith()
			if got != tc.code {
				t.Fatalf("closed with %d %q, want %d", got, reason, tc.code)
			}
		})
	}
	t.Run("an id may be used again once completed", func(t *testing.T) {
		c := open()
		c.init(map[string]any{"Authorization": "Bearer " + a.ownerToken})
		c.subscribe("live", liveQuery, map[string]any{"a": l.appID})
		c.send(wsMsg{ID: "live", Type: "complete"})
		c.subscribe("live", liveQuery, map[string]any{"a": l.appID})
		defer l.triggering()()
		for {
			msg, err := c.next()
			if err != nil {
				t.Fatalf("the reused id was refused: %v", err)
			}
			// The first subscription may answer its cancellation first.
			if msg.Type == "next" && strings.Contains(string(msg.Payload), "https://s.example/live") {
				return
			}
		}
	})
}

// Browsers may open the websocket from the server's own origin and from
// CRUMBS_DASHBOARD_ORIGINS; other origins are refused before the upgrade.
func TestDashboardOrigins(t *testing.T) {
	a := newAPI(t, modelstest.SQLite(t), func(c *config) {
		c.DashboardOrigins = []string{"https://dash.example.com"}
	})
	l := newLiveApp(t, a)
	for _, origin := range []string{"https://dash.example.com", "https://DASH.example.com", l.url, ""} {
		c, _, err := dialWS(t, l.url, origin)
		if err != nil {
			t.Fatalf("origin %q: %v", origin, err)
		}
		if ack, err := c.init(map[string]any{"Authorization": "Bearer " + a.ownerToken}); err != nil || ack.Type != "connection_ack" {
			t.Fatalf("origin %q: %+v %v", origin, ack, err)
		}
	}
	for _, origin := range []string{"https://evil.example.com", "http://dash.example.com", "https://dash.example.com.evil.example"} {
		_, resp, err := dialWS(t, l.url, origin)
		if err == nil || resp == nil || resp.StatusCode != http.StatusForbidden {
			t.Fatalf("origin %q: want 403, got %v %v", origin, resp, err)
		}
	}
	// Without the setting, only the server's own origin.
	l2 := newLiveApp(t, newAPI(t, modelstest.SQLite(t)))
	if _, resp, err := dialWS(t, l2.url, "https://dash.example.com"); err == nil || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("an unconfigured dashboard origin: %v %v", resp, err)
	}
}

func TestDashboardOriginsSetting(t *testing.T) {
	env := map[string]string{"CRUMBS_DASHBOARD_ORIGINS": "https://Dash.Example.com, http://localhost:5173/"}
	cfg, err := parseConfig(nil, func(k string) string { return env[k] }, &strings.Builder{})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(cfg.DashboardOrigins, " "); got != "https://dash.example.com http://localhost:5173" {
		t.Fatalf("origins %q", got)
	}
	cfg, err = parseConfig([]string{"-dashboard-origins", "https://a.example"}, func(k string) string { return env[k] }, &strings.Builder{})
	if err != nil || len(cfg.DashboardOrigins) != 1 || cfg.DashboardOrigins[0] != "https://a.example" {
		t.Fatalf("the flag: %v %v", cfg, err)
	}
	for _, bad := range []string{"dash.example.com", "https://dash.example.com/app", "ftp://x.example", "https://*.example.com"} {
		if _, err := parseConfig([]string{"-dashboard-origins", bad}, func(string) string { return "" }, &strings.Builder{}); err == nil || !strings.Contains(err.Error(), "dashboard-origins") {
			t.Fatalf("%q: %v", bad, err)
		}
	}
}

// An event whose fields the store fails to read closes the websocket with
// 1013 (try again later), so the client reconnects with its cursor and the
// event is sent again. It was sent as an error in the event's place
// ("eventStored": null, UNAVAILABLE), and the event was lost to the
// subscriber: the dashboard showed the error and went on (the store-fault
// audit lost 32 events so while MariaDB restarted). Here reading devices
// fails while events keep being stored and the stream keeps reading them.
func TestLiveStoreFaultClosesToRetry(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *gorm.DB) {
		if db.Dialector.Name() == "mysql" {
			// A pool of its own, so the fault touches no other test's.
			var err error
			if db, err = models.Open(context.Background(), modelstest.MySQLDSN(t), models.DBOptions{MaxOpenConns: 8}); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() {
				if sqlDB, err := db.DB(); err == nil {
					sqlDB.Close()
				}
			})
		}
		var failing atomic.Bool
		err := db.Callback().Query().Before("gorm:query").Register("test:devices-unavailable", func(tx *gorm.DB) {
			if failing.Load() && tx.Statement.Table == "devices" {
				tx.AddError(fmt.Errorf("reading devices: %w", context.DeadlineExceeded))
			}
		})
		if err != nil {
			t.Fatal(err)
		}
		l := newLiveApp(t, newAPI(t, db))
		c := l.subscribe(t, "Bearer "+l.a.ownerToken)
		defer l.triggering()()
		receive(t, c)

		failing.Store(true)
		defer failing.Store(false)
		for {
			m, err := c.next()
			var ce websocket.CloseError
			if errors.As(err, &ce) {
				if ce.Code != 1013 || !strings.Contains(ce.Reason, "store is unavailable") {
					t.Fatalf("closed with %d %q, want 1013 and the store named", ce.Code, ce.Reason)
				}
				return
			}
			if err != nil {
				t.Fatalf("while the store failed: %v, want the websocket closed", err)
			}
			var p gqlPayload
			json.Unmarshal(m.Payload, &p)
			if m.Type != "next" || len(p.Errors) > 0 {
				t.Fatalf("while the store failed, the server sent %s %s", m.Type, m.Payload)
			}
		}
	})
}
