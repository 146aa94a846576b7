package main

import (
	"testing"

	"github.com/99designs/gqlgen/client"
	"github.com/crumbs-dev/crumbs/models/modelstest"
	"gorm.io/gorm"
)

// Over the JSON API and GraphQL: a trigger resent after its device was
// erased answers duplicate with no event id and is not stored, and the
// erasure's receipt is in the owner's audit log.
func TestResendAfterEraseOverHTTP(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *gorm.DB) {
		j := newJSONAPI(t, db)
		appID, secret := j.a.createApp("Resend")
		body := `{"device_id":"wp-user-1","code":"view","url":"https://example.com/","message_id":"wp:login:1"}`
		first := j.post(appID, body, "Authorization", "Bearer "+secret)
		if !first.item.Accepted || first.item.EventID == nil {
			t.Fatalf("first send: %s", first.raw)
		}
		var erased struct {
			EraseDevice struct {
				Erased        bool
				DeletedEvents int
				Tombstones    int
				ReceiptID     *string
			}
		}
		j.a.ok(`mutation($a: ID!) { eraseDevice(appId: $a, deviceId: "wp-user-1") { erased deletedEvents tombstones receiptId } }`, &erased, client.Var("a", appID))
		if e := erased.EraseDevice; !e.Erased || e.DeletedEvents != 1 || e.Tombstones != 1 || e.ReceiptID == nil {
			t.Fatalf("eraseDevice: %+v", e)
		}
		again := j.post(appID, body, "Authorization", "Bearer "+secret)
		if again.status != 200 || !again.item.Accepted || !again.item.Duplicate || again.item.EventID != nil {
			t.Fatalf("resend after erase: %d %s", again.status, again.raw)
		}
		var graphResend struct {
			Trigger struct {
				Accepted, Duplicate bool
				EventID             *string
			}
		}
		j.a.ok(`mutation($a: ID!) { trigger(input: {appId: $a, deviceId: "wp-user-1", code: "view", messageId: "wp:login:1"}) { accepted duplicate eventId } }`,
			&graphResend, client.Var("a", appID))
		if r := graphResend.Trigger; !r.Accepted || !r.Duplicate || r.EventID != nil {
			t.Fatalf("GraphQL resend after erase: %+v", r)
		}
		var device struct{ Device *struct{ ID string } }
		if err := j.a.gql.Post(`query($a: ID!) { device(appId: $a, deviceId: "wp-user-1") { id } }`, &device, client.Var("a", appID), as(j.a.ownerToken)); err == nil {
			t.Fatalf("the erased device came back: %+v", device)
		}
		var log struct {
			AuditLog struct {
				Edges []struct {
					Node struct {
						ID, Kind           string
						Events, Tombstones int
					}
				}
			}
		}
		j.a.ok(`query($a: ID!) { auditLog(appId: $a) { edges { node { id kind events tombstones } } } }`, &log, client.Var("a", appID))
		if n := log.AuditLog.Edges; len(n) != 1 || n[0].Node.ID != *erased.EraseDevice.ReceiptID || n[0].Node.Kind != "erase_device" || n[0].Node.Events != 1 {
			t.Fatalf("audit log: %+v", log)
		}
	})
}
