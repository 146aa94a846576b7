package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/crumbs-dev/crumbs/models"
	"gorm.io/gorm"
)

// Kill -9 of the server while it erases a lead of tens of thousands of
// events, right after it answered done: false: the erasure is left pending
// with the counts of what committed, and the restarted server resumes it
// once its lease lapses and finishes it, with one receipt of the complete
// counts, which the erasure id answered before the kill finds.
func TestErasureSurvivesKill9(t *testing.T) {
	eachKillStore(t, "crumbs_erase_kill9", killMidErasure)
}

func killMidErasure(t *testing.T, bin, dbURL string) {
	const events = 60_000
	ctx := context.Background()
	db, err := models.Open(ctx, dbURL, models.DBOptions{MaxOpenConns: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer closeGorm(db)
	if err := models.Migrate(ctx, db); err != nil {
		t.Fatal(err)
	}
	app, secret := seedBot(t, db, events)

	env := []string{"CRUMBS_ERASE_WAIT=200ms", "CRUMBS_ERASE_LEASE=2s"}
	first := startKillableServer(t, bin, dbURL, env...)
	answer := gqlOver(t, first.url, secret, `mutation($a: ID!) { eraseLead(appId: $a, email: "bot@example.com") `+erasePayloadFields+` }`, map[string]any{"a": app.PublicID})
	var started erasePayload
	if err := json.Unmarshal(answer["eraseLead"], &started); err != nil || started.ErasureID == nil {
		t.Fatalf("eraseLead: %v %s", err, answer["eraseLead"])
	}
	if started.Done {
		t.Fatalf("%d events were erased before the first answer; the test needs more", events)
	}
	// Kill it once a few chunks have committed.
	id, _ := strconv.ParseUint(*started.ErasureID, 10, 64)
	for wait := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		var counted int64
		if err := db.Model(&models.EraseJob{}).Where("id = ?", id).Pluck("events", &counted).Error; err != nil {
			t.Fatal(err)
		}
		if counted >= 4000 || time.Now().After(wait) {
			break
		}
	}
	if err := first.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	first.cmd.Wait()
	var job models.EraseJob
	if err := db.Where("id = ?", id).Take(&job).Error; err != nil {
		t.Fatal(err)
	}
	var left int64
	if err := db.Model(&models.Event{}).Where("app_id = ?", app.ID).Count(&left).Error; err != nil {
		t.Fatal(err)
	}
	t.Logf("killed with %d of %d events erased (%d counted)", events-left, events, job.Events)
	if job.DoneAt != nil || job.Events == 0 || job.Events != events-left {
		t.Fatalf("after the kill: %+v, with %d events left of %d", job, left, events)
	}

	second := startKillableServer(t, bin, dbURL, env...)
	deadline := time.Now().Add(90 * time.Second)
	var done erasePayload
	for !done.Done {
		if time.Now().After(deadline) {
			t.Fatalf("not done 90 s after the restart: %+v\n%s", done, second.log.String())
		}
		time.Sleep(200 * time.Millisecond)
		answer := gqlOver(t, second.url, secret, `query($a: ID!, $id: ID!) { erasure(appId: $a, id: $id) `+erasePayloadFields+` }`, map[string]any{"a": app.PublicID, "id": *started.ErasureID})
		if err := json.Unmarshal(answer["erasure"], &done); err != nil {
			t.Fatal(err)
		}
	}
	if done.DeletedEvents != events || done.Tombstones != events || done.DeletedDevices != 1 || done.DeletedLeads != 1 || done.ReceiptID == nil {
		t.Fatalf("done: %+v", done)
	}
	var receipts []models.AuditRecord
	if err := db.Where("app_id = ?", app.ID).Find(&receipts).Error; err != nil {
		t.Fatal(err)
	}
	if len(receipts) != 1 || receipts[0].Events != events || models.FormatID(receipts[0].ID) != *done.ReceiptID {
		t.Fatalf("receipts: %+v", receipts)
	}
}

// seedBot stores n events with messageIds on one device, identified as
// bot@example.com, and derives them.
func seedBot(t *testing.T, db *gorm.DB, n int) (*models.App, string) {
	ctx := context.Background()
	u, err := models.CreateUser(ctx, db, "bot-owner@example.com", "Ops", "correct horse battery")
	if err != nil {
		t.Fatal(err)
	}
	app, secret, err := models.CreateApp(ctx, db, models.Viewer{UserID: u.ID}, models.AppInput{Name: ptrTo("Bot")})
	if err != nil {
		t.Fatal(err)
	}
	w := models.NewWriter(db, models.NewCatalog(db, time.Minute), models.WriterOptions{})
	defer w.Close()
	batch := make([]models.TriggerInput, 0, 500)
	for i := range n {
		batch = append(batch, models.TriggerInput{AppPublicID: app.PublicID, Code: "view", DeviceID: "bot", MessageID: ptrTo(strconv.Itoa(i)), Secret: secret})
		if len(batch) == cap(batch) || i == n-1 {
			for _, r := range w.Trigger(ctx, batch) {
				if r.Err != nil || !r.Accepted {
					t.Fatalf("seeding: %+v", r)
				}
			}
			batch = batch[:0]
		}
	}
	if _, err := models.Identify(ctx, db, w.Catalog(), models.IdentifyInput{AppPublicID: app.PublicID, DeviceID: "bot", Email: "bot@example.com", Secret: secret}); err != nil {
		t.Fatal(err)
	}
	if err := w.EventLog().Drain(ctx); err != nil {
		t.Fatal(err)
	}
	return app, secret
}

// gqlOver posts a GraphQL document to the server at url with the bearer
// token and returns its data's fields, failing on errors.
func gqlOver(t *testing.T, url, token, query string, vars map[string]any) map[string]json.RawMessage {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"query": query, "variables": vars})
	req, _ := http.NewRequest(http.MethodPost, url+"/graphql", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out struct {
		Data   map[string]json.RawMessage
		Errors json.RawMessage
	}
	if err := json.Unmarshal(raw, &out); err != nil || len(out.Errors) > 0 {
		t.Fatalf("%s: %d %s", query, resp.StatusCode, raw)
	}
	return out.Data
}
