package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/crumbs-dev/crumbs/models"
	"github.com/crumbs-dev/crumbs/models/modelstest"
	"gorm.io/gorm"
)

// hangGuard is how long a fault test waits for an answer before it calls the
// server hung. It is far above every timeout under test, so it measures no
// speed: without the deadlines, requests wait for as long as the store is
// frozen, which is until the test gives up.
const hangGuard = 2 * time.Minute

// httpAnswer is one GraphQL response as a client sees it on the wire.
type httpAnswer struct {
	what       string
	status     int
	retryAfter string
	data       map[string]json.RawMessage
	errors     []gqlError
	err        error
}

// refuse records a refusal from a non-GraphQL endpoint (the JSON API,
// Segment, the webhook) as the GraphQL error it stands for.
func (a *httpAnswer) refuse(code, message string) {
	e := gqlError{Message: message}
	e.Extensions.Code = code
	a.errors = append(a.errors, e)
}

var faultClient = &http.Client{Timeout: hangGuard}

// postGraphQL sends one GraphQL request to base with an optional bearer.
func postGraphQL(base, what, bearer, query string, variables map[string]any) httpAnswer {
	body, _ := json.Marshal(map[string]any{"query": query, "variables": variables})
	req, err := http.NewRequest(http.MethodPost, base+"/graphql", bytes.NewReader(body))
	if err != nil {
		return httpAnswer{what: what, err: err}
	}
	req.Header.Set("Content-Type", "application/json")
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := faultClient.Do(req)
	if err != nil {
		return httpAnswer{what: what, err: err}
	}
	defer resp.Body.Close()
	a := httpAnswer{what: what, status: resp.StatusCode, retryAfter: resp.Header.Get("Retry-After")}
	var out struct {
		Data   map[string]json.RawMessage
		Errors []gqlError
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		a.err = fmt.Errorf("HTTP %d, body: %w", resp.StatusCode, err)
	}
	a.data, a.errors = out.Data, out.Errors
	return a
}

const faultTrigger = `mutation($in: TriggerInput!) { trigger(input: $in) { accepted duplicate } }`

// triggerOver sends one browser trigger (no credentials) with a messageId.
func triggerOver(base, appID, messageID string) httpAnswer {
	return postGraphQL(base, "trigger "+messageID, "", faultTrigger, map[string]any{"in": map[string]any{
		"appId": appID, "deviceId": "fault-dev", "code": "view", "messageId": messageID,
	}})
}

// triggerBatchOver sends one triggerBatch of these message ids.
func triggerBatchOver(base, appID, secret string, ids ...string) httpAnswer {
	inputs := make([]map[string]any, len(ids))
	for i, id := range ids {
		inputs[i] = map[string]any{"appId": appID, "deviceId": "fault-dev", "code": "view", "messageId": id}
	}
	return postGraphQL(base, "triggerBatch "+strings.Join(ids, ","), secret,
		`mutation($in: [TriggerInput!]!) { triggerBatch(inputs: $in) { accepted error { code message } } }`,
		map[string]any{"in": inputs})
}

// wantAccepted fails unless a trigger (or batch) was stored.
func wantAccepted(t *testing.T, a httpAnswer) {
	t.Helper()
	var one struct{ Accepted bool }
	var many []struct{ Accepted bool }
	ok := a.err == nil && a.status == http.StatusOK && len(a.errors) == 0
	if ok && a.data["trigger"] != nil {
		ok = json.Unmarshal(a.data["trigger"], &one) == nil && one.Accepted
	}
	if ok && a.data["triggerBatch"] != nil {
		ok = json.Unmarshal(a.data["triggerBatch"], &many) == nil && len(many) > 0
		for _, r := range many {
			ok = ok && r.Accepted
		}
	}
	if !ok {
		t.Fatalf("%s: HTTP %d %v data %s errors %+v, want accepted", a.what, a.status, a.err, a.data, a.errors)
	}
}

// ack sends a request until it is accepted, as a client does: on a loaded
// machine a healthy store may still miss a short deadline now and then.
func ack(t *testing.T, send func() httpAnswer) {
	t.Helper()
	for attempt := 1; ; attempt++ {
		a := send()
		if a.status != http.StatusServiceUnavailable || attempt == 10 {
			wantAccepted(t, a)
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// wantUnavailable fails unless the answer is UNAVAILABLE, as HTTP 503 with
// Retry-After, with a message that tells nothing of the store's internals.
func wantUnavailable(t *testing.T, a httpAnswer, message string) {
	t.Helper()
	if a.err != nil || a.status != http.StatusServiceUnavailable || a.retryAfter != "5" {
		t.Fatalf("%s: HTTP %d, Retry-After %q, err %v, data %s, errors %+v; want 503 with Retry-After 5", a.what, a.status, a.retryAfter, a.err, a.data, a.errors)
	}
	var codes, messages []string
	for _, e := range a.errors {
		codes, messages = append(codes, e.Extensions.Code), append(messages, e.Message)
	}
	if raw := a.data["triggerBatch"]; raw != nil && string(raw) != "null" {
		var items []struct {
			Accepted bool
			Error    *struct{ Code, Message string }
		}
		if err := json.Unmarshal(raw, &items); err != nil {
			t.Fatal(err)
		}
		for _, it := range items {
			if it.Accepted || it.Error == nil {
				t.Fatalf("%s: item %+v, want refused", a.what, it)
			}
			codes, messages = append(codes, it.Error.Code), append(messages, it.Error.Message)
		}
	}
	if len(codes) == 0 {
		t.Fatalf("%s: HTTP 503 without an error", a.what)
	}
	for i, code := range codes {
		if code != models.CodeUnavailable || messages[i] != message {
			t.Fatalf("%s: %s %q, want UNAVAILABLE %q", a.what, code, messages[i], message)
		}
	}
}

// collectAnswers waits for n answers; if they do not all come within
// hangGuard, it lets the store recover and fails the test.
func collectAnswers(t *testing.T, ch <-chan httpAnswer, n int, mend func()) []httpAnswer {
	t.Helper()
	out := make([]httpAnswer, 0, n)
	guard := time.After(hangGuard)
	for len(out) < n {
		select {
		case a := <-ch:
			out = append(out, a)
		case <-guard:
			mend()
			t.Fatalf("%d of %d requests still waiting on the faulty store after %s", n-len(out), n, hangGuard)
		}
	}
	return out
}

// wantStoredOnce retries each message id through the API and checks that
// the app holds it exactly once.
func wantStoredOnce(t *testing.T, db *gorm.DB, base, appID string, ids []string) {
	t.Helper()
	app, err := models.AppByPublicID(context.Background(), db, appID)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		ack(t, func() httpAnswer { return triggerOver(base, appID, id) })
		var n int64
		if err := db.Model(&models.Event{}).Where("app_id = ? AND message_id = ?", app.ID, id).Count(&n).Error; err != nil {
			t.Fatal(err)
		}
		if n != 1 {
			t.Fatalf("%s stored %d times, want once", id, n)
		}
	}
}

func messageIDs(prefix string, n int) []string {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("%s-%d", prefix, i)
	}
	return ids
}

// faultAPI serves the real handler stack over HTTP on db, whose calls time
// out after timeout.
func faultAPI(t *testing.T, db *gorm.DB, timeout time.Duration) (*api, string) {
	a := newAPI(t, db, func(c *config) { c.DBTimeout = timeout })
	srv := httptest.NewServer(a.handler)
	t.Cleanup(srv.Close)
	return a, srv.URL
}

// proxiedServer serves the real handler stack on a MariaDB behind a proxy
// that the test can stop or freeze; database calls time out after 2 s.
func proxiedServer(t *testing.T) (*modelstest.Proxy, *gorm.DB, *api, string) {
	proxy, dsn := modelstest.ProxiedMySQL(t)
	db, err := models.Open(context.Background(), dsn, models.DBOptions{Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if sqlDB, err := db.DB(); err == nil {
			sqlDB.Close()
		}
	})
	a, base := faultAPI(t, db, 2*time.Second)
	return proxy, db, a, base
}

var storeFaults = []struct {
	name        string
	break_, fix func(*modelstest.Proxy)
}{
	{"stopped", (*modelstest.Proxy).Stop, (*modelstest.Proxy).Start},
	{"frozen", (*modelstest.Proxy).Freeze, (*modelstest.Proxy).Thaw},
}

// TestStoreFaultsOverHTTP stops and freezes MariaDB under the server: browser
// triggers, server batches, dashboard reads and writes are all answered
// UNAVAILABLE with HTTP 503 and Retry-After, none waits for the store, and
// once it is back every trigger (acknowledged before, or refused and
// retried) is stored exactly once.
func TestStoreFaultsOverHTTP(t *testing.T) {
	for _, fault := range storeFaults {
		t.Run(fault.name, func(t *testing.T) {
			proxy, db, a, base := proxiedServer(t)
			appID, secret := a.createApp("Faults " + fault.name)
			acked := messageIDs(fault.name+"-acked", 3)
			for _, id := range acked {
				ack(t, func() httpAnswer { return triggerOver(base, appID, id) })
			}
			ack(t, func() httpAnswer { return triggerBatchOver(base, appID, secret, fault.name+"-acked-batch") })
			acked = append(acked, fault.name+"-acked-batch")

			fault.break_(proxy)
			mend := func() { fault.fix(proxy) }
			refused := messageIDs(fault.name+"-refused", 4)
			answers := make(chan httpAnswer, 8)
			for _, id := range refused[:2] {
				go func() { answers <- triggerOver(base, appID, id) }()
			}
			go func() { answers <- triggerBatchOver(base, appID, secret, refused[2:]...) }()
			go func() {
				answers <- postGraphQL(base, "apps", a.ownerToken, `{ apps { id name eventDefinitions { code } } }`, nil)
			}()
			go func() {
				answers <- postGraphQL(base, "createEventDefinition", a.ownerToken,
					`mutation($app: ID!) { createEventDefinition(input: {appId: $app, code: "added", name: "Added"}) { id } }`,
					map[string]any{"app": appID})
			}()
			for _, ans := range collectAnswers(t, answers, 5, mend) {
				wantUnavailable(t, ans, "the store is unavailable; retry later")
			}

			mend()
			wantStoredOnce(t, db, base, appID, append(acked, refused...))
		})
	}
}

// sqliteFileServer serves the real handler stack on a migrated SQLite
// file at path whose calls wait at most a second for its lock.
func sqliteFileServer(t *testing.T) (db *gorm.DB, path string, a *api, base string) {
	t.Helper()
	path = filepath.Join(t.TempDir(), "crumbs.db")
	db, err := models.Open(context.Background(), "sqlite:"+path, models.DBOptions{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	sqlDB, _ := db.DB()
	t.Cleanup(func() { sqlDB.Close() })
	if err := models.Migrate(context.Background(), db); err != nil {
		t.Fatal(err)
	}
	a, base = faultAPI(t, db, time.Second)
	return db, path, a, base
}

// lockSQLite holds the write lock of the SQLite database at path from a
// second connection, as another process would, until the returned unlock
// (or the test's end).
func lockSQLite(t *testing.T, path string) (unlock func()) {
	t.Helper()
	ctx := context.Background()
	other, err := models.Open(ctx, "sqlite:"+path, models.DBOptions{Timeout: -1})
	if err != nil {
		t.Fatal(err)
	}
	otherDB, _ := other.DB()
	t.Cleanup(func() { otherDB.Close() })
	lock, err := otherDB.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lock.Close() })
	if _, err := lock.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		t.Fatal(err)
	}
	return func() {
		if _, err := lock.ExecContext(ctx, "ROLLBACK"); err != nil {
			t.Error(err)
		}
	}
}

// TestSQLiteLockedStore holds SQLite's write lock from another connection,
// as a backup or a second process would: triggers and dashboard writes wait
// the busy timeout and are answered UNAVAILABLE (503, Retry-After), and
// succeed once the lock is released.
func TestSQLiteLockedStore(t *testing.T) {
	db, path, a, base := sqliteFileServer(t)
	appID, _ := a.createApp("Locked")
	ack(t, func() httpAnswer { return triggerOver(base, appID, "locked-acked") })
	a.settle() // nothing left for the rollups consumer to wait on the lock for

	unlock := lockSQLite(t, path)

	answers := make(chan httpAnswer, 2)
	go func() { answers <- triggerOver(base, appID, "locked-refused") }()
	go func() {
		answers <- postGraphQL(base, "createEventDefinition", a.ownerToken,
			`mutation($app: ID!) { createEventDefinition(input: {appId: $app, code: "added", name: "Added"}) { id } }`,
			map[string]any{"app": appID})
	}()
	for _, ans := range collectAnswers(t, answers, 2, unlock) {
		wantUnavailable(t, ans, "the store is unavailable; retry later")
	}
	var n int64
	if err := db.Model(&models.EventDefinition{}).Where("code = ?", "added").Count(&n).Error; err != nil || n != 0 {
		t.Fatalf("%d definitions stored while locked (%v), want none", n, err)
	}

	unlock()
	wantStoredOnce(t, db, base, appID, []string{"locked-acked", "locked-refused"})
}

// TestWebsocketStoreFault opens websockets while MariaDB is stopped: the
// credential cannot be checked, so connection_init is closed with 1013
// (try again later) and a reason saying the store is unavailable, not 1011
// "internal error"; once the store is back the same credential subscribes.
func TestWebsocketStoreFault(t *testing.T) {
	proxy, _, a, _ := proxiedServer(t)
	l := newLiveApp(t, a)
	token := a.signUp() // never verified yet, so no cache answers for the store
	init := func() (*wsClient, wsMsg, error) {
		t.Helper()
		c, _, err := dialWS(t, l.url, "")
		if err != nil {
			t.Fatal(err)
		}
		m, err := c.init(map[string]any{"Authorization": "Bearer " + token})
		return c, m, err
	}

	proxy.Stop()
	_, m, err := init()
	var ce websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != websocket.StatusTryAgainLater || ce.Reason != "Try again later: the store is unavailable; retry later" {
		proxy.Start()
		t.Fatalf("connection_init with the store stopped: %+v %v; want close 1013 saying the store is unavailable", m, err)
	}

	proxy.Start()
	for attempt := 1; ; attempt++ {
		c, m, err := init()
		if err == nil && m.Type == "connection_ack" {
			c.conn.Close(websocket.StatusNormalClosure, "")
			break
		}
		if attempt == 10 {
			t.Fatalf("connection_init with the store back: %+v %v", m, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestSignOutDuringAStoreFault: a sign-out the store cannot record is
// answered UNAVAILABLE (503, Retry-After) and keeps the cookie, so that the
// dashboard, which remembers a sign-out the server did not confirm, sends
// it again. It was answered 200 with the cookie cleared while the sign-in
// went on holding on the server: the refresh token, kept by anyone who had
// copied it, still worked after the user had signed out.
func TestSignOutDuringAStoreFault(t *testing.T) {
	proxy, db, a, _ := proxiedServer(t)
	email := unique("signout") + "@example.com"
	if _, err := models.CreateUser(context.Background(), db, email, "Sol", "correct horse battery"); err != nil {
		t.Fatal(err)
	}
	w, _ := a.vaultCall("login", `{"email":"`+email+`","password":"correct horse battery"}`, nil, nil)
	c := refreshCookie(t, w)
	if w.Code != http.StatusOK || c == nil {
		t.Fatalf("login: %d %s", w.Code, w.Body)
	}
	proxy.Stop()
	w, _ = a.vaultCall("logout", `{}`, c, nil)
	if w.Code != http.StatusServiceUnavailable || w.Header().Get("Retry-After") == "" || refreshCookie(t, w) != nil || !strings.Contains(w.Body.String(), "UNAVAILABLE") {
		t.Fatalf("logout on a stopped store: %d %q %s, cookie %v; want 503 with Retry-After, the cookie kept", w.Code, w.Header().Get("Retry-After"), w.Body, refreshCookie(t, w))
	}
	proxy.Start()
	w, _ = a.vaultCall("logout", `{}`, c, nil)
	if cleared := refreshCookie(t, w); w.Code != http.StatusOK || cleared == nil || cleared.MaxAge >= 0 {
		t.Fatalf("logout again: %d %s cookie %v", w.Code, w.Body, cleared)
	}
	if w, _ := a.vaultCall("refresh", `{}`, c, nil); w.Code != http.StatusUnauthorized {
		t.Fatalf("refresh after the sign-out: %d %s", w.Code, w.Body)
	}
}
