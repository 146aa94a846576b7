package models_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/crumbs-dev/crumbs/models"
	"github.com/crumbs-dev/crumbs/models/modelstest"
	"gorm.io/gorm"
)

// A trigger resent after its lead was erased (a client's retry queue, the
// WordPress plugin's WP-Cron) is answered duplicate and not stored: the
// erasure kept a tombstone of its messageId.
func TestResendAfterEraseStaysErased(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *gorm.DB) {
		e := newEnv(t, db)
		login := func(id string) models.TriggerInput {
			return models.TriggerInput{Code: "view", DeviceID: "wp-user-abc", MessageID: ptr(id), Secret: e.secret}
		}
		first := e.mustTrigger(login("m-1"))
		e.mustTrigger(login("m-2"))
		e.mustTrigger(models.TriggerInput{Code: "view", DeviceID: "someone-else", MessageID: ptr("m-other")})
		if _, err := models.Identify(e.ctx, db, e.writer.Catalog(), models.IdentifyInput{AppPublicID: e.app.PublicID, DeviceID: "wp-user-abc", Email: "sub@example.com", Secret: e.secret}); err != nil {
			t.Fatal(err)
		}
		res, err := models.EraseLead(e.ctx, db, e.owner, e.app.PublicID, "sub@example.com")
		if err != nil || !res.Erased || res.DeletedEvents != 2 || res.Tombstones != 2 || res.ReceiptID == 0 {
			t.Fatalf("erase: %v %+v", err, res)
		}
		// The resends, alone and in a batch with a new trigger.
		again := e.trigger(login("m-1"))
		if !again.Accepted || !again.Duplicate || again.EventID != 0 || again.Err != nil {
			t.Fatalf("resend of an erased messageId: %+v (first was %+v)", again, first)
		}
		batch := e.writer.Trigger(e.ctx, []models.TriggerInput{
			{AppPublicID: e.app.PublicID, Code: "view", DeviceID: "wp-user-abc", MessageID: ptr("m-2"), Secret: e.secret},
			{AppPublicID: e.app.PublicID, Code: "view", DeviceID: "fresh", MessageID: ptr("m-3"), Secret: e.secret},
		})
		if !batch[0].Duplicate || batch[0].EventID != 0 || batch[1].Duplicate || batch[1].EventID == 0 {
			t.Fatalf("batch with a resend: %+v", batch)
		}
		if n := e.countEvents("device_id = ?", "wp-user-abc"); n != 0 {
			t.Fatalf("%d events of the erased device stored again", n)
		}
		var devices int64
		db.Model(&models.Device{}).Where("app_id = ? AND device_id = ?", e.app.ID, "wp-user-abc").Count(&devices)
		if devices != 0 {
			t.Fatal("the erased device was stored again by a resend")
		}
		var hits int64
		db.Model(&models.ErasedMessage{}).Where("app_id = ?", e.app.ID).Select("COALESCE(SUM(hits), 0)").Scan(&hits)
		if hits != 2 {
			t.Fatalf("tombstones counted %d refused resends, want 2", hits)
		}
		// A new messageId from the same device is new activity, stored.
		if r := e.mustTrigger(login("m-new")); r.Duplicate {
			t.Fatalf("new trigger after erase: %+v", r)
		}
		if err := models.RollupsMatchEvents(e.ctx, db, e.app.ID); err != nil {
			t.Fatal(err)
		}
	})
}

// Identify after an erasure makes a new lead from what that call carries
// only: nothing erased comes back.
func TestIdentifyAfterEraseStartsOver(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *gorm.DB) {
		e := newEnv(t, db)
		e.mustTrigger(models.TriggerInput{Code: "view", DeviceID: "d1", MessageID: ptr("a")})
		in := models.IdentifyInput{AppPublicID: e.app.PublicID, DeviceID: "d1", Email: "back@example.com", Secret: e.secret,
			Name: ptr("Old Name"), Fields: map[string]any{"plan": "pro"}}
		old, err := models.Identify(e.ctx, db, e.writer.Catalog(), in)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := models.EraseLead(e.ctx, db, e.owner, e.app.PublicID, "back@example.com"); err != nil {
			t.Fatal(err)
		}
		in.Name, in.Fields = nil, nil
		again, err := models.Identify(e.ctx, db, e.writer.Catalog(), in)
		if err != nil {
			t.Fatal(err)
		}
		if again.Lead.ID == old.Lead.ID || again.Lead.Name != nil || len(again.Lead.Fields) != 0 || again.Moved {
			t.Fatalf("identify after erase: %+v", again.Lead)
		}
		page, err := models.LeadTimeline(e.ctx, db, again.Lead, 50, "")
		if err != nil || len(page.Events) != 0 {
			t.Fatalf("the new lead has %d events (%v), want none", len(page.Events), err)
		}
	})
}

func TestEraseDeviceAndAuditLog(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *gorm.DB) {
		e := newEnv(t, db)
		for _, d := range []string{"laptop", "laptop", "phone"} {
			e.mustTrigger(models.TriggerInput{Code: "view", DeviceID: d})
		}
		for _, d := range []string{"laptop", "phone"} {
			if _, err := models.Identify(e.ctx, db, e.writer.Catalog(), models.IdentifyInput{AppPublicID: e.app.PublicID, DeviceID: d, Email: "ann@example.com", Secret: e.secret}); err != nil {
				t.Fatal(err)
			}
		}
		key := models.Viewer{Secret: e.secret}
		res, err := models.EraseDevice(e.ctx, db, key, e.app.PublicID, "laptop")
		if err != nil || !res.Erased || res.DeletedEvents != 2 || res.DeletedDevices != 1 || res.DeletedLeads != 0 || res.ReceiptID == 0 {
			t.Fatalf("erase device: %v %+v", err, res)
		}
		lead, err := models.LeadByEmail(e.ctx, db, e.owner, e.app.PublicID, "ann@example.com")
		if err != nil || lead == nil {
			t.Fatalf("the lead went with one of its devices: %v", err)
		}
		if n := e.countEvents("1 = 1"); n != 1 {
			t.Fatalf("%d events left, want the phone's 1", n)
		}
		none, err := models.EraseDevice(e.ctx, db, e.owner, e.app.PublicID, "never-seen")
		if err != nil || none.Erased || none.ReceiptID != 0 {
			t.Fatalf("erasing an unknown device: %v %+v", err, none)
		}
		if err := models.RollupsMatchEvents(e.ctx, db, e.app.ID); err != nil {
			t.Fatal(err)
		}
		lr, err := models.EraseLead(e.ctx, db, e.owner, e.app.PublicID, "ann@example.com")
		if err != nil || lr.DeletedLeads != 1 || lr.DeletedEvents != 1 {
			t.Fatalf("erase lead: %v %+v", err, lr)
		}

		log, err := models.AuditLog(e.ctx, db, e.owner, e.app.PublicID, 1, "")
		if err != nil || len(log.Records) != 1 || !log.HasNextPage {
			t.Fatalf("audit page 1: %v %+v", err, log)
		}
		r := log.Records[0]
		if r.ID != lr.ReceiptID || r.Kind != models.AuditEraseLead || r.ActorKind != models.ActorUser || *r.ActorUserID != e.owner.UserID ||
			r.SubjectHash != models.SubjectHash("ann@example.com") || r.Events != 1 || r.Leads != 1 {
			t.Fatalf("lead receipt %+v", r)
		}
		rest, err := models.AuditLog(e.ctx, db, e.owner, e.app.PublicID, 10, models.FormatID(r.ID))
		if err != nil || len(rest.Records) != 1 || rest.HasNextPage {
			t.Fatalf("audit page 2: %v %+v", err, rest)
		}
		d := rest.Records[0]
		if d.ID != res.ReceiptID || d.Kind != models.AuditEraseDevice || d.ActorKind != models.ActorSecretKey || d.ActorUserID != nil ||
			d.SubjectHash != models.SubjectHash("laptop") || d.Events != 2 || d.Devices != 1 {
			t.Fatalf("device receipt %+v", d)
		}
		// Receipts are for owners only.
		if _, err := models.AuditLog(e.ctx, db, key, e.app.PublicID, 10, ""); !errors.Is(err, models.ErrForbidden) {
			t.Fatalf("secret key reading the audit log: %v", err)
		}
	})
}

func TestEraseBefore(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *gorm.DB) {
		e := newEnv(t, db)
		now := time.Now().UTC()
		old, recent := now.Add(-72*time.Hour), now.Add(-time.Hour)
		for i := range 30 {
			e.mustTrigger(models.TriggerInput{Code: "view", DeviceID: fmt.Sprintf("old-%d", i%3), OccurredAt: &old, MessageID: ptr(fmt.Sprintf("o%d", i)), Secret: e.secret})
		}
		e.mustTrigger(models.TriggerInput{Code: "view", DeviceID: "old-0", OccurredAt: &recent, Secret: e.secret})
		e.mustTrigger(models.TriggerInput{Code: "view", DeviceID: "new", OccurredAt: &recent, Secret: e.secret})
		if _, err := models.EraseBefore(e.ctx, db, models.Viewer{Secret: e.secret}, e.app.PublicID, now.Add(-24*time.Hour)); !errors.Is(err, models.ErrForbidden) {
			t.Fatalf("a secret key erasing by date: %v", err)
		}
		res, err := models.EraseBefore(e.ctx, db, e.owner, e.app.PublicID, now.Add(-24*time.Hour))
		if err != nil || res.DeletedEvents != 30 || res.Tombstones != 30 || res.ReceiptID == 0 {
			t.Fatalf("erase before: %v %+v", err, res)
		}
		if n := e.countEvents("1 = 1"); n != 2 {
			t.Fatalf("%d events left, want 2", n)
		}
		if err := models.RollupsMatchEvents(e.ctx, db, e.app.ID); err != nil {
			t.Fatal(err)
		}
		// The devices were seen just now (their rows' last_seen_at is when
		// the server received them), so they stay until they go idle.
		if r := e.trigger(models.TriggerInput{Code: "view", DeviceID: "old-1", MessageID: ptr("o1"), OccurredAt: &old, Secret: e.secret}); !r.Duplicate || r.EventID != 0 {
			t.Fatalf("resend after erase before: %+v", r)
		}
	})
}

// A lead with more events than one erase transaction takes (eraseChunk,
// 2,000) on one device, and a few on another: everything goes, the
// receipt counts it all, and the definitions and rollups match what is
// left.
func TestEraseLeadInChunks(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *gorm.DB) {
		e := newEnv(t, db)
		day := time.Now().UTC().Add(-48 * time.Hour).Truncate(time.Hour)
		var batch []models.TriggerInput
		send := func() {
			for i, r := range e.writer.Trigger(e.ctx, batch) {
				if r.Err != nil || !r.Accepted || r.Duplicate {
					t.Fatalf("trigger %+v: %+v", batch[i], r)
				}
			}
			batch = batch[:0]
		}
		add := func(device, code string, n int) {
			for i := range n {
				at := day.Add(time.Duration(i) * time.Second)
				batch = append(batch, models.TriggerInput{AppPublicID: e.app.PublicID, Code: code, DeviceID: device,
					MessageID: ptr(fmt.Sprintf("%s-%s-%d", device, code, i)), OccurredAt: &at, Secret: e.secret})
				if len(batch) == 500 {
					send()
				}
			}
			send()
		}
		add("big", "view", 4003)
		add("big", "click", 7)
		add("small", "view", 5)
		add("bystander", "view", 3)
		for _, device := range []string{"big", "small"} {
			in := models.IdentifyInput{AppPublicID: e.app.PublicID, DeviceID: device, Email: "big@example.com", Secret: e.secret}
			if _, err := models.Identify(e.ctx, db, e.writer.Catalog(), in); err != nil {
				t.Fatal(err)
			}
		}
		res, err := models.EraseLead(e.ctx, db, e.owner, e.app.PublicID, "big@example.com")
		if err != nil || !res.Erased || res.DeletedEvents != 4015 || res.Tombstones != 4015 || res.DeletedDevices != 2 || res.DeletedLeads != 1 || res.ReceiptID == 0 {
			t.Fatalf("erase: %v %+v", err, res)
		}
		var receipt models.AuditRecord
		if err := db.First(&receipt, res.ReceiptID).Error; err != nil || receipt.Events != 4015 || receipt.Tombstones != 4015 || receipt.Devices != 2 {
			t.Fatalf("receipt: %v %+v", err, receipt)
		}
		if n := e.countEvents("1 = 1"); n != 3 {
			t.Fatalf("%d events left, want the bystander's 3", n)
		}
		var defs []models.EventDefinition
		if err := db.Where("app_id = ?", e.app.ID).Order("code").Find(&defs).Error; err != nil {
			t.Fatal(err)
		}
		for _, d := range defs {
			if want := map[string]int64{"click": 0, "view": 3}[d.Code]; d.TriggerCount != want {
				t.Errorf("%s counts %d triggers, want %d", d.Code, d.TriggerCount, want)
			}
		}
		if err := models.RollupsMatchEvents(e.ctx, db, e.app.ID); err != nil {
			t.Fatal(err)
		}
		if r := e.trigger(models.TriggerInput{Code: "view", DeviceID: "big", MessageID: ptr("big-view-4002"), Secret: e.secret}); !r.Duplicate || r.EventID != 0 {
			t.Fatalf("resend of an erased messageId: %+v", r)
		}
	})
}

// A replay matches the events of its range first and records their
// deliveries after: an event erased in between gets none, so the
// erasure's deletion of its deliveries is not undone (before, a pending
// delivery naming the erased event was recorded, and the dispatcher then
// dead-lettered it, where it stayed).
func TestReplayAfterEraseRecordsNothingOfTheErased(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *gorm.DB) {
		e := newEnv(t, db)
		gone := e.mustTrigger(models.TriggerInput{Code: "view", DeviceID: "erased"})
		kept := e.mustTrigger(models.TriggerInput{Code: "view", DeviceID: "kept"})
		if _, err := models.EraseDevice(e.ctx, db, e.owner, e.app.PublicID, "erased"); err != nil {
			t.Fatal(err)
		}
		goneID, keptID := gone.EventID, kept.EventID
		if err := models.EnqueueReplay(db, e.app.ID, [][3]uint64{{goneID, 1, 1}, {keptID, 1, 1}}); err != nil {
			t.Fatal(err)
		}
		var events []uint64
		if err := db.Model(&models.Delivery{}).Where("app_id = ?", e.app.ID).Pluck("event_id", &events).Error; err != nil {
			t.Fatal(err)
		}
		if len(events) != 1 || events[0] != keptID {
			t.Fatalf("deliveries of events %v, want only the kept %d (not the erased %d)", events, keptID, goneID)
		}
	})
}
