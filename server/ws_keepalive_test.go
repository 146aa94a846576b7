package main

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/99designs/gqlgen/client"
	"github.com/coder/websocket"
	"github.com/crumbs-dev/crumbs/models"
	"github.com/crumbs-dev/crumbs/models/modelstest"
	"gorm.io/gorm"
)

// The server pings every graphql-transport-ws connection (the older
// protocol gets its "ka"): a client that answers with pongs stays open
// however long it idles, one that does not answer within twice the
// interval is closed with 4408. Without pings an idle socket through a
// proxy died unnoticed, and a peer that went away was noticed only at the
// next write, holding its place and subscriptions meanwhile.
func TestWebsocketPingsCloseDeadPeers(t *testing.T) {
	a := newAPI(t, modelstest.SQLite(t), func(c *config) { c.websocketPingInterval = 200 * time.Millisecond })
	l := newLiveApp(t, a)
	auth := map[string]any{"Authorization": "Bearer " + l.secret}
	open := func() *wsClient {
		c, _, err := dialWS(t, l.url, "")
		if err != nil {
			t.Fatal(err)
		}
		if ack, err := c.init(auth); err != nil || ack.Type != "connection_ack" {
			t.Fatalf("connection_init answered %+v %v", ack, err)
		}
		c.seePings = true
		return c
	}

	t.Run("answered", func(t *testing.T) {
		c := open()
		// Ten pings answered span five pong timeouts.
		for i := 0; i < 10; {
			m, err := c.next()
			switch {
			case err != nil:
				t.Fatalf("after %d pings answered: %v", i, err)
			case m.Type == "ping":
				c.send(wsMsg{Type: "pong"})
				i++
			}
		}
	})
	t.Run("unanswered", func(t *testing.T) {
		c := open()
		var pings int
		code, reason, msgs := c.closedWith()
		for _, m := range msgs {
			if m.Type == "ping" {
				pings++
			}
		}
		if code != 4408 || !strings.Contains(reason, "Pong timeout") || pings == 0 {
			t.Fatalf("closed with %d %q after %d pings, want 4408 Pong timeout after some", code, reason, pings)
		}
	})
}

// An idle subscription ends as soon as its credential does: within about a
// second of logoutEverywhere, or of its secret key's rotation, though no
// event comes to be checked. It used to stay open until the next event.
func TestIdleSubscriptionsEndWithTheCredential(t *testing.T) {
	const password = "correct horse battery"
	modelstest.Each(t, func(t *testing.T, db *gorm.DB) {
		// subscribed waits for one event of a subscription with auth; then
		// no more come.
		subscribed := func(t *testing.T, l *liveApp, auth string) *wsClient {
			c := l.subscribe(t, auth)
			stop := l.triggering()
			receive(t, c)
			stop()
			return c
		}
		t.Run("logoutEverywhere", func(t *testing.T) {
			l := newLiveApp(t, newAPI(t, db))
			email := l.a.newUser(password)
			s := l.a.login(email, password)
			userID, err := l.a.tokenUser(s.AccessToken)
			if err != nil {
				t.Fatal(err)
			}
			(&fixture{a: l.a}).join(l.appID, l.a.ownerToken, userID, viewer)
			c := subscribed(t, l, "Bearer "+s.AccessToken)
			l.a.ok(`mutation { logoutEverywhere }`, &map[string]any{}, as(s.AccessToken))
			wantIdleClosed(t, c, 4401)
		})
		t.Run("secret key rotated", func(t *testing.T) {
			l := newLiveApp(t, newAPI(t, db))
			c := subscribed(t, l, "Bearer "+l.secret)
			l.a.ok(`mutation($a: ID!) { rotateAppSecret(id: $a) { secretKey } }`, &map[string]any{}, client.Var("a", l.appID))
			wantIdleClosed(t, c, 4401)
		})
	})
}

// wantIdleClosed waits for c to close with code, allowing only events that
// were on their way and pings.
func wantIdleClosed(t *testing.T, c *wsClient, code websocket.StatusCode) {
	t.Helper()
	got, reason, msgs := c.closedWith()
	if got != code {
		t.Fatalf("closed with %d %q after %d messages, want %d", got, reason, len(msgs), code)
	}
	for _, m := range msgs {
		if m.Type != "next" && m.Type != "ping" {
			t.Fatalf("before closing, the server sent %+v", m)
		}
	}
}

// Sockets closed because their key was rotated do not count as failed key
// lookups against their address: a server whose sockets all end at a
// rotation reconnects with the new key at once, rather than finding its
// address rate-limited by its own rechecks.
func TestRotatedKeyRechecksAreNoGuesses(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *gorm.DB) {
		a := newAPI(t, db, func(c *config) { c.RatePerIP = models.Rate{PerSecond: 0.001, Burst: 3} })
		l := newLiveApp(t, a)
		o := wsOpener{t, l.url}
		var sockets []*wsClient
		for i := range 4 {
			sockets = append(sockets, o.acked(fmt.Sprintf("socket %d of the key", i), map[string]any{"Authorization": "Bearer " + l.secret}))
		}
		var out struct{ RotateAppSecret struct{ SecretKey string } }
		a.ok(`mutation($a: ID!) { rotateAppSecret(id: $a) { secretKey } }`, &out, client.Var("a", l.appID))
		for _, c := range sockets {
			wantIdleClosed(t, c, 4401)
		}
		o.acked("the new key", map[string]any{"Authorization": "Bearer " + out.RotateAppSecret.SecretKey})
	})
}
