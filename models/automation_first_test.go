package models_test

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/crumbs-dev/crumbs/models"
	"github.com/crumbs-dev/crumbs/models/modelstest"
	"gorm.io/gorm"
)

// The automations consumer makes the first attempt itself and inserts the
// delivery with its outcome and attempt: with the dispatcher's own claims
// an hour apart, deliveries still go out at once, and failed first
// attempts are recorded to be retried.
func TestFirstAttemptsFromTheConsumer(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *gorm.DB) {
		e := newAutomationEnv(t, db, models.DispatcherOptions{Poll: time.Hour, Backoff: time.Hour})
		ok := newReceiver(t, nil)
		down := newReceiver(t, func(_ int, w http.ResponseWriter) { w.WriteHeader(http.StatusServiceUnavailable) })
		gone := newReceiver(t, func(_ int, w http.ResponseWriter) { w.WriteHeader(http.StatusGone) })
		e.define("signup")
		e.matcher("Signups", "signup")
		toOK := e.rule("OK", "Signups", false, webhookTo(ok.URL))
		toDown := e.rule("Down", "Signups", false, webhookTo(down.URL))
		toGone := e.rule("Gone", "Signups", false, webhookTo(gone.URL))

		res := e.mustTrigger(models.TriggerInput{Secret: e.secret, Code: "signup", DeviceID: "d-1"})
		waitFor(t, "the three deliveries", func() bool { return len(e.deliveries("")) == 3 })
		byRule := map[uint64]*models.Delivery{}
		for _, d := range e.deliveries("") {
			byRule[d.RuleID] = d
		}
		sent := byRule[toOK.Rule.ID]
		if sent.Status != models.DeliverySucceeded || sent.Attempts != 1 || sent.LastStatusCode != 200 || len(ok.requests()) != 1 {
			t.Fatalf("first attempt to a 200: %+v, %d requests", sent, len(ok.requests()))
		}
		if got := ok.requests()[0].header.Get("webhook-id"); got != fmt.Sprintf("msg_%d_%d", res.EventID, toOK.Secrets[0].Action.ID) || !verifySignature(toOK.Secrets[0].Secret, ok.requests()[0]) {
			t.Fatalf("webhook-id %q or its signature", got)
		}
		retrying := byRule[toDown.Rule.ID]
		if retrying.Status != models.DeliveryRetrying || retrying.Attempts != 1 || retrying.LastStatusCode != 503 ||
			retrying.NextAttemptAt() == nil || time.Until(*retrying.NextAttemptAt()) < 30*time.Minute {
			t.Fatalf("first attempt to a 503: %+v", retrying)
		}
		dead := byRule[toGone.Rule.ID]
		if dead.Status != models.DeliveryDead || dead.Attempts != 1 || dead.LastStatusCode != 410 {
			t.Fatalf("first attempt to a 410: %+v", dead)
		}
		var action models.AutomationAction
		if err := db.First(&action, toGone.Secrets[0].Action.ID).Error; err != nil || !action.Disabled() {
			t.Fatal("a 410 at the first attempt left the action enabled")
		}
		attempts, err := models.AttemptsOfDeliveries(e.ctx, db, []uint64{sent.ID, retrying.ID, dead.ID})
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range []*models.Delivery{sent, retrying, dead} {
			if as := attempts[d.ID]; len(as) != 1 || as[0].StatusCode != d.LastStatusCode {
				t.Fatalf("delivery %d: attempts %+v", d.ID, as)
			}
		}
		counts := e.dispatcher.DeliveryCounts()
		if counts["succeeded"] != 1 || counts["failed"] != 1 || counts["disabled"] != 1 {
			t.Fatalf("counts %v", counts)
		}
	})
}

// A first attempt still in flight when the consumer's budget ends goes on
// with the whole per-attempt timeout: the consumer records the delivery
// leased to it, and its outcome is recorded once, as the dispatcher's own
// attempts are; the receiver gets one request, not a second one with the
// same webhook-id while the first is still answering.
func TestFirstAttemptOutlastingTheBudgetGoesOn(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *gorm.DB) {
		e := newAutomationEnv(t, db, models.DispatcherOptions{Timeout: time.Minute})
		slow := newReceiver(t, func(int, http.ResponseWriter) { time.Sleep(3 * time.Second) }) // past the budget (2 s)
		e.define("signup")
		e.matcher("Signups", "signup")
		e.rule("Slow", "Signups", false, webhookTo(slow.URL))
		e.mustTrigger(models.TriggerInput{Secret: e.secret, Code: "signup", DeviceID: "d-1"})
		waitFor(t, "the delivery", func() bool { return len(e.deliveries(models.DeliverySucceeded)) == 1 })
		time.Sleep(500 * time.Millisecond) // a second request would be on its way by now
		if n := len(slow.requests()); n != 1 {
			t.Fatalf("%d requests; want the first attempt's only", n)
		}
		d := e.deliveries("")[0]
		attempts, err := models.AttemptsOfDeliveries(e.ctx, db, []uint64{d.ID})
		if err != nil {
			t.Fatal(err)
		}
		if d.Attempts != 1 || d.LastStatusCode != 200 || len(attempts[d.ID]) != 1 || d.LastLatencyMs < 2900 {
			t.Fatalf("delivery %+v, attempts %+v", d, attempts[d.ID])
		}
		if counts := e.dispatcher.DeliveryCounts(); counts["succeeded"] != 1 {
			t.Fatalf("counts %v", counts)
		}
	})
}

// A slow first attempt that fails is retried after its backoff, not at
// once: no other attempt is made while it is in flight, even though the
// consumer has recorded its delivery.
func TestFirstAttemptOutlastingTheBudgetFails(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *gorm.DB) {
		e := newAutomationEnv(t, db, models.DispatcherOptions{Timeout: time.Minute, Backoff: time.Hour})
		slow := newReceiver(t, func(_ int, w http.ResponseWriter) {
			time.Sleep(3 * time.Second)
			w.WriteHeader(http.StatusServiceUnavailable)
		})
		e.define("signup")
		e.matcher("Signups", "signup")
		e.rule("Slow", "Signups", false, webhookTo(slow.URL))
		e.mustTrigger(models.TriggerInput{Secret: e.secret, Code: "signup", DeviceID: "d-1"})
		waitFor(t, "the failed attempt", func() bool { return len(e.deliveries(models.DeliveryRetrying)) == 1 })
		time.Sleep(500 * time.Millisecond)
		d := e.deliveries("")[0]
		if n := len(slow.requests()); n != 1 || d.Attempts != 1 || d.LastStatusCode != 503 || d.NextAttemptAt() == nil ||
			time.Until(*d.NextAttemptAt()) < 30*time.Minute {
			t.Fatalf("%d requests; delivery %+v", n, d)
		}
	})
}

// When the transaction that records first attempts fails, the consumer
// derives the batch again and sends again with the same webhook-ids; the
// delivery is recorded once, with one attempt. So too for an attempt still
// in flight at the budget: its outcome goes with the failed transaction.
func TestFirstAttemptsAgainAfterAFailedCommit(t *testing.T) {
	for _, firstTakes := range []time.Duration{0, 3 * time.Second} { // within the budget (2 s), past it
		t.Run(fmt.Sprint("first answer after ", firstTakes), func(t *testing.T) {
			modelstest.Each(t, func(t *testing.T, db *gorm.DB) {
				e := newAutomationEnv(t, db, models.DispatcherOptions{Timeout: time.Minute, Poll: time.Hour})
				recv := newReceiver(t, func(n int, w http.ResponseWriter) {
					if n == 0 {
						time.Sleep(firstTakes)
					}
				})
				e.define("signup")
				e.matcher("Signups", "signup")
				e.rule("CRM", "Signups", false, webhookTo(recv.URL))
				var failed atomic.Int32
				restore := models.SetDerivedCommitHook(func(_ *gorm.DB, consumer string) error {
					if strings.HasPrefix(consumer, "automations-test-") && failed.Add(1) == 1 {
						return errors.New("the store went away")
					}
					return nil
				})
				defer restore()
				e.mustTrigger(models.TriggerInput{Secret: e.secret, Code: "signup", DeviceID: "d-1"})
				waitFor(t, "the delivery", func() bool { return len(e.deliveries(models.DeliverySucceeded)) == 1 })
				time.Sleep(firstTakes) // a first request still answering does so meanwhile
				got := recv.requests()
				if len(got) != 2 || got[0].header.Get("webhook-id") != got[1].header.Get("webhook-id") {
					t.Fatalf("%d requests; want one per try, with one webhook-id", len(got))
				}
				dls := e.deliveries("")
				if len(dls) != 1 || dls[0].Attempts != 1 || dls[0].Status != models.DeliverySucceeded {
					t.Fatalf("deliveries %+v", dls)
				}
				attempts, err := models.AttemptsOfDeliveries(e.ctx, db, []uint64{dls[0].ID})
				if err != nil || len(attempts[dls[0].ID]) != 1 {
					t.Fatalf("attempts %+v, %v", attempts, err)
				}
			})
		})
	}
}

// First attempts over an action's rate are not made: they are recorded
// pending, with no attempt counted, for the dispatcher to send as the rate
// allows, instead of holding the consumer until its budget ends.
func TestFirstAttemptsOverTheRateArePending(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *gorm.DB) {
		e := newAutomationEnv(t, db, models.DispatcherOptions{Poll: time.Hour, Rate: 2})
		recv := newReceiver(t, nil)
		e.define("signup")
		e.matcher("Signups", "signup")
		e.rule("CRM", "Signups", false, webhookTo(recv.URL))
		const n = 12
		var wg sync.WaitGroup
		results := make([]models.TriggerResult, n)
		for i := range n { // at once: one group commit, one flush, mostly
			wg.Go(func() {
				results[i] = e.trigger(models.TriggerInput{Secret: e.secret, Code: "signup", DeviceID: fmt.Sprint("d-", i)})
			})
		}
		wg.Wait()
		for _, r := range results {
			if r.Err != nil || !r.Accepted {
				t.Fatalf("trigger: %+v", r)
			}
		}
		waitFor(t, "the deliveries", func() bool { return len(e.deliveries("")) == n })
		sent := len(recv.requests())
		pending := e.deliveries(models.DeliveryPending)
		if sent == 0 || sent > 6 || len(pending) != n-sent {
			t.Fatalf("%d sent at 2 a second, %d pending of %d", sent, len(pending), n)
		}
		for _, d := range pending {
			if d.Attempts != 0 {
				t.Fatalf("a delivery held back by the rate counts %d attempts", d.Attempts)
			}
		}
	})
}
