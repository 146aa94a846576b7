package main

import (
	"errors"
	"io"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/crumbs-dev/crumbs/models/modelstest"
)

// handshakeHeaders are the headers of a websocket handshake, without its
// method: sent on a POST, or with one of them left out, they are no
// handshake.
var handshakeHeaders = map[string]string{
	"Connection":            "Upgrade",
	"Upgrade":               "websocket",
	"Sec-WebSocket-Version": "13",
	"Sec-WebSocket-Key":     "dGhlIHNhbXBsZSBub25jZQ==",
}

// upgradeVariants are the headers of requests that claim an upgrade without
// being a websocket handshake.
var upgradeVariants = []struct {
	name   string
	header map[string]string
}{
	{"Upgrade: websocket", map[string]string{"Upgrade": "websocket"}},
	{"Upgrade: h2c", map[string]string{"Connection": "Upgrade", "Upgrade": "h2c"}},
	{"a handshake's headers", handshakeHeaders},
	{"a handshake's headers but its key", func() map[string]string {
		h := maps.Clone(handshakeHeaders)
		delete(h, "Sec-WebSocket-Key")
		return h
	}()},
}

// timedServer is the real handler on a real HTTP server with short read and
// write timeouts, standing in for run's (30 s and 60 s).
func timedServer(t *testing.T, h http.Handler) *httptest.Server {
	srv := httptest.NewUnstartedServer(h)
	srv.Config.ReadTimeout = 500 * time.Millisecond
	srv.Config.WriteTimeout = time.Second
	srv.Start()
	t.Cleanup(srv.Close)
	return srv
}

// A request that claims an upgrade but is no websocket handshake keeps the
// server's deadlines: a POST that sends its headers and then trickles its
// body (or stops) is cut off at the read timeout, as without the header.
// Lifting them for any Upgrade header let one client hold connections, and
// the memory of their bodies, for as long as it liked.
func TestUpgradeHeaderKeepsDeadlines(t *testing.T) {
	srv := timedServer(t, newAPI(t, modelstest.SQLite(t)).handler)
	variants := append([]struct {
		name   string
		header map[string]string
	}{{"no Upgrade header", nil}}, upgradeVariants...)
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			conn, err := net.Dial("tcp", srv.Listener.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			var head strings.Builder
			head.WriteString("POST /graphql HTTP/1.1\r\nHost: " + srv.Listener.Addr().String() + "\r\n")
			for k, val := range v.header {
				head.WriteString(k + ": " + val + "\r\n")
			}
			head.WriteString("Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n{\"query\":")
			if _, err := io.WriteString(conn, head.String()); err != nil {
				t.Fatal(err)
			}
			conn.SetReadDeadline(time.Now().Add(10 * time.Second))
			answer, err := io.ReadAll(conn)
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				t.Fatalf("the server kept the connection open past its read timeout; it answered %q", answer)
			}
		})
	}
}

// A websocket keeps its connection past the server's read and write
// timeouts: the deadlines are lifted once the upgrade has succeeded.
func TestWebsocketOutlivesServerTimeouts(t *testing.T) {
	a := newAPI(t, modelstest.SQLite(t))
	srv := timedServer(t, a.handler)
	c, _, err := dialWS(t, srv.URL, "")
	if err != nil {
		t.Fatal(err)
	}
	if ack, err := c.init(map[string]any{"Authorization": "Bearer " + a.ownerToken}); err != nil || ack.Type != "connection_ack" {
		t.Fatalf("connection_init answered %+v %v", ack, err)
	}
	time.Sleep(3 * srv.Config.WriteTimeout / 2)
	c.send(wsMsg{Type: "ping"})
	if msg, err := c.next(); err != nil || msg.Type != "pong" {
		t.Fatalf("after the server's timeouts: %+v %v", msg, err)
	}
}
