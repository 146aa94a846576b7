package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/99designs/gqlgen/client"
	"github.com/crumbs-dev/crumbs/models"
	"github.com/crumbs-dev/crumbs/models/modelstest"
	"gorm.io/gorm"
)

// pacedStore returns a handle on db's store of the test's own, whose every
// statement deleting events sleeps pause first, so that an erasure of a
// few events takes as long as one of millions.
func pacedStore(t *testing.T, db *gorm.DB, pause time.Duration) *gorm.DB {
	t.Helper()
	if db.Dialector.Name() != "sqlite" {
		// The MySQL handle is shared by the package's tests: open one.
		var err error
		if db, err = models.Open(context.Background(), modelstest.MySQLDSN(t), models.DBOptions{MaxOpenConns: 8}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { closeGorm(db) })
	}
	err := db.Callback().Delete().Before("gorm:delete").Register("test:paced", func(d *gorm.DB) {
		if d.Statement.Table == "events" {
			time.Sleep(pause)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	return db
}

// erasePayload is EraseLeadPayload as JSON.
type erasePayload struct {
	Erased                                                  bool
	DeletedEvents, DeletedDevices, DeletedLeads, Tombstones int
	ReceiptID, ErasureID                                    *string
	Done                                                    bool
}

const erasePayloadFields = `{ erased deletedEvents deletedDevices deletedLeads tombstones receiptId erasureId done }`

// seedLeadOverHTTP triggers events with messageIds on devices, each
// identified as email.
func seedLeadOverHTTP(a *api, appID, secret, email string, devices int) {
	a.t.Helper()
	for d := range devices {
		device := fmt.Sprintf("%s-d%d", email, d)
		for i := range 2 {
			a.ok(`mutation($a: ID!, $d: String!, $m: String!) { trigger(input: {appId: $a, deviceId: $d, code: "view", messageId: $m}) { accepted } }`,
				&map[string]any{}, client.Var("a", appID), client.Var("d", device), client.Var("m", fmt.Sprintf("%s-%d", device, i)), as(secret))
		}
		a.ok(`mutation($a: ID!, $d: String!, $e: String!) { identify(input: {appId: $a, deviceId: $d, email: $e}) { lead { id } } }`,
			&map[string]any{}, client.Var("a", appID), client.Var("d", device), client.Var("e", email), as(secret))
	}
	a.settle()
}

// postErase sends eraseLead over the network with c and decodes its answer.
func postErase(t *testing.T, c *http.Client, url, token, appID, email string) (*erasePayload, error) {
	body, _ := json.Marshal(map[string]any{
		"query":     `mutation($a: ID!, $e: String!) { eraseLead(appId: $a, email: $e) ` + erasePayloadFields + ` }`,
		"variables": map[string]any{"a": appID, "e": email},
	})
	req, _ := http.NewRequest(http.MethodPost, url+"/graphql", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	var out struct {
		Data   struct{ EraseLead *erasePayload }
		Errors []gqlError
	}
	if err := json.Unmarshal(raw, &out); err != nil || out.Data.EraseLead == nil {
		t.Fatalf("eraseLead answered %d %s", resp.StatusCode, raw)
	}
	return out.Data.EraseLead, nil
}

// followErasure polls the erasure query until it is done.
func followErasure(a *api, appID, id string) erasePayload {
	a.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		var out struct{ Erasure erasePayload }
		a.ok(`query($a: ID!, $id: ID!) { erasure(appId: $a, id: $id) `+erasePayloadFields+` }`, &out, client.Var("a", appID), client.Var("id", id))
		if out.Erasure.Done {
			return out.Erasure
		}
		if time.Now().After(deadline) {
			a.t.Fatalf("erasure %s not done after a minute: %+v", id, out.Erasure)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// leadReceipts reads the app's erase_lead receipts from the audit log.
func leadReceipts(a *api, appID string) []map[string]any {
	a.t.Helper()
	var out struct {
		AuditLog struct {
			Edges []struct{ Node map[string]any }
		}
	}
	a.ok(`query($a: ID!) { auditLog(appId: $a) { edges { node { id kind subjectHash events devices leads tombstones } } } }`, &out, client.Var("a", appID))
	var rs []map[string]any
	for _, e := range out.AuditLog.Edges {
		if e.Node["kind"] == models.AuditEraseLead {
			rs = append(rs, e.Node)
		}
	}
	return rs
}

// Through the real HTTP server with a write timeout shorter than the
// erasure: the caller is answered before the timeout with done false, the
// erasure id and the counts so far, and one that hangs up before any
// answer does not stop its erasure. Both finish, each with one receipt of
// the complete counts. (Before erasures were detached, the first caller got
// a broken connection once the erasure ended, and the second's erasure
// stopped part way: 2 of its 6 devices, no receipt.)
func TestLongErasureOverHTTP(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *gorm.DB) {
		db = pacedStore(t, db, 150*time.Millisecond) // 6 devices: about a second
		// A lease longer than the test: only the replica that started an erasure runs it.
		a := newAPI(t, db, func(c *config) { c.EraseWait, c.EraseLease = 200*time.Millisecond, 10*time.Minute })
		srv := httptest.NewUnstartedServer(a.handler)
		srv.Config.WriteTimeout = 600 * time.Millisecond
		srv.Start()
		t.Cleanup(srv.Close)
		appID, secret := a.createApp("Long erasures")
		seedLeadOverHTTP(a, appID, secret, "patient@example.com", 6)
		seedLeadOverHTTP(a, appID, secret, "gone@example.com", 6)

		first, err := postErase(t, http.DefaultClient, srv.URL, a.ownerToken, appID, "patient@example.com")
		if err != nil {
			t.Fatalf("no answer within the write timeout: %v", err)
		}
		if first.Done || !first.Erased || first.ErasureID == nil || first.ReceiptID != nil || first.DeletedEvents >= 12 {
			t.Fatalf("first answer: %+v", first)
		}
		impatient := &http.Client{Timeout: 50 * time.Millisecond}
		if res, err := postErase(t, impatient, srv.URL, a.ownerToken, appID, "gone@example.com"); err == nil {
			t.Fatalf("the impatient client waited for an answer: %+v", res)
		}

		done := followErasure(a, appID, *first.ErasureID)
		if !done.Erased || done.DeletedEvents != 12 || done.DeletedDevices != 6 || done.DeletedLeads != 1 || done.Tombstones != 12 || done.ReceiptID == nil {
			t.Fatalf("done: %+v", done)
		}
		// The one who hung up: its erasure finishes too.
		deadline := time.Now().Add(60 * time.Second)
		for len(leadReceipts(a, appID)) < 2 && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
		}
		rs := leadReceipts(a, appID)
		if len(rs) != 2 {
			t.Fatalf("receipts: %+v", rs)
		}
		for _, r := range rs {
			if r["events"] != 12.0 || r["devices"] != 6.0 || r["leads"] != 1.0 || r["tombstones"] != 12.0 {
				t.Fatalf("a receipt without the complete counts: %+v", r)
			}
		}
		if rs[0]["subjectHash"] != models.SubjectHash("gone@example.com") || rs[1]["id"] != *done.ReceiptID {
			t.Fatalf("receipts: %+v", rs)
		}
		var left int64
		db.Model(&models.Event{}).Joins("JOIN apps ON apps.id = events.app_id").Where("apps.public_id = ?", appID).Count(&left)
		if left != 0 {
			t.Fatalf("%d events left", left)
		}
	})
}

// A server shut down part way through an erasure stops it between two
// statements and releases it; the server started next resumes it at once,
// and the erasure id answered before the restart follows it to its one
// receipt with the complete counts.
func TestErasureResumesAfterRestart(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *gorm.DB) {
		db = pacedStore(t, db, 150*time.Millisecond)
		// A lease longer than the test: the restarted server resumes the erasure
		// because the first released it, not because its lease lapsed.
		wait := func(c *config) { c.EraseWait, c.EraseLease = 200*time.Millisecond, 10*time.Minute }
		first := newAPI(t, db, wait)
		appID, secret := first.createApp("Restart")
		seedLeadOverHTTP(first, appID, secret, "restart@example.com", 6)
		var out struct{ EraseLead erasePayload }
		first.ok(`mutation($a: ID!) { eraseLead(appId: $a, email: "restart@example.com") `+erasePayloadFields+` }`, &out, client.Var("a", appID))
		if out.EraseLead.Done || out.EraseLead.ErasureID == nil {
			t.Fatalf("first answer: %+v", out.EraseLead)
		}
		first.resolver.Erasures.Close() // the server shuts down
		var job models.EraseJob
		if err := db.Where("id = ?", *out.EraseLead.ErasureID).Take(&job).Error; err != nil {
			t.Fatal(err)
		}
		if job.DoneAt != nil || job.Events >= 12 {
			t.Fatalf("the erasure ended before the shutdown (%+v); pace it slower", job)
		}

		second := newAPI(t, db, wait)
		second.ownerToken = first.ownerToken
		done := followErasure(second, appID, *out.EraseLead.ErasureID)
		if done.DeletedEvents != 12 || done.DeletedDevices != 6 || done.DeletedLeads != 1 || done.Tombstones != 12 || done.ReceiptID == nil {
			t.Fatalf("done: %+v", done)
		}
		if rs := leadReceipts(second, appID); len(rs) != 1 || rs[0]["events"] != 12.0 || rs[0]["id"] != *done.ReceiptID {
			t.Fatalf("receipts: %+v", rs)
		}
	})
}
