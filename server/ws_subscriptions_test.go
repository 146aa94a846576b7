package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/coder/websocket"
	"github.com/crumbs-dev/crumbs/graph"
	"github.com/crumbs-dev/crumbs/models/modelstest"
	"gorm.io/gorm"
)

// One websocket runs at most graph.MaxSubscriptions subscriptions, in
// either protocol: the one past them is answered with an error for its id
// (RATE_LIMITED) and the connection goes on; once one ends, another may
// start. In the older protocol a start whose id is running is refused the
// same way (gqlgen lost track of the first, which ran until the connection
// ended). Without the cap one viewer's connection grew the server by
// 470 MB with 20,000 subscribe messages sent in 0.3 s.
func TestSubscriptionsPerWebsocketAreCapped(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *gorm.DB) {
		l := newLiveApp(t, newAPI(t, db))
		viewer := l.member("viewer")
		for _, p := range []struct{ protocol, start, stop string }{
			{"graphql-transport-ws", "subscribe", "complete"},
			{"graphql-ws", "start", "stop"},
		} {
			t.Run(p.protocol, func(t *testing.T) {
				ctx, cancel := context.WithTimeout(context.Background(), wsWait)
				defer cancel()
				conn, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(l.url, "http")+"/graphql", &websocket.DialOptions{Subprotocols: []string{p.protocol}})
				if err != nil {
					t.Fatal(err)
				}
				defer conn.CloseNow()
				c := &wsClient{t: t, conn: conn}
				if ack, err := c.init(map[string]any{"Authorization": "Bearer " + viewer}); err != nil || ack.Type != "connection_ack" {
					t.Fatalf("connection_init answered %+v %v", ack, err)
				}
				start := func(id string) {
					payload, _ := json.Marshal(map[string]any{"query": liveQuery, "variables": map[string]any{"a": l.appID}})
					c.send(wsMsg{ID: id, Type: p.start, Payload: payload})
				}
				// refused reads up to the error for id, which must be the
				// only message but events and keep-alives.
				refused := func(id string) {
					t.Helper()
					for {
						m, err := c.next()
						if err != nil {
							t.Fatalf("waiting for the refusal of %s: %v", id, err)
						}
						switch m.Type {
						case "next", "data", "ka":
							continue
						case "error":
							var errs []gqlError
							json.Unmarshal(m.Payload, &errs)
							if m.ID != id || len(errs) != 1 || errs[0].Extensions.Code != "RATE_LIMITED" {
								t.Fatalf("refusal %+v", m)
							}
							return
						}
						t.Fatalf("before the refusal of %s: %+v", id, m)
					}
				}
				for i := range graph.MaxSubscriptions {
					start(fmt.Sprint("s", i))
				}
				start("one too many")
				refused("one too many")
				if p.protocol == "graphql-ws" {
					start("s7")
					refused("s7")
				}
				// The connection goes on, and an ended subscription gives its place back.
				c.send(wsMsg{ID: "s0", Type: p.stop})
				start("in its place")
				defer l.triggering()()
				for {
					m, err := c.next()
					if err != nil {
						t.Fatalf("waiting for an event of the new subscription: %v", err)
					}
					if m.Type == "error" || m.Type == "connection_error" {
						t.Fatalf("%+v", m)
					}
					if m.ID == "in its place" && (m.Type == "next" || m.Type == "data") {
						break
					}
				}
			})
		}
	})
}
