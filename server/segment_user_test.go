package main

import (
	"encoding/base64"
	"fmt"
	"strings"
	"testing"

	"github.com/99designs/gqlgen/client"
	"github.com/crumbs-dev/crumbs/models/modelstest"
	"gorm.io/gorm"
)

// segmentBatch posts messages to /v1/batch with the app's key and answers
// the outcome of each.
func segmentBatch(j *jsonAPI, secret string, messages ...string) apiResponse {
	j.t.Helper()
	basic := "Basic " + base64.StdEncoding.EncodeToString([]byte(secret+":"))
	r := j.postTo("/v1/batch", `{"batch":[`+strings.Join(messages, ",")+`]}`, "Authorization", basic)
	if r.status != 200 || len(r.Results) != len(messages) {
		j.t.Fatalf("batch: %d %s", r.status, r.raw)
	}
	return r
}

// Within one /v1/batch an identify takes effect before the calls after it:
// a reader of the store when a track's event is written (a database
// trigger here, standing for the rules that read who owns a device) finds
// the device identified, as it would had the identify been sent first on
// its own.
func TestSegmentBatchIdentifiesInOrder(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *gorm.DB) {
		j := newJSONAPI(t, db)
		appID, secret := j.a.createApp("Segment order")
		j.a.ok(`mutation($a: ID!) { createEventDefinition(input: {appId: $a, code: "order_completed", name: "Order"}) { id } }`, &map[string]any{}, client.Var("a", appID))
		var app struct{ ID uint64 }
		if err := db.Table("apps").Select("id").Where("public_id = ?", appID).Take(&app).Error; err != nil {
			t.Fatal(err)
		}
		probe := fmt.Sprintf("segment_order_probe_%d", app.ID)
		read := "SELECT NEW.device_id, (SELECT lead_id FROM devices WHERE app_id = NEW.app_id AND device_id = NEW.device_id)"
		stmts := []string{"CREATE TABLE " + probe + " (device_id VARCHAR(128), lead_id BIGINT)"}
		if db.Dialector.Name() == "sqlite" {
			stmts = append(stmts, fmt.Sprintf("CREATE TRIGGER %s AFTER INSERT ON events FOR EACH ROW WHEN NEW.app_id = %d BEGIN INSERT INTO %s %s; END", probe, app.ID, probe, read))
		} else {
			stmts = append(stmts, fmt.Sprintf("CREATE TRIGGER %s AFTER INSERT ON events FOR EACH ROW INSERT INTO %s %s FROM DUAL WHERE NEW.app_id = %d", probe, probe, read, app.ID))
		}
		t.Cleanup(func() {
			db.Exec("DROP TRIGGER IF EXISTS " + probe)
			db.Exec("DROP TABLE IF EXISTS " + probe)
		})
		for _, s := range stmts {
			if err := db.Exec(s).Error; err != nil {
				t.Fatal(err)
			}
		}

		var messages []string
		for i := range 50 {
			messages = append(messages,
				fmt.Sprintf(`{"type":"identify","anonymousId":"o-%d","traits":{"email":"o%d@example.com"}}`, i, i),
				fmt.Sprintf(`{"type":"track","anonymousId":"o-%d","event":"Order Completed"}`, i))
		}
		r := segmentBatch(j, secret, messages...)
		if !strings.Contains(r.raw, `"success":true`) {
			t.Fatalf("batch: %s", r.raw)
		}
		var rows []struct {
			DeviceID string
			LeadID   *uint64
		}
		if err := db.Table(probe).Find(&rows).Error; err != nil {
			t.Fatal(err)
		}
		unidentified := 0
		for _, row := range rows {
			if row.LeadID == nil {
				unidentified++
			}
		}
		if len(rows) != 50 || unidentified != 0 {
			t.Errorf("%d events written, %d of them on a device not yet identified", len(rows), unidentified)
		}
	})
}
