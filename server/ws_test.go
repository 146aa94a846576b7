package main

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/crumbs-dev/crumbs/models/modelstest"
	"gorm.io/gorm"
)

// wsClient speaks graphql-transport-ws (the protocol of the npm graphql-ws
// package) over a real websocket to a real HTTP server.
type wsClient struct {
	t    testing.TB
	conn *websocket.Conn
	// seePings makes next return the server's pings; otherwise it answers
	// them with a pong and reads on, as every graphql-ws client does, so
	// that a test open longer than the ping interval reads what it awaits.
	seePings bool
}

// wsMsg is one message of the protocol.
type wsMsg struct {
	ID      string          `json:"id,omitempty"`
	Type    string          `json:"type"`
	Payload json.RawMessage `json:"payload,omitempty"`
}

// wsWait bounds every read: a test that waits longer has failed.
const wsWait = 30 * time.Second

// dialWS opens /graphql of the server at baseURL (http://…) as a browser at
// origin would ("" sends no Origin header).
func dialWS(t testing.TB, baseURL, origin string) (*wsClient, *http.Response, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wsWait)
	defer cancel()
	header := http.Header{}
	if origin != "" {
		header.Set("Origin", origin)
	}
	conn, resp, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(baseURL, "http")+"/graphql", &websocket.DialOptions{
		Subprotocols: []string{"graphql-transport-ws"}, HTTPHeader: header,
	})
	if err != nil {
		return nil, resp, err
	}
	c := &wsClient{t: t, conn: conn}
	t.Cleanup(func() { conn.CloseNow() })
	return c, resp, nil
}

func (c *wsClient) send(m wsMsg) {
	c.t.Helper()
	b, _ := json.Marshal(m)
	ctx, cancel := context.WithTimeout(context.Background(), wsWait)
	defer cancel()
	if err := c.conn.Write(ctx, websocket.MessageText, b); err != nil {
		c.t.Fatalf("websocket write: %v", err)
	}
}

func (c *wsClient) sendRaw(s string) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wsWait)
	defer cancel()
	if err := c.conn.Write(ctx, websocket.MessageText, []byte(s)); err != nil {
		c.t.Fatalf("websocket write: %v", err)
	}
}

// next reads the next message, or the error that ended the connection.
func (c *wsClient) next() (wsMsg, error) {
	ctx, cancel := context.WithTimeout(context.Background(), wsWait)
	defer cancel()
	for {
		_, b, err := c.conn.Read(ctx)
		if err != nil {
			return wsMsg{}, err
		}
		var m wsMsg
		if err := json.Unmarshal(b, &m); err != nil {
			return wsMsg{}, err
		}
		if m.Type != "ping" || c.seePings {
			return m, nil
		}
		// A connection closing meanwhile shows at the next read.
		c.conn.Write(ctx, websocket.MessageText, []byte(`{"type":"pong"}`))
	}
}

// init sends connection_init with payload and returns the answer.
func (c *wsClient) init(payload map[string]any) (wsMsg, error) {
	c.t.Helper()
	p, _ := json.Marshal(payload)
	if payload == nil {
		p = nil
	}
	c.send(wsMsg{Type: "connection_init", Payload: p})
	return c.next()
}

func (c *wsClient) subscribe(id, query string, vars map[string]any) {
	c.t.Helper()
	p, _ := json.Marshal(map[string]any{"query": query, "variables": vars})
	c.send(wsMsg{ID: id, Type: "subscribe", Payload: p})
}

// closedWith reads until the connection ends and returns its close code and
// the messages received before.
func (c *wsClient) closedWith() (websocket.StatusCode, string, []wsMsg) {
	var got []wsMsg
	for {
		m, err := c.next()
		if err != nil {
			var ce websocket.CloseError
			if errors.As(err, &ce) {
				return ce.Code, ce.Reason, got
			}
			return websocket.CloseStatus(err), err.Error(), got
		}
		got = append(got, m)
	}
}

// nextPayload is the payload of the next "next" message, decoded.
type gqlPayload struct {
	Data   map[string]any `json:"data"`
	Errors []gqlError     `json:"errors"`
}

// wsOpener opens websockets to a live app's server and sends their
// connection_init, for the tests of how many may be open at once.
type wsOpener struct {
	t   *testing.T
	url string
}

func (o wsOpener) open(payload map[string]any) (*wsClient, wsMsg, error) {
	o.t.Helper()
	c, _, err := dialWS(o.t, o.url, "")
	if err != nil {
		o.t.Fatal(err)
	}
	m, err := c.init(payload)
	return c, m, err
}

// acked opens one that must be acknowledged.
func (o wsOpener) acked(name string, payload map[string]any) *wsClient {
	o.t.Helper()
	c, m, err := o.open(payload)
	if err != nil || m.Type != "connection_ack" {
		o.t.Fatalf("%s: connection_init answered %+v %v", name, m, err)
	}
	return c
}

// closed opens one that must be closed with code.
func (o wsOpener) closed(name string, payload map[string]any, code websocket.StatusCode) {
	o.t.Helper()
	if _, m, err := o.open(payload); websocket.CloseStatus(err) != code {
		o.t.Fatalf("%s: connection_init answered %+v %v, want close %d", name, m, err, code)
	}
}

// freed closes c and waits until the server has seen it close: a websocket
// with payload is acknowledged again.
func (o wsOpener) freed(c *wsClient, payload map[string]any) {
	o.t.Helper()
	c.conn.Close(websocket.StatusNormalClosure, "")
	deadline := time.Now().Add(wsWait)
	for {
		c, m, err := o.open(payload)
		if err == nil && m.Type == "connection_ack" {
			return
		}
		if time.Now().After(deadline) {
			o.t.Fatalf("after a websocket closed: %+v %v", m, err)
		}
		c.conn.CloseNow()
		time.Sleep(50 * time.Millisecond)
	}
}

// At most CRUMBS_MAX_ANONYMOUS_WEBSOCKETS websockets without a credential
// are open at once on a replica: the next is closed with 1013 (try again
// later) until one of them ends. Connections with a credential do not
// count, and a secret key that is no app's is refused at connection_init
// (4401) rather than let through as a credential.
func TestAnonymousWebsocketsAreCapped(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *gorm.DB) {
		a := newAPI(t, db, func(c *config) { c.MaxAnonymousWebsockets = 2 })
		l := newLiveApp(t, a)
		o := wsOpener{t, l.url}
		first := o.acked("first anonymous", nil)
		o.acked("second anonymous", map[string]any{})
		o.closed("third anonymous", nil, 1013)
		o.acked("owner's token", map[string]any{"Authorization": "Bearer " + a.ownerToken})
		o.acked("app's secret key", map[string]any{"Authorization": "Bearer " + l.secret})
		o.closed("a secret key of no app", map[string]any{"Authorization": "Bearer sk_not_a_key"}, 4401)
		o.closed("still full", map[string]any{"note": "anonymous"}, 1013)
		// The place is free again once the server has seen the first one close.
		o.freed(first, nil)
	})
}

// At most CRUMBS_MAX_WEBSOCKETS_PER_CREDENTIAL websockets with one
// credential are open at once on a replica: a user's sign-ins count
// together, an app's secret key on its own; the next is closed with 1013
// (try again later) until one of them ends. Other users, other keys and
// connections without a credential do not count against it. Without the
// cap a viewer's token opened 20,000 subscriptions' worth of sockets.
func TestWebsocketsPerCredentialAreCapped(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *gorm.DB) {
		a := newAPI(t, db, func(c *config) { c.MaxWebsocketsPerCredential = 2 })
		l := newLiveApp(t, a)
		o := wsOpener{t, l.url}
		bearer := func(token string) map[string]any { return map[string]any{"Authorization": "Bearer " + token} }
		password := "a long enough password"
		email := a.newUser(password)
		first, second := a.login(email, password), a.login(email, password)
		other := a.login(a.newUser(password), password)

		firstSocket := o.acked("the user's first sign-in", bearer(first.AccessToken))
		o.acked("the user's second sign-in", bearer(second.AccessToken))
		o.closed("the user's first sign-in again", bearer(first.AccessToken), 1013)
		o.closed("the user's second sign-in again", bearer(second.AccessToken), 1013)
		o.acked("another user", bearer(other.AccessToken))
		o.acked("the owner", bearer(a.ownerToken))
		o.acked("the app's secret key", bearer(l.secret))
		o.acked("the app's secret key again", bearer(l.secret))
		o.closed("the app's secret key a third time", bearer(l.secret), 1013)
		o.acked("no credential", nil)
		// The place is free again once the server has seen the first one close.
		o.freed(firstSocket, bearer(second.AccessToken))
	})
}

func TestMaxWebsocketsPerCredentialSetting(t *testing.T) {
	wantCountSetting(t, "max-websockets-per-credential", "CRUMBS_MAX_WEBSOCKETS_PER_CREDENTIAL", 100,
		func(c *config) int { return c.MaxWebsocketsPerCredential })
}

func TestMaxAnonymousWebsocketsSetting(t *testing.T) {
	wantCountSetting(t, "max-anonymous-websockets", "CRUMBS_MAX_ANONYMOUS_WEBSOCKETS", 1000,
		func(c *config) int { return c.MaxAnonymousWebsockets })
}

// wantCountSetting checks a setting that is a count: its default, 0 from
// the environment, the flag winning over the environment, and refusals of
// what is not a count.
func wantCountSetting(t *testing.T, flag, env string, def int, get func(*config) int) {
	t.Helper()
	parse := func(args []string, vars map[string]string) (*config, error) {
		return parseConfig(args, func(k string) string { return vars[k] }, &strings.Builder{})
	}
	for _, tc := range []struct {
		args []string
		env  map[string]string
		want int
	}{
		{nil, nil, def},
		{nil, map[string]string{env: "0"}, 0},
		{[]string{"-" + flag, "5"}, map[string]string{env: "0"}, 5},
	} {
		if cfg, err := parse(tc.args, tc.env); err != nil || get(cfg) != tc.want {
			t.Fatalf("%v %v: %v, want %d", tc.args, tc.env, err, tc.want)
		}
	}
	for _, bad := range []string{"-1", "many", "1.5"} {
		if _, err := parse([]string{"-" + flag, bad}, nil); err == nil || !strings.Contains(err.Error(), flag) {
			t.Fatalf("%q: %v", bad, err)
		}
	}
}
