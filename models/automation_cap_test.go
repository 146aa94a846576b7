package models_test

import (
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/crumbs-dev/crumbs/models"
	"github.com/crumbs-dev/crumbs/models/modelstest"
	"gorm.io/gorm"
)

// One rule flooded with deliveries is held to its rate: the rest of its
// deliveries stay pending with no attempt counted, while another rule's
// deliveries, due after all of them, go out at once; then the flood drains,
// each delivery once.
func TestAutomationRateCapKeepsOtherRulesFlowing(t *testing.T) {
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
			Poll: 20 * time.Millisecond, Rate: 5, PerRule: 4})
		t.Cleanup(d.Close)
		waitFor(t, "the other rule's deliveries", func() bool {
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
			t.Fatalf("the flooded rule sent all %d deliveries before the other rule's %d", sent, others)
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
		t.Logf("when the other rule's %d deliveries were done: %d of %d flood deliveries sent, %d pending", others, sent, floods, held)

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

// holdingReceivers answer nothing until released, counting the requests
// they hold at once (together) and the most they ever held.
type holdingReceivers struct {
	release        chan struct{}
	once           sync.Once
	inFlight, most atomic.Int32
}

func newHoldingReceivers() *holdingReceivers {
	return &holdingReceivers{release: make(chan struct{})}
}

func (h *holdingReceivers) answer(int, http.ResponseWriter) {
	n := h.inFlight.Add(1)
	for m := h.most.Load(); n > m && !h.most.CompareAndSwap(m, n); m = h.most.Load() {
	}
	<-h.release
	h.inFlight.Add(-1)
}

func (h *holdingReceivers) let() { h.once.Do(func() { close(h.release) }) }

// A rule's actions share its concurrency cap: with PerRule 2 and both of a
// rule's receivers holding every request, 2 attempts of that rule are in
// flight, not 2 per action; meanwhile another rule's deliveries, due after
// all of the slow rule's, go out. Once released, everything is delivered
// once.
func TestAutomationConcurrencyCapIsPerRule(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *gorm.DB) {
		e := newAutomationEnv(t, db, models.DispatcherOptions{})
		e.dispatcher.Close() // started below, once every delivery is due
		held := newHoldingReceivers()
		slowA, slowB, quick := newReceiver(t, held.answer), newReceiver(t, held.answer), newReceiver(t, nil)
		e.define("slow")
		e.define("quick")
		e.matcher("Slows", "slow")
		e.matcher("Quicks", "quick")
		e.rule("Slow", "Slows", false, webhookTo(slowA.URL), webhookTo(slowB.URL))
		quickRule := e.rule("Quick", "Quicks", false, webhookTo(quick.URL))

		const slows, quicks = 6, 3
		for i := range slows {
			e.mustTrigger(models.TriggerInput{Secret: e.secret, Code: "slow", DeviceID: "d-" + strconv.Itoa(i)})
		}
		for i := range quicks {
			e.mustTrigger(models.TriggerInput{Secret: e.secret, Code: "quick", DeviceID: "d-" + strconv.Itoa(i)})
		}
		waitFor(t, "the deliveries", func() bool { return len(e.deliveries(models.DeliveryPending)) == 2*slows+quicks })

		d := models.NewDispatcher(db, models.DispatcherOptions{Guard: models.URLGuard{AllowPrivate: true},
			Poll: 20 * time.Millisecond, Rate: -1, PerRule: 2})
		t.Cleanup(d.Close)
		t.Cleanup(held.let) // before d.Close, which waits for the held attempts
		waitFor(t, "the quick rule's deliveries while the slow rule's are held", func() bool {
			done := e.deliveries(models.DeliverySucceeded)
			for _, dl := range done {
				if dl.RuleID != quickRule.Rule.ID {
					t.Fatalf("delivery %d of the slow rule succeeded while its receivers held every request", dl.ID)
				}
			}
			return len(done) == quicks && held.inFlight.Load() >= 2
		})
		if n := held.most.Load(); n != 2 {
			t.Fatalf("%d attempts of the slow rule's two actions in flight at once, want its PerRule 2", n)
		}
		held.let()
		waitFor(t, "every delivery", func() bool { return len(e.deliveries(models.DeliverySucceeded)) == 2*slows+quicks })
		if n := held.most.Load(); n != 2 {
			t.Fatalf("%d attempts of the slow rule in flight at once, want its PerRule 2", n)
		}
		if a, b := len(slowA.requests()), len(slowB.requests()); a != slows || b != slows {
			t.Fatalf("the slow rule's receivers got %d and %d requests, want %d each", a, b, slows)
		}
		for _, dl := range e.deliveries("") {
			if dl.Attempts != 1 {
				t.Fatalf("delivery %d took %d attempts, want 1", dl.ID, dl.Attempts)
			}
		}
	})
}

// A rule's actions share its rate: at 0.01 attempts a second (one token,
// the next after 100 s) one of the four deliveries of a rule with two
// actions is attempted, not one per action; the other three stay pending
// with no attempt counted, while another rule's delivery, due after them,
// goes out.
func TestAutomationRateCapIsPerRule(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *gorm.DB) {
		e := newAutomationEnv(t, db, models.DispatcherOptions{})
		e.dispatcher.Close() // started below, once every delivery is due
		a, b, other := newReceiver(t, nil), newReceiver(t, nil), newReceiver(t, nil)
		e.define("limited")
		e.define("other")
		e.matcher("Limited", "limited")
		e.matcher("Others", "other")
		limited := e.rule("Limited", "Limited", false, webhookTo(a.URL), webhookTo(b.URL))
		e.rule("Other", "Others", false, webhookTo(other.URL))
		for i := range 2 {
			e.mustTrigger(models.TriggerInput{Secret: e.secret, Code: "limited", DeviceID: "d-" + strconv.Itoa(i)})
		}
		e.mustTrigger(models.TriggerInput{Secret: e.secret, Code: "other", DeviceID: "d-x"})
		waitFor(t, "the deliveries", func() bool { return len(e.deliveries(models.DeliveryPending)) == 5 })

		d := models.NewDispatcher(db, models.DispatcherOptions{Guard: models.URLGuard{AllowPrivate: true},
			Poll: 20 * time.Millisecond, Rate: 0.01, PerRule: 4})
		t.Cleanup(d.Close)
		// The held deliveries would wait 300 s: deleted with their rule, so
		// that the next tests' dispatchers in the shared MySQL database do
		// not attempt them once their receivers are gone.
		t.Cleanup(func() {
			if _, err := models.DeleteAutomationRuleFor(e.ctx, db, e.owner, e.app.PublicID, models.FormatID(limited.Rule.ID)); err != nil {
				t.Error(err)
			}
		})
		// Both rules' first attempts recorded: the limited rule's shows
		// whether the other action spent a token of its own meanwhile.
		waitFor(t, "a delivery of each rule", func() bool { return len(e.deliveries(models.DeliverySucceeded)) >= 2 })
		if n := len(a.requests()) + len(b.requests()); n != 1 {
			t.Fatalf("the limited rule's two actions got %d requests, want 1 (one token for the rule)", n)
		}
		pending := e.deliveries(models.DeliveryPending)
		for _, dl := range pending {
			if dl.RuleID != limited.Rule.ID || dl.Attempts != 0 {
				t.Fatalf("pending delivery %+v", dl)
			}
		}
		if len(pending) != 3 {
			t.Fatalf("%d of the limited rule's deliveries pending, want 3", len(pending))
		}
	})
}
