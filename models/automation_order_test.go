package models_test

import (
	"cmp"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/crumbs-dev/crumbs/models"
	"github.com/crumbs-dev/crumbs/models/modelstest"
	"gorm.io/gorm"
)

// deliveryKey is where a delivery belongs in the enqueue order.
type deliveryKey struct{ event, rule, action uint64 }

func compareKeys(a, b deliveryKey) int {
	return cmp.Or(cmp.Compare(a.event, b.event), cmp.Compare(a.rule, b.rule), cmp.Compare(a.action, b.action))
}

// Deliveries are enqueued in one order on every store: by event, then rule
// id, then action id, whatever the rules' names (an index on them once
// decided the order on SQLite). replayRule enqueues by event, then action
// id, and testRule's samples are the newest matches, newest first.
func TestAutomationEnqueueOrder(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *gorm.DB) {
		e := newAutomationEnv(t, db, models.DispatcherOptions{})
		recv := newReceiver(t, nil)
		e.define("signup")
		e.matcher("Signups", "signup")
		// Names sorting against the ids.
		for _, name := range []string{"c rule", "b rule", "a rule"} {
			e.rule(name, "Signups", false, webhookTo(recv.URL+"/1"), webhookTo(recv.URL+"/2"))
		}
		start := time.Now().Add(-time.Minute)
		var events []uint64
		for i := range 3 {
			events = append(events, e.mustTrigger(models.TriggerInput{Secret: e.secret, Code: "signup", DeviceID: fmt.Sprint("d-", i)}).EventID)
		}
		waitFor(t, "18 deliveries", func() bool { return len(e.deliveries(models.DeliverySucceeded)) == 18 })
		rules, err := models.AutomationRulesFor(e.ctx, db, e.owner, e.app.PublicID)
		if err != nil {
			t.Fatal(err)
		}
		var ruleIDs []uint64
		for _, r := range rules {
			ruleIDs = append(ruleIDs, r.ID)
		}
		actions, err := models.ActionsOfRules(e.ctx, db, ruleIDs)
		if err != nil {
			t.Fatal(err)
		}
		var want []deliveryKey
		for _, ev := range events {
			for _, r := range ruleIDs {
				for _, a := range actions[r] {
					want = append(want, deliveryKey{ev, r, a.ID})
				}
			}
		}
		slices.SortFunc(want, compareKeys)
		checkEnqueueOrder(t, e.deliveries(""), want)

		// testRule's samples: the three newest events, newest first.
		res, err := models.TestRuleFor(e.ctx, db, e.owner, e.app.PublicID, models.TestRuleInput{Matcher: "Signups", From: start, To: time.Now().Add(time.Minute)})
		if err != nil {
			t.Fatal(err)
		}
		for i, s := range res.Samples {
			id := s["data"].(models.JSONObject)["event"].(models.JSONObject)["id"]
			if want := models.FormatID(events[len(events)-1-i]); id != want {
				t.Fatalf("sample %d is event %v, want %s", i, id, want)
			}
		}

		// replayRule of a rule made after the events were matched.
		if err := e.writer.EventLog().Drain(e.ctx); err != nil {
			t.Fatal(err)
		}
		created := e.rule("0 rule", "Signups", false, webhookTo(recv.URL+"/3"), webhookTo(recv.URL+"/4"))
		if _, err := models.ReplayRuleFor(e.ctx, db, e.owner, e.app.PublicID, models.FormatID(created.Rule.ID), start, time.Now().Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
		for _, ev := range events {
			for _, s := range created.Secrets {
				want = append(want, deliveryKey{ev, created.Rule.ID, s.Action.ID})
			}
		}
		checkEnqueueOrder(t, e.deliveries(""), want)
	})
}

// checkEnqueueOrder checks that the log (newest first) holds the keys of
// want, oldest first.
func checkEnqueueOrder(t *testing.T, log []*models.Delivery, want []deliveryKey) {
	t.Helper()
	got := make([]deliveryKey, len(log))
	for i, d := range log {
		got[len(log)-1-i] = deliveryKey{d.EventID, d.RuleID, d.ActionID}
	}
	if !slices.Equal(got, want) {
		t.Fatalf("deliveries in id order (event, rule, action):\n%v\nwant\n%v", got, want)
	}
}
