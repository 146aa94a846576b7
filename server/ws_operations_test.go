package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/99designs/gqlgen/client"
	"github.com/coder/websocket"
	"github.com/crumbs-dev/crumbs/models/modelstest"
	"gorm.io/gorm"
)

// A query sent over a websocket reads what the store holds when it runs,
// like one sent over HTTP. Every operation on a connection shared the
// dataloaders of its upgrade request, so a definition renamed after the
// connection first read it kept its old name on that connection for as long
// as it stayed open, and the loaders' caches grew with every object any of
// its operations read.
func TestWebsocketQueriesReadFresh(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *gorm.DB) {
		l := newLiveApp(t, newAPI(t, db))
		l.a.ok(`mutation($in: TriggerInput!) { trigger(input: $in) { accepted } }`, &map[string]any{},
			client.Var("in", map[string]any{"appId": l.appID, "deviceId": "ws-query-device", "code": "view", "url": "https://s.example/q"}), anonymous())
		c, _, err := dialWS(t, l.url, "")
		if err != nil {
			t.Fatal(err)
		}
		if ack, err := c.init(map[string]any{"Authorization": "Bearer " + l.a.ownerToken}); err != nil || ack.Type != "connection_ack" {
			t.Fatalf("connection_init answered %+v %v", ack, err)
		}
		// names queries the names of the events' definitions over the websocket.
		names := func(id string) (string, []string) {
			t.Helper()
			c.subscribe(id, `query($a: ID!) { events(appId: $a) { edges { node { definition { id name } } } } }`, map[string]any{"a": l.appID})
			m, err := c.next()
			if err != nil || m.Type != "next" || m.ID != id {
				t.Fatalf("want the answer, got %+v %v", m, err)
			}
			var out struct {
				Data struct {
					Events struct {
						Edges []struct {
							Node struct{ Definition struct{ ID, Name string } }
						}
					}
				}
				Errors []gqlError
			}
			if err := json.Unmarshal(m.Payload, &out); err != nil || len(out.Errors) > 0 || len(out.Data.Events.Edges) == 0 {
				t.Fatalf("answer %s %v", m.Payload, err)
			}
			if m, err := c.next(); err != nil || m.Type != "complete" || m.ID != id {
				t.Fatalf("want complete, got %+v %v", m, err)
			}
			var got []string
			for _, e := range out.Data.Events.Edges {
				got = append(got, e.Node.Definition.Name)
			}
			return out.Data.Events.Edges[0].Node.Definition.ID, got
		}
		defID, _ := names("before")
		l.a.ok(`mutation($id: ID!) { updateEventDefinition(id: $id, input: {name: "Renamed over HTTP"}) { name } }`, &map[string]any{}, client.Var("id", defID))
		_, after := names("after")
		for _, name := range after {
			if name != "Renamed over HTTP" {
				t.Fatalf("after the rename the websocket read %q", after)
			}
		}
	})
}

// The rules of an operation hold over a websocket as over HTTP: one
// operation may check at most one password, so aliases cannot make one
// message test many guesses.
func TestWebsocketOperationsKeepThePasswordRule(t *testing.T) {
	l := newLiveApp(t, newAPI(t, modelstest.SQLite(t)))
	c, _, err := dialWS(t, l.url, "")
	if err != nil {
		t.Fatal(err)
	}
	if ack, err := c.init(nil); err != nil || ack.Type != "connection_ack" {
		t.Fatalf("connection_init answered %+v %v", ack, err)
	}
	c.subscribe("guesses", `mutation { a: login(email: "x@example.com", password: "guess one") { accessToken } b: login(email: "x@example.com", password: "guess two") { accessToken } }`, nil)
	m, err := c.next()
	if err != nil {
		t.Fatal(err)
	}
	var errs []gqlError
	if m.Type == "next" {
		var p gqlPayload
		json.Unmarshal(m.Payload, &p)
		errs = p.Errors
	} else {
		json.Unmarshal(m.Payload, &errs)
	}
	if m.ID != "guesses" || len(errs) != 1 || !strings.Contains(errs[0].Message, "at most one login") {
		t.Fatalf("two logins in one message answered %s %s", m.Type, m.Payload)
	}
}

// A websocket message is held to CRUMBS_MAX_BODY_BYTES like a request body:
// a larger one closes the connection with 1009 (message too big). The
// websocket took messages up to gqlgen's own 1 MB whatever the setting.
func TestWebsocketMessagesKeepTheBodyLimit(t *testing.T) {
	l := newLiveApp(t, newAPI(t, modelstest.SQLite(t), func(c *config) { c.MaxBodyBytes = 8 << 10 }))
	c, _, err := dialWS(t, l.url, "")
	if err != nil {
		t.Fatal(err)
	}
	if ack, err := c.init(map[string]any{"Authorization": "Bearer " + l.a.ownerToken}); err != nil || ack.Type != "connection_ack" {
		t.Fatalf("connection_init answered %+v %v", ack, err)
	}
	// Within the limit: answered.
	c.subscribe("small", "{ __typename } # "+strings.Repeat("x", 4<<10), nil)
	if m, err := c.next(); err != nil || m.Type != "next" || m.ID != "small" {
		t.Fatalf("a message within the limit answered %+v %v", m, err)
	}
	c.subscribe("large", "{ __typename } # "+strings.Repeat("x", 16<<10), nil)
	if got, reason, msgs := c.closedWith(); got != websocket.StatusMessageTooBig {
		t.Fatalf("a message past the limit: closed with %d %q after %+v, want 1009", got, reason, msgs)
	}
}
