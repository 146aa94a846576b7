package main

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/crumbs-dev/crumbs/models"
	"github.com/crumbs-dev/crumbs/models/modelstest"
	"gorm.io/gorm"
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

// upgradeAnswer is what a test compares of two answers.
type upgradeAnswer struct {
	Status int
	Codes  []string
	Data   string
}

// A request that claims an upgrade but is no websocket handshake is served
// as the request it is: it gets every check any other request gets (UTF-8,
// nesting, content type, JSON shape) and the same answer. Until now the
// header skipped those checks, so the trigger fast path stored a device id
// that was not UTF-8.
func TestUpgradeHeaderGetsRequestChecks(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *gorm.DB) {
		a := newAPI(t, db, func(c *config) { c.RatePerIP, c.RatePerDevice = models.Rate{}, models.Rate{} })
		appID, _ := a.createApp("Upgrade")
		srv := httptest.NewServer(a.handler)
		defer srv.Close()
		trigger := func(in string) string { return rawVars(hTrigger, `{"in":{"appId":"`+appID+`",`+in+`}}`) }
		send := func(t *testing.T, method, contentType, body string, header map[string]string) upgradeAnswer {
			t.Helper()
			u := srv.URL + "/graphql"
			var r io.Reader
			if method == http.MethodGet {
				u += "?" + body
			} else {
				r = strings.NewReader(body)
			}
			req, err := http.NewRequestWithContext(context.Background(), method, u, r)
			if err != nil {
				t.Fatal(err)
			}
			if contentType != "" {
				req.Header.Set("Content-Type", contentType)
			}
			for k, v := range header {
				req.Header.Set(k, v)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			raw, _ := io.ReadAll(resp.Body)
			var out struct {
				Data   json.RawMessage
				Errors []gqlError
			}
			if err := json.Unmarshal(raw, &out); err != nil {
				t.Fatalf("HTTP %d, not JSON: %.300s", resp.StatusCode, raw)
			}
			got := upgradeAnswer{Status: resp.StatusCode, Data: string(out.Data)}
			for _, e := range out.Errors {
				got.Codes = append(got.Codes, e.Extensions.Code)
			}
			return got
		}
		cases := []struct {
			name, method, contentType, body string
			want                            upgradeAnswer
		}{
			{"device id not UTF-8", http.MethodPost, "application/json", trigger(`"deviceId":"d-` + "\xff\xfe" + `","code":"view"`),
				upgradeAnswer{Status: 400, Codes: []string{models.CodeBadRequest}}},
			{"properties 100 deep", http.MethodPost, "application/json", trigger(`"deviceId":"d","code":"view","properties":` + deepObject(100)),
				upgradeAnswer{Status: 400, Codes: []string{models.CodeBadRequest}}},
			{"not JSON", http.MethodPost, "application/json", `{"query":`, upgradeAnswer{Status: 400, Codes: []string{models.CodeBadRequest}}},
			{"a batch", http.MethodPost, "application/json", `[{"query":"{ __typename }"}]`, upgradeAnswer{Status: 400, Codes: []string{models.CodeBadRequest}}},
			{"text/plain without Origin", http.MethodPost, "text/plain", trigger(`"deviceId":"d","code":"view"`),
				upgradeAnswer{Status: 415, Codes: []string{models.CodeBadRequest}}},
			{"a PUT", http.MethodPut, "application/json", `{"query":"{ __typename }"}`, upgradeAnswer{Status: 405, Codes: []string{models.CodeBadRequest}}},
			{"query string not UTF-8", http.MethodGet, "", "query=" + url.QueryEscape(`{ __typename }`) + "&x=%FF", upgradeAnswer{Status: 400, Codes: []string{models.CodeBadRequest}}},
			{"a query", http.MethodPost, "application/json", `{"query":"{ __typename }"}`, upgradeAnswer{Status: 200, Data: `{"__typename":"Query"}`}},
			{"a query over GET", http.MethodGet, "", "query=" + url.QueryEscape(`{ __typename }`), upgradeAnswer{Status: 200, Data: `{"__typename":"Query"}`}},
		}
		before := rowCounts(t, db)
		for _, v := range upgradeVariants {
			for _, tc := range cases {
				if tc.method == http.MethodGet && maps.Equal(v.header, handshakeHeaders) {
					continue // a handshake
				}
				t.Run(v.name+"/"+tc.name, func(t *testing.T) {
					if got := send(t, tc.method, tc.contentType, tc.body, nil); !equalAnswers(got, tc.want) {
						t.Fatalf("without the header: %+v, want %+v", got, tc.want)
					}
					if got := send(t, tc.method, tc.contentType, tc.body, v.header); !equalAnswers(got, tc.want) {
						t.Fatalf("with %s: %+v, want %+v", v.name, got, tc.want)
					}
				})
			}
		}
		if after := rowCounts(t, db); !maps.Equal(before, after) {
			t.Fatalf("refused requests wrote: %v -> %v", before, after)
		}
		// A trigger with the header is stored like any other.
		for _, v := range upgradeVariants {
			got := send(t, http.MethodPost, "application/json", trigger(`"deviceId":"upgrade-device","code":"view"`), v.header)
			if got.Status != 200 || len(got.Codes) > 0 || !strings.Contains(got.Data, `"accepted":true`) {
				t.Fatalf("trigger with %s: %+v", v.name, got)
			}
		}
	})
}

func equalAnswers(a, b upgradeAnswer) bool {
	return a.Status == b.Status && strings.Join(a.Codes, ",") == strings.Join(b.Codes, ",") && a.Data == b.Data
}
