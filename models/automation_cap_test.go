package models_test

import (
	"strconv"
	"testing"
	"time"

	"github.com/crumbs-dev/crumbs/models"
	"github.com/crumbs-dev/crumbs/models/modelstest"
	"gorm.io/gorm"
)

// One action flooded with deliveries is held to its rate: the rest of its
// deliveries stay pending with no attempt counted, while another action's
// deliveries, due after all of them, go out at once; then the flood drains,
// each delivery once.
func TestAutomationRateCapKeepsOtherActionsFlowing(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *gorm.DB) {
		e := newAutomationEnv(t, db, models.DispatcherOptions{})
		e.dispatcher.Close() // started below, once every delivery is due
		flood, other := newReceiver(t, nil), newReceiver(t, nil)
		e.define("flood")
		e.define("other")
		e.matcher("Floods", "flood")
		e.matcher("Others", "other")
		floodRule := e.rule("Flooded", "Floods", false, webhookTo(flood.URL))
		e.rule("Quiet", "Others", false, webhookTo(other.URL))

		const floods, others = 30, 3
		for i := range floods {
			e.mustTrigger(models.TriggerInput{Secret: e.secret, Code: "flood", DeviceID: "d-" + strconv.Itoa(i)})
		}
		for i := range others {
			e.mustTrigger(models.TriggerInput{Secret: e.secret, Code: "other", DeviceID: "d-" + strconv.Itoa(i)})
		}
		waitFor(t, "the deliveries", func() bool { return len(e.deliveries(models.DeliveryPending)) == floods+others })

		d := models.NewDispatcher(db, models.DispatcherOptions{Guard: models.URLGuard{AllowPrivate: true},
			Poll: 20 * time.Millisecond, Rate: 5, PerAction: 4})
		t.Cleanup(d.Close)
		waitFor(t, "the other action's deliveries", func() bool {
			if len(other.requests()) != others {
				return false
			}
			for _, dl := range e.deliveries(models.DeliveryPending) {
				if dl.RuleID != floodRule.Rule.ID {
					return false // sent, not yet recorded
				}
			}
			return true
		})
		sent := len(flood.requests())
		if sent >= floods {
			t.Fatalf("the flooded action sent all %d deliveries before the other action's %d", sent, others)
		}
		// Those over the cap are pending and were never attempted.
		held := 0
		for _, dl := range e.deliveries(models.DeliveryPending) {
			if dl.RuleID != floodRule.Rule.ID {
				t.Fatalf("delivery %d of the other rule still pending", dl.ID)
			}
			if dl.Attempts != 0 {
				t.Fatalf("a held delivery counts %d attempts", dl.Attempts)
			}
			held++
		}
		if held == 0 {
			t.Fatalf("nothing held back: %d of %d flood deliveries sent", sent, floods)
		}
		t.Logf("when the other action's %d deliveries were done: %d of %d flood deliveries sent, %d pending", others, sent, floods, held)

		waitFor(t, "the flood to drain", func() bool { return len(e.deliveries(models.DeliverySucceeded)) == floods+others })
		ids := map[string]bool{}
		for _, r := range flood.requests() {
			ids[r.header.Get("webhook-id")] = true
		}
		if len(flood.requests()) != floods || len(ids) != floods {
			t.Fatalf("flood receiver got %d requests with %d webhook-ids, want %d", len(flood.requests()), len(ids), floods)
		}
		for _, dl := range e.deliveries("") {
			if dl.Attempts != 1 {
				t.Fatalf("delivery %d took %d attempts, want 1", dl.ID, dl.Attempts)
			}
		}
	})
}
