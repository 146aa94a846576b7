package models_test

import (
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/crumbs-dev/crumbs/models"
	"github.com/crumbs-dev/crumbs/models/modelstest"
)

// Two replicas' dispatchers share one delivery log: each delivery is
// attempted by one of them at a time (the lease), both take part, and with
// a receiver that fails every first attempt, each delivery is sent exactly
// twice: the failure and the retry, never the same attempt by both.
func TestDispatchersShareDeliveriesByLease(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *gorm.DB) {
		e := newAutomationEnv(t, db, models.DispatcherOptions{})
		e.dispatcher.Close() // the consumer leaves the deliveries pending; the two replicas below send them
		var mu sync.Mutex
		inFlight, sent := map[string]bool{}, map[string]int{}
		overlaps := 0
		var suffix string // this test's action's webhook-ids end with it; the replicas also retry other tests' leftovers (on MariaDB's shared database)
		recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			id := r.Header.Get("webhook-id")
			if !strings.HasSuffix(id, suffix) {
				w.WriteHeader(http.StatusGone)
				return
			}
			mu.Lock()
			if inFlight[id] {
				overlaps++
			}
			inFlight[id] = true
			sent[id]++
			first := sent[id] == 1
			mu.Unlock()
			time.Sleep(15 * time.Millisecond) // an attempt takes a while, so a second replica claiming it would overlap
			mu.Lock()
			delete(inFlight, id)
			mu.Unlock()
			if first {
				w.WriteHeader(http.StatusServiceUnavailable)
			}
		}))
		t.Cleanup(recv.Close)
		e.define("signup")
		e.matcher("Signups", "signup")
		created := e.rule("Both replicas", "Signups", false, webhookTo(recv.URL))
		suffix = "_" + strconv.FormatUint(created.Secrets[0].Action.ID, 10)
		const n = 60
		for i := range n {
			e.mustTrigger(models.TriggerInput{Secret: e.secret, Code: "signup", DeviceID: "d-" + strconv.Itoa(i)})
		}
		waitFor(t, "the deliveries", func() bool { return len(e.deliveries(models.DeliveryPending)) == n })

		var replicas [2]*models.Dispatcher
		for i := range replicas {
			replicas[i] = models.NewDispatcher(db, models.DispatcherOptions{Guard: models.URLGuard{AllowPrivate: true},
				Poll: 20 * time.Millisecond, Backoff: 50 * time.Millisecond, Rate: -1, Workers: 4})
			t.Cleanup(replicas[i].Close)
		}
		waitFor(t, "every delivery to succeed", func() bool { return len(e.deliveries(models.DeliverySucceeded)) == n })
		time.Sleep(200 * time.Millisecond) // a stray third attempt would show by now
		mu.Lock()
		defer mu.Unlock()
		if overlaps > 0 {
			t.Fatalf("%d attempts went out while the same delivery's attempt was in flight", overlaps)
		}
		if len(sent) != n {
			t.Fatalf("%d webhook-ids sent, want %d", len(sent), n)
		}
		for id, k := range sent {
			if k != 2 {
				t.Fatalf("%s sent %d times, want 2 (a failed attempt, then its retry)", id, k)
			}
		}
		// Other tests' leftovers go to closed receivers and fail: only this
		// test's deliveries can succeed.
		var counts [2]map[string]float64
		for i, d := range replicas {
			if counts[i] = d.DeliveryCounts(); counts[i]["succeeded"] == 0 {
				t.Fatalf("replica %d delivered nothing: %v and %v", i, counts[i], replicas[1-i].DeliveryCounts())
			}
		}
		t.Logf("replica 0: %v; replica 1: %v", counts[0], counts[1])
	})
}
