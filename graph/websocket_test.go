package graph

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/99designs/gqlgen/graphql/handler"
	"github.com/99designs/gqlgen/graphql/handler/transport"
	"github.com/coder/websocket"
	"github.com/crumbs-dev/crumbs/graph/generated"
)

// wsWait bounds every read: a connection the server should have closed but
// left open fails the test after it.
const wsWait = 10 * time.Second

// withInitTimeout sets initTimeout for one test.
func withInitTimeout(t *testing.T, d time.Duration) {
	old := initTimeout
	initTimeout = d
	t.Cleanup(func() { initTimeout = old })
}

// dial opens a websocket to srv with subprotocol.
func dial(t *testing.T, srv *httptest.Server, subprotocol string) *websocket.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wsWait)
	defer cancel()
	conn, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http"), &websocket.DialOptions{Subprotocols: []string{subprotocol}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.CloseNow() })
	if got := conn.Subprotocol(); got != subprotocol {
		t.Fatalf("negotiated %q, want %q", got, subprotocol)
	}
	return conn
}

// closeCode reads until the server ends the connection and returns its close
// code, failing the test if the server leaves it open for wsWait.
func closeCode(t *testing.T, conn *websocket.Conn) websocket.StatusCode {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wsWait)
	defer cancel()
	for {
		_, msg, err := conn.Read(ctx)
		if err == nil {
			t.Logf("received %s", msg)
			continue
		}
		var ce websocket.CloseError
		if !errors.As(err, &ce) {
			t.Fatalf("the server did not close the connection: %v", err)
		}
		return ce.Code
	}
}

func send(t *testing.T, conn *websocket.Conn, msg string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wsWait)
	defer cancel()
	if err := conn.Write(ctx, websocket.MessageText, []byte(msg)); err != nil {
		t.Fatal(err)
	}
}

var subprotocols = []string{"graphql-transport-ws", "graphql-ws"}

// A client that never sends connection_init is closed with 4408, in either
// protocol.
func TestWebsocketInitTimeout(t *testing.T) {
	withInitTimeout(t, 100*time.Millisecond)
	srv := httptest.NewServer(NewHandler(&Resolver{}, HandlerOptions{}))
	defer srv.Close()
	for _, sub := range subprotocols {
		t.Run(sub, func(t *testing.T) {
			if code := closeCode(t, dial(t, srv, sub)); code != closeInitTimeout {
				t.Fatalf("closed with %d, want %d", code, closeInitTimeout)
			}
		})
	}
}

// A connection_init whose payload is not a JSON object closes the connection
// with 4400 at once (gqlgen's transport gives up on such a connection without
// closing it); null and an object are acknowledged.
func TestWebsocketInitPayloadMustBeAnObject(t *testing.T) {
	withInitTimeout(t, time.Minute) // 4400 comes at once, not at the timeout
	srv := httptest.NewServer(NewHandler(&Resolver{}, HandlerOptions{}))
	defer srv.Close()
	for _, sub := range subprotocols {
		for _, payload := range []string{`"x"`, `""`, `5`, `true`, `[1]`, `[]`} {
			t.Run(sub+" "+payload, func(t *testing.T) {
				conn := dial(t, srv, sub)
				send(t, conn, `{"type":"connection_init","payload":`+payload+`}`)
				if code := closeCode(t, conn); code != closeInvalidMessage {
					t.Fatalf("closed with %d, want %d", code, closeInvalidMessage)
				}
			})
		}
		for _, payload := range []string{`null`, `{}`, `{"x":[1,"y"]}`} {
			t.Run(sub+" "+payload, func(t *testing.T) {
				conn := dial(t, srv, sub)
				send(t, conn, `{"type":"connection_init","payload":`+payload+`}`)
				ctx, cancel := context.WithTimeout(context.Background(), wsWait)
				defer cancel()
				_, msg, err := conn.Read(ctx)
				if err != nil || !strings.Contains(string(msg), `"connection_ack"`) {
					t.Fatalf("want connection_ack, got %s %v", msg, err)
				}
			})
		}
	}
}

// The init timeout runs until the connection is acknowledged, not merely
// until connection_init arrives: a connection whose init never completes
// (here the init function never returns) is still closed with 4408.
func TestWebsocketInitTimeoutUntilAcknowledged(t *testing.T) {
	withInitTimeout(t, 100*time.Millisecond)
	release := make(chan struct{})
	srv := handler.New(generated.NewExecutableSchema(generated.Config{Resolvers: &Resolver{}}))
	srv.AddTransport(transport.Websocket{
		Implementation: wsImplementation{},
		InitFunc: func(ctx context.Context, _ transport.InitPayload) (context.Context, *transport.InitPayload, error) {
			<-release
			return ctx, nil, nil
		},
	})
	ts := httptest.NewServer(srv)
	defer ts.Close()
	defer close(release)
	for _, sub := range subprotocols {
		t.Run(sub, func(t *testing.T) {
			conn := dial(t, ts, sub)
			send(t, conn, `{"type":"connection_init","payload":{}}`)
			if code := closeCode(t, conn); code != closeInitTimeout {
				t.Fatalf("closed with %d, want %d", code, closeInitTimeout)
			}
		})
	}
}

func TestIsWebsocketHandshake(t *testing.T) {
	handshake := func(edit func(r *http.Request)) *http.Request {
		r := httptest.NewRequest(http.MethodGet, "/graphql", nil)
		r.Header.Set("Connection", "Upgrade")
		r.Header.Set("Upgrade", "websocket")
		r.Header.Set("Sec-WebSocket-Version", "13")
		r.Header.Set("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
		if edit != nil {
			edit(r)
		}
		return r
	}
	for _, tc := range []struct {
		name string
		edit func(r *http.Request)
		want bool
	}{
		{"a handshake", nil, true},
		{"tokens in lists and other cases", func(r *http.Request) {
			r.Header.Set("Connection", "keep-alive, UPGRADE")
			r.Header.Set("Upgrade", "WebSocket")
		}, true},
		{"a POST", func(r *http.Request) { r.Method = http.MethodPost }, false},
		{"HTTP/1.0", func(r *http.Request) { r.Proto, r.ProtoMajor, r.ProtoMinor = "HTTP/1.0", 1, 0 }, false},
		{"no Connection: Upgrade", func(r *http.Request) { r.Header.Set("Connection", "keep-alive") }, false},
		{"another protocol", func(r *http.Request) { r.Header.Set("Upgrade", "h2c") }, false},
		{"version 8", func(r *http.Request) { r.Header.Set("Sec-WebSocket-Version", "8") }, false},
		{"no key", func(r *http.Request) { r.Header.Del("Sec-WebSocket-Key") }, false},
		{"two keys", func(r *http.Request) { r.Header.Add("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==") }, false},
		{"a key of 15 bytes", func(r *http.Request) { r.Header.Set("Sec-WebSocket-Key", "AAAAAAAAAAAAAAAAAAAA") }, false},
		{"a key that is not base64", func(r *http.Request) { r.Header.Set("Sec-WebSocket-Key", "not base64 at all!!!!!==") }, false},
	} {
		if got := IsWebsocketHandshake(handshake(tc.edit)); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}
