package models_test

import (
	"encoding/json"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/crumbs-dev/crumbs/models"
	"github.com/crumbs-dev/crumbs/models/modelstest"
)

// A test delivery's sample is the newest event of the rule's matcher code
// by occurrence, then reception, then id, on both stores: ordered by
// occurred_at alone, events of the same instant came in whatever order the
// store's plan read them (the last device id first, through an index).
func TestTestDeliverySampleIsTheNewestEvent(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *gorm.DB) {
		e := newAutomationEnv(t, db, models.DispatcherOptions{Backoff: time.Hour})
		recv := newReceiver(t, nil)
		def := e.define("buy")
		e.define("other")
		e.matcher("Buys", "buy")
		created := e.rule("Sample", "Buys", false, webhookTo(recv.URL+"/hooks"))
		actionID := models.FormatID(created.Secrets[0].Action.ID)
		at := time.Now().Add(-time.Hour).Truncate(time.Second)
		// Imported in order, so ids rise from first to last.
		add := func(device string, occurred, received time.Time) {
			t.Helper()
			ev := &models.Event{AppID: e.app.ID, DefinitionID: def.ID, DeviceID: device, URL: "https://example.com/",
				Source: "api", OccurredAt: occurred, ReceivedAt: received}
			if err := models.ImportEvents(e.ctx, db, []*models.Event{ev}); err != nil {
				t.Fatal(err)
			}
		}
		sampled := func() string {
			t.Helper()
			res, err := e.dispatcher.SendTestDeliveryFor(e.ctx, e.owner, e.app.PublicID, actionID)
			if err != nil {
				t.Fatal(err)
			}
			// The rule's own deliveries of the events reach the receiver too.
			for _, got := range recv.requests() {
				if got.header.Get("webhook-id") != res.WebhookID {
					continue
				}
				var body struct {
					Data struct {
						Device struct{ ID string }
					}
				}
				if err := json.Unmarshal(got.body, &body); err != nil {
					t.Fatal(err)
				}
				return body.Data.Device.ID
			}
			t.Fatalf("the receiver did not get test delivery %s", res.WebhookID)
			return ""
		}

		// Ties came in the order of an index, (definition_id, occurred_at,
		// device_id, …) read backwards, so the devices' names sort against
		// the order wanted.
		// One instant: the one received last, neither the lowest id nor
		// the highest.
		add("y-received-first", at, at)
		add("a-received-last", at, at.Add(2*time.Second))
		add("z-highest-id", at, at.Add(time.Second))
		if got := sampled(); got != "a-received-last" {
			t.Errorf("sampled %q among events of one instant; want the one received last", got)
		}
		// One instant, received together: the highest id.
		later := at.Add(time.Minute)
		for _, device := range []string{"z-lower-id", "a-highest-id"} {
			add(device, later, later)
		}
		if got := sampled(); got != "a-highest-id" {
			t.Errorf("sampled %q among events of one instant and reception; want the highest id", got)
		}
	})
}
