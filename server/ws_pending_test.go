package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/crumbs-dev/crumbs/models/modelstest"
	"gorm.io/gorm"
)

// dialFrom opens /graphql as a client behind a proxy that says it is ip
// (X-Forwarded-For), without sending connection_init.
func dialFrom(t *testing.T, baseURL, ip string) (*wsClient, *http.Response, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wsWait)
	defer cancel()
	conn, resp, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(baseURL, "http")+"/graphql", &websocket.DialOptions{
		Subprotocols: []string{"graphql-transport-ws"}, HTTPHeader: http.Header{"X-Forwarded-For": {ip}},
	})
	if err != nil {
		return nil, resp, err
	}
	t.Cleanup(func() { conn.CloseNow() })
	return &wsClient{t: t, conn: conn}, resp, nil
}

// pendingOpen opens one websocket from ip that must be upgraded.
func pendingOpen(t *testing.T, baseURL, ip string) *wsClient {
	t.Helper()
	c, resp, err := dialFrom(t, baseURL, ip)
	if err != nil {
		t.Fatalf("from %s: %v (%v)", ip, err, resp)
	}
	return c
}

// pendingRefused opens one websocket from ip that must be refused as a
// rate limit is: 429, Retry-After and RATE_LIMITED, with message.
func pendingRefused(t *testing.T, baseURL, ip, message string) {
	t.Helper()
	_, resp, err := dialFrom(t, baseURL, ip)
	if err == nil || resp == nil || resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("from %s: %v %+v, want 429", ip, err, resp)
	}
	if resp.Header.Get("Retry-After") != "1" {
		t.Fatalf("Retry-After %q, want 1", resp.Header.Get("Retry-After"))
	}
	// coder/websocket keeps the start of a refused handshake's body.
	body, _ := io.ReadAll(resp.Body)
	var out struct{ Errors []gqlError }
	if json.Unmarshal(body, &out) != nil || len(out.Errors) != 1 || out.Errors[0].Extensions.Code != "RATE_LIMITED" ||
		!strings.Contains(out.Errors[0].Message, message) {
		t.Fatalf("body %s, want RATE_LIMITED %q", body, message)
	}
}

// Websockets not yet acknowledged (no connection_init) are held to
// CRUMBS_MAX_PENDING_WEBSOCKETS_PER_IP per client IP, found as every
// request's is (X-Forwarded-For only from trusted proxies), and to
// CRUMBS_MAX_PENDING_WEBSOCKETS on the replica. An upgrade past either is
// answered 429 with Retry-After and RATE_LIMITED, as a rate-limited
// request is, before it costs a socket. A place comes back once its socket
// is acknowledged or closed. Without the caps one address held thousands
// of sockets, each with a goroutine and its buffers, for 10 s each.
func TestPendingWebsocketsAreCappedPerIP(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *gorm.DB) {
		a := newAPI(t, db, func(c *config) {
			c.MaxPendingWebsocketsPerIP, c.MaxPendingWebsockets = 2, 3
			c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}
		})
		l := newLiveApp(t, a)
		first := pendingOpen(t, l.url, "203.0.113.1")
		second := pendingOpen(t, l.url, "203.0.113.1")
		pendingRefused(t, l.url, "203.0.113.1", "from this address")
		pendingOpen(t, l.url, "203.0.113.2")
		pendingRefused(t, l.url, "203.0.113.3", "on this server")

		// An acknowledged socket gives its pending place back...
		if ack, err := first.init(map[string]any{"Authorization": "Bearer " + l.secret}); err != nil || ack.Type != "connection_ack" {
			t.Fatalf("connection_init answered %+v %v", ack, err)
		}
		third := pendingOpen(t, l.url, "203.0.113.1")
		pendingRefused(t, l.url, "203.0.113.1", "from this address")
		// ...and so does one that closes, once the server has seen it.
		second.conn.Close(websocket.StatusNormalClosure, "")
		third.conn.Close(websocket.StatusNormalClosure, "")
		deadline := time.Now().Add(wsWait)
		for {
			c, _, err := dialFrom(t, l.url, "203.0.113.3")
			if err == nil {
				c.conn.CloseNow()
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("after two pending websockets closed: %v", err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	})
	t.Run("untrusted X-Forwarded-For", func(t *testing.T) {
		a := newAPI(t, modelstest.SQLite(t), func(c *config) { c.MaxPendingWebsocketsPerIP = 1 })
		l := newLiveApp(t, a)
		pendingOpen(t, l.url, "203.0.113.1")
		// Without trusted proxies the header is the client's word: both
		// come from the peer's address.
		pendingRefused(t, l.url, "203.0.113.2", "from this address")
	})
}

func TestMaxPendingWebsocketsSetting(t *testing.T) {
	wantCountSetting(t, "max-pending-websockets", "CRUMBS_MAX_PENDING_WEBSOCKETS", 1000,
		func(c *config) int { return c.MaxPendingWebsockets })
	wantCountSetting(t, "max-pending-websockets-per-ip", "CRUMBS_MAX_PENDING_WEBSOCKETS_PER_IP", 10,
		func(c *config) int { return c.MaxPendingWebsocketsPerIP })
}

// Until its connection_init is acknowledged a websocket's messages are
// held to 64 KiB (1009, message too big, past it): every such message is
// read whole into memory, and anyone may open CRUMBS_MAX_PENDING_WEBSOCKETS
// sockets, which could each hold the 2 MiB body limit for 10 s. Once
// acknowledged, the body limit applies.
func TestPendingWebsocketsReadLittle(t *testing.T) {
	a := newAPI(t, modelstest.SQLite(t))
	l := newLiveApp(t, a)
	big := strings.Repeat("x", 100<<10)

	c, _, err := dialWS(t, l.url, "")
	if err != nil {
		t.Fatal(err)
	}
	p, _ := json.Marshal(map[string]any{"Authorization": "Bearer " + l.secret, "padding": big})
	c.send(wsMsg{Type: "connection_init", Payload: p})
	if code, reason, msgs := c.closedWith(); code != websocket.StatusMessageTooBig {
		t.Fatalf("a connection_init of 100 KiB: closed with %d %q after %+v, want 1009", code, reason, msgs)
	}

	c = l.subscribe(t, "Bearer "+l.secret)
	c.conn.SetReadLimit(1 << 20) // the pong echoes the ping
	p, _ = json.Marshal(map[string]any{"padding": big})
	c.send(wsMsg{Type: "ping", Payload: p})
	for {
		m, err := c.next()
		if err != nil {
			t.Fatalf("a ping of 100 KiB after connection_ack: %v", err)
		}
		if m.Type == "pong" {
			break
		}
	}
}
