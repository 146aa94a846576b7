package main

import (
	"strings"
	"testing"
	"time"

	"github.com/crumbs-dev/crumbs/models/modelstest"
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
