package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/99designs/gqlgen/client"
	"github.com/coder/websocket"
	"github.com/crumbs-dev/crumbs/models"
	"github.com/crumbs-dev/crumbs/models/modelstest"
	"gorm.io/gorm"
)

// A subscription ends with the sign-in it was opened with: signing out,
// signing out everywhere and deleting the account close its websocket with
// 4401 on the replica that ended it. An operator's `crumbs admin
// delete-user`, which this server learns of from the store, takes the
// memberships with it, so the next event closes it too (4403 while the
// sign-in is still cached as live, 4401 after).
func TestSubscriptionsEndWithTheSignIn(t *testing.T) {
	const password = "correct horse battery"
	modelstest.Each(t, func(t *testing.T, db *gorm.DB) {
		// signedIn makes a new member of a live app and returns the app,
		// the member's email and session, and a subscription with it that
		// has received an event while events keep coming.
		signedIn := func(t *testing.T) (*liveApp, string, sessionOut, *wsClient, func()) {
			l := newLiveApp(t, newAPI(t, db))
			email := l.a.newUser(password)
			s := l.a.login(email, password)
			userID, err := l.a.tokenUser(s.AccessToken)
			if err != nil {
				t.Fatal(err)
			}
			(&fixture{a: l.a}).join(l.appID, l.a.ownerToken, userID, viewer)
			c := l.subscribe(t, "Bearer "+s.AccessToken)
			stop := l.triggering()
			receive(t, c)
			return l, email, s, c, stop
		}
		t.Run("logout", func(t *testing.T) {
			l, _, s, c, stop := signedIn(t)
			defer stop()
			l.a.ok(`mutation($r: String!) { logout(refreshToken: $r) }`, &map[string]any{}, client.Var("r", s.RefreshToken), as(s.AccessToken))
			wantClosed(t, c, 4401)
		})
		t.Run("logoutEverywhere", func(t *testing.T) {
			l, _, s, c, stop := signedIn(t)
			defer stop()
			l.a.ok(`mutation { logoutEverywhere }`, &map[string]any{}, as(s.AccessToken))
			wantClosed(t, c, 4401)
		})
		t.Run("deleteAccount", func(t *testing.T) {
			l, _, s, c, stop := signedIn(t)
			defer stop()
			l.a.ok(`mutation($p: String!) { deleteAccount(password: $p) }`, &map[string]any{}, client.Var("p", password), as(s.AccessToken))
			wantClosed(t, c, 4401)
		})
		t.Run("admin delete-user", func(t *testing.T) {
			_, email, _, c, stop := signedIn(t)
			defer stop()
			if _, err := models.DeleteUser(context.Background(), db, email, ""); err != nil {
				t.Fatal(err)
			}
			got, reason, msgs := c.closedWith()
			if got != 4401 && got != 4403 {
				t.Fatalf("closed with %d %q after %d messages, want 4401 or 4403", got, reason, len(msgs))
			}
			for _, m := range msgs {
				if m.Type != "next" {
					t.Fatalf("before closing, the server sent %+v", m)
				}
			}
		})
	})
}

// A subscription that asks nothing of its events but __typename ends with
// access like any other. It kept streaming {"__typename": "Event"} to a
// removed member and to a rotated secret key, telling them when the app's
// visitors did something: fields that name no data passed the check that
// lets a browser read what it sent itself.
func TestTypenameSubscriptionsEndWithAccess(t *testing.T) {
	const typenameOnly = `subscription($a: ID!) { eventStored(appId: $a) { __typename } }`
	modelstest.Each(t, func(t *testing.T, db *gorm.DB) {
		// subscribed subscribes with auth and waits for one event.
		subscribed := func(t *testing.T, l *liveApp, auth string) *wsClient {
			c, _, err := dialWS(t, l.url, "")
			if err != nil {
				t.Fatal(err)
			}
			if ack, err := c.init(map[string]any{"Authorization": auth}); err != nil || ack.Type != "connection_ack" {
				t.Fatalf("connection_init answered %+v %v", ack, err)
			}
			c.subscribe("live", typenameOnly, map[string]any{"a": l.appID})
			if m, err := c.next(); err != nil || m.Type != "next" || !strings.Contains(string(m.Payload), `"Event"`) {
				t.Fatalf("want an event, got %+v %v", m, err)
			}
			return c
		}
		t.Run("member removed", func(t *testing.T) {
			l := newLiveApp(t, newAPI(t, db))
			token := l.member(viewer)
			userID, _ := l.a.tokenUser(token)
			defer l.triggering()()
			c := subscribed(t, l, "Bearer "+token)
			l.a.ok(`mutation($a: ID!, $u: ID!) { removeMember(appId: $a, userId: $u) }`, &map[string]any{}, client.Var("a", l.appID), client.Var("u", models.FormatID(userID)))
			closedSoon(t, c, 4403)
		})
		t.Run("secret key rotated", func(t *testing.T) {
			l := newLiveApp(t, newAPI(t, db))
			defer l.triggering()()
			c := subscribed(t, l, "Bearer "+l.secret)
			l.a.ok(`mutation($a: ID!) { rotateAppSecret(id: $a) { secretKey } }`, &map[string]any{}, client.Var("a", l.appID))
			closedSoon(t, c, 4401)
		})
	})
}

// closedSoon is wantClosed for a stream that might never end: events keep
// coming, so it gives up after wsWait.
func closedSoon(t *testing.T, c *wsClient, code websocket.StatusCode) {
	t.Helper()
	deadline := time.Now().Add(wsWait)
	for time.Now().Before(deadline) {
		m, err := c.next()
		if err != nil {
			if got := websocket.CloseStatus(err); got != code {
				t.Fatalf("closed with %d (%v), want %d", got, err, code)
			}
			return
		}
		if m.Type != "next" {
			t.Fatalf("before closing, the server sent %+v", m)
		}
	}
	t.Fatalf("still streaming after %s, want it closed with %d", wsWait, code)
}
