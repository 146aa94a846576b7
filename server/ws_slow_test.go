package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/crumbs-dev/crumbs/graph"
	"github.com/crumbs-dev/crumbs/models/modelstest"
)

// A subscriber that stops reading is disconnected once a message has waited
// the write timeout to be taken, and its place among the websockets of its
// credential is free again. Events waiting for it were bounded already (the
// poll drops what is past 1,000), but the connection was not: every write
// waited for it forever, so it held its place, its goroutines and up to
// 1,000 events per subscription for as long as its client kept the socket
// open without reading.
func TestSlowReaderIsDisconnected(t *testing.T) {
	a := newAPI(t, modelstest.SQLite(t), func(c *config) {
		c.MaxWebsocketsPerCredential = 1
		c.websocketWriteTimeout = time.Second
	})
	l := newLiveApp(t, a)
	auth := map[string]any{"Authorization": "Bearer " + l.secret}

	// A client whose socket takes little: the server's writes fill it soon.
	ctx, cancel := context.WithTimeout(context.Background(), wsWait)
	defer cancel()
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		conn, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		if tcp, ok := conn.(*net.TCPConn); ok {
			tcp.SetReadBuffer(4096)
		}
		return conn, err
	}
	conn, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(l.url, "http")+"/graphql", &websocket.DialOptions{
		Subprotocols: []string{"graphql-transport-ws"},
		HTTPClient:   &http.Client{Transport: &http.Transport{DialContext: dial}},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.CloseNow()
	slow := &wsClient{t: t, conn: conn}
	if ack, err := slow.init(auth); err != nil || ack.Type != "connection_ack" {
		t.Fatalf("connection_init answered %+v %v", ack, err)
	}
	// Every event is sent as many times as there are subscriptions, each
	// with its long url many times over.
	var fields strings.Builder
	for i := range 20 {
		fmt.Fprintf(&fields, " u%d: url", i)
	}
	query := `subscription($a: ID!) { eventStored(appId: $a) {` + fields.String() + ` } }`
	for i := range graph.MaxSubscriptions {
		slow.subscribe(fmt.Sprint("s", i), query, map[string]any{"a": l.appID})
	}
	defer l.triggeringAt("https://s.example/slow?" + strings.Repeat("x", 2000))()

	// The slow client never reads again; its credential's one place frees
	// once the server has given up on it.
	o := wsOpener{t, l.url}
	deadline := time.Now().Add(wsWait)
	for {
		c, m, err := o.open(auth)
		if err == nil && m.Type == "connection_ack" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the slow reader still holds its place: %+v %v", m, err)
		}
		c.conn.CloseNow()
		time.Sleep(100 * time.Millisecond)
	}
}
