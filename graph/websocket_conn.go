package graph

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/99designs/gqlgen/graphql/handler/transport"
	"github.com/coder/websocket"
	"github.com/crumbs-dev/crumbs/models"
	"github.com/vektah/gqlparser/v2/gqlerror"
)

// Close codes of the graphql-transport-ws protocol
// (github.com/enisdenjo/graphql-ws, PROTOCOL.md), and RFC 6455's "try again
// later".
const (
	closeInternalError      = 1011
	closeTryAgainLater      = 1013
	closeInvalidMessage     = 4400
	closeUnauthorized       = 4401
	closeForbidden          = 4403
	closeInitTimeout        = 4408 // also a ping's pong timeout
	closeSubscriberExists   = 4409
	closeTooManyInitRequest = 4429
)

// wsImplementation accepts websockets with coder/websocket (the origin was
// checked by websocketUpgrades) and wraps them in wsConn, whose writes wait
// at most writeTimeout.
type wsImplementation struct{ writeTimeout time.Duration }

func (i wsImplementation) Accept(w http.ResponseWriter, r *http.Request, opts transport.WebsocketAcceptOptions) (transport.WebsocketConn, error) {
	coder := transport.CoderWebsocketImplementation{AcceptOptions: websocket.AcceptOptions{InsecureSkipVerify: true}}
	inner, err := coder.Accept(w, r, opts)
	if err != nil {
		return nil, err
	}
	c := &wsConn{WebsocketConn: inner, transportWS: inner.Subprotocol() == "graphql-transport-ws", active: map[string]bool{}, writeTimeout: i.writeTimeout}
	c.mu.Lock()
	c.initTimer = time.AfterFunc(initTimeout, func() { c.closeWith(closeInitTimeout, "Connection initialisation timeout") })
	c.mu.Unlock()
	if s := wsSessionFrom(r.Context()); s != nil {
		s.mu.Lock()
		s.conn = c
		s.mu.Unlock()
	}
	return c, nil
}

// MaxSubscriptions is the most subscriptions one websocket may have running.
// Each costs its goroutines and a buffer of events, and takes a subscribe
// message of a few dozen bytes to start: without a cap, one viewer's
// connection grew the server by 470 MB with 20,000 subscriptions sent in
// 0.3 s. The dashboard runs one.
const MaxSubscriptions = 100

// WebsocketBufferBytes bounds the events waiting for one websocket's
// subscriptions together (models.LiveBudget), besides the 1,000 each may
// hold: 100 subscriptions of 1,000 events each would otherwise hold
// hundreds of MB for a client that reads slowly, and a credential may open
// 100 such sockets. An event that does not fit is skipped for that
// subscription, as one past its 1,000 is. It holds about 2,000 typical
// events, so a dashboard's one subscription meets its 1,000 first.
const WebsocketBufferBytes = 1 << 20

// DefaultWebsocketWriteTimeout is how long a message may wait for a
// websocket's client to take it. A client that keeps its socket open without
// reading would otherwise hold every write, and with it the connection, its
// place among the websockets of its credential and its subscriptions'
// buffered events, for as long as it likes; past the timeout the connection
// is dropped (no close frame: the socket is full) and the client reconnects
// with its cursor.
const DefaultWebsocketWriteTimeout = 10 * time.Second

// DefaultWebsocketPingInterval is how often the server pings a
// graphql-transport-ws connection (the older graphql-ws protocol gets its
// "ka" message as often). A connection that has not answered with a pong
// within twice the interval is closed with 4408: a peer that went away
// without closing (a laptop lid, a dropped network) would otherwise be
// noticed only at a write, and an idle socket through a proxy that drops
// silent connections after 60 s would die unnoticed.
const DefaultWebsocketPingInterval = 15 * time.Second

// wsConn enforces the graphql-transport-ws rules that gqlgen's transport
// leaves out, closing with the protocol's codes: a second connection_init
// (4429), a subscribe before connection_init (4401), a subscribe whose id is
// still active (4409), a message that is not one of the protocol's (4400).
// In both protocols it closes a connection not acknowledged within
// initTimeout (4408), and one whose connection_init payload is not an object
// (4400): gqlgen's transport gives up on such a connection without closing
// it, and the server's deadlines no longer apply to a websocket. In both
// protocols a subscription past MaxSubscriptions (or, in the older one, a
// start whose id is still active: gqlgen would lose track of the first) is
// answered with an error message for its id, and the connection goes on.
// A message its client has not taken within writeTimeout drops the
// connection.
type wsConn struct {
	transport.WebsocketConn
	transportWS  bool
	writeTimeout time.Duration

	mu        sync.Mutex
	initTimer *time.Timer
	pongTimer *time.Timer
	inited    bool
	// acked is whether connection_ack was sent; readLimit is gqlgen's limit,
	// in force from then on.
	acked     bool
	readLimit int64
	closed    bool
	active    map[string]bool
}

type wsMessage struct {
	Type string `json:"type"`
	ID   string `json:"id"`
}

func (c *wsConn) NextReader() (int, io.Reader, error) {
	for {
		typ, r, err := c.WebsocketConn.NextReader()
		if err != nil {
			return typ, r, err
		}
		data, err := io.ReadAll(r)
		if err != nil {
			return typ, nil, err
		}
		var msg struct {
			wsMessage
			Payload json.RawMessage `json:"payload"`
		}
		if json.Unmarshal(data, &msg) != nil {
			if !c.transportWS {
				return typ, bytes.NewReader(data), nil // gqlgen answers it in the older protocol
			}
			return c.refuse(closeInvalidMessage, "Invalid message received")
		}
		refusal, code, reason := c.admit(msg.wsMessage, msg.Payload)
		switch {
		case code != 0:
			return c.refuse(code, reason)
		case refusal != "":
			if err := c.refuseSubscription(msg.ID, refusal); err != nil {
				return 0, nil, err
			}
		default:
			return typ, bytes.NewReader(data), nil
		}
	}
}

// admit checks a message against the protocol and the connection's
// subscriptions: a close code and reason end the connection, a refusal
// answers the subscription with an error message.
func (c *wsConn) admit(msg wsMessage, payload json.RawMessage) (refusal string, code int, reason string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if msg.Type == "connection_init" && !initPayload(payload) {
		return "", closeInvalidMessage, "Invalid message received: the connection_init payload must be an object"
	}
	tooMany := fmt.Sprintf("this connection has %d subscriptions running, the most it may; complete one first", MaxSubscriptions)
	if !c.transportWS {
		switch msg.Type {
		case "start":
			switch {
			case c.active[msg.ID]:
				return "a subscription with id " + msg.ID + " is running on this connection", 0, ""
			case len(c.active) >= MaxSubscriptions:
				return tooMany, 0, ""
			}
			c.active[msg.ID] = true
		case "stop":
			delete(c.active, msg.ID)
		}
		return "", 0, ""
	}
	switch msg.Type {
	case "connection_init":
		if c.inited {
			return "", closeTooManyInitRequest, "Too many initialisation requests"
		}
		c.inited = true
	case "subscribe":
		switch {
		case !c.inited:
			return "", closeUnauthorized, "Unauthorized"
		case msg.ID == "":
			return "", closeInvalidMessage, "Invalid message received: subscribe without id"
		case c.active[msg.ID]:
			return "", closeSubscriberExists, closeReason("Subscriber for " + msg.ID + " already exists")
		case len(c.active) >= MaxSubscriptions:
			return tooMany, 0, ""
		}
		c.active[msg.ID] = true
	case "complete":
		delete(c.active, msg.ID)
	case "ping", "pong":
	default:
		return "", closeInvalidMessage, "Invalid message received"
	}
	return "", 0, ""
}

// refuseSubscription answers the subscription id with an error message of
// code RATE_LIMITED, in the shape gqlgen gives its own (a list of errors).
// It writes past WriteJSON, which would take the id for that of a running
// subscription ending.
func (c *wsConn) refuseSubscription(id, message string) error {
	return c.write(map[string]any{"type": "error", "id": id, "payload": gqlerror.List{{
		Message: message, Extensions: map[string]any{"code": models.CodeRateLimited},
	}}})
}

// WriteJSON notes which subscriptions the server has ended, so their ids
// may be used again, and ends the init timeout and initReadLimit once
// connection_ack is sent: whatever keeps a connection_init from being
// acknowledged, the connection is closed at the timeout.
func (c *wsConn) WriteJSON(v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	var msg wsMessage
	if json.Unmarshal(data, &msg) != nil {
		return c.write(json.RawMessage(data))
	}
	if msg.Type == "complete" || msg.Type == "error" {
		c.mu.Lock()
		delete(c.active, msg.ID)
		c.mu.Unlock()
	}
	if err := c.write(json.RawMessage(data)); err != nil {
		return err
	}
	if msg.Type == "connection_ack" {
		c.mu.Lock()
		c.initTimer.Stop()
		if !c.acked && c.readLimit != 0 {
			c.setReadLimitLocked(c.readLimit)
		}
		c.acked = true
		c.mu.Unlock()
	}
	return nil
}

// write writes v, dropping the connection when its client has not taken it
// within writeTimeout: the write then fails, and so does gqlgen's read loop,
// which ends the connection and its subscriptions.
func (c *wsConn) write(v any) error {
	if c.writeTimeout > 0 {
		t := time.AfterFunc(c.writeTimeout, func() { c.WebsocketConn.Close() })
		defer t.Stop()
	}
	return c.WebsocketConn.WriteJSON(v)
}

// initPayload reports whether a connection_init payload is absent, null or
// an object, the payloads gqlgen's transport accepts.
func initPayload(raw json.RawMessage) bool {
	var p transport.InitPayload
	return len(raw) == 0 || json.Unmarshal(raw, &p) == nil
}

// WriteClose closes with gqlgen's code unless the connection is already
// closing with one of ours.
func (c *wsConn) WriteClose(code int, reason string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil
	}
	c.closed = true
	return c.WebsocketConn.WriteClose(code, reason)
}

func (c *wsConn) closeWith(code int, reason string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closeLocked(code, reason)
}

func (c *wsConn) closeLocked(code int, reason string) {
	if c.closed {
		return
	}
	c.closed = true
	c.initTimer.Stop()
	if c.pongTimer != nil {
		c.pongTimer.Stop()
	}
	c.WebsocketConn.WriteClose(code, reason)
}

func (c *wsConn) refuse(code int, reason string) (int, io.Reader, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.refuseLocked(code, reason)
}

// refuseLocked closes the connection and tells gqlgen's read loop it ended.
func (c *wsConn) refuseLocked(code int, reason string) (int, io.Reader, error) {
	c.closeLocked(code, reason)
	return 0, nil, transport.ErrWebsocketClosed
}

// initReadLimit bounds a message read before connection_init is
// acknowledged: anyone may open a socket and send one, and it is read whole
// into memory, so each of CRUMBS_MAX_PENDING_WEBSOCKETS sockets could hold
// the body limit (2 MiB) for the 10 s of the init timeout. A
// connection_init carries a token, well under it.
const initReadLimit = 64 << 10

// SetReadLimit passes gqlgen's limit to the connection, held to
// initReadLimit until connection_init is acknowledged.
func (c *wsConn) SetReadLimit(limit int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.readLimit = limit
	if !c.acked && (limit < 0 || limit > initReadLimit) {
		limit = initReadLimit
	}
	c.setReadLimitLocked(limit)
}

func (c *wsConn) setReadLimitLocked(limit int64) {
	if l, ok := c.WebsocketConn.(transport.WebsocketReadLimiter); ok {
		l.SetReadLimit(limit)
	}
}

// SetReadDeadline is how gqlgen waits for the pong of its ping
// (PingPongInterval): a deadline closes the connection with 4408 when it
// passes, and a zero time, set when a pong comes, lifts it. gqlgen's
// adapter drops the connection at the deadline without a close frame, so a
// client that is alive but late could not tell why.
func (c *wsConn) SetReadDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.pongTimer != nil {
		c.pongTimer.Stop()
		c.pongTimer = nil
	}
	if !t.IsZero() && !c.closed {
		c.pongTimer = time.AfterFunc(time.Until(t), func() {
			c.closeWith(closeInitTimeout, "Pong timeout: no pong answered the server's ping")
		})
	}
	return nil
}

// closeReason fits a close reason into a control frame (123 bytes).
func closeReason(s string) string {
	if len(s) <= 123 {
		return s
	}
	return strings.ToValidUTF8(s[:119], "") + "…"
}
