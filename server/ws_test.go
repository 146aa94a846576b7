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
)

// wsClient speaks graphql-transport-ws (the protocol of the npm graphql-ws
// package) over a real websocket to a real HTTP server.
type wsClient struct {
	t    testing.TB
	conn *websocket.Conn
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
	_, b, err := c.conn.Read(ctx)
	if err != nil {
		return wsMsg{}, err
	}
	var m wsMsg
	if err := json.Unmarshal(b, &m); err != nil {
		return wsMsg{}, err
	}
	return m, nil
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
