package models_test

import (
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/crumbs-dev/crumbs/models"
	"github.com/crumbs-dev/crumbs/models/modelstest"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// oneDelivery makes a rule with one webhook to recv, triggers one event
// and returns the rule and, once its status is status, the delivery.
func (e *automationEnv) oneDelivery(recv *receiver, status string) (*models.CreatedRule, *models.Delivery) {
	e.t.Helper()
	e.define("buy")
	e.matcher("Buys", "buy")
	created := e.rule("Hook", "Buys", false, webhookTo(recv.URL))
	e.mustTrigger(models.TriggerInput{Secret: e.secret, Code: "buy", DeviceID: "d-1"})
	waitFor(e.t, "a delivery "+status, func() bool { return len(e.deliveries(status)) == 1 })
	return created, e.deliveries(status)[0]
}

func (e *automationEnv) replay(d *models.Delivery) (*models.Delivery, error) {
	return models.ReplayDeliveryFor(e.ctx, e.db, e.owner, e.app.PublicID, models.FormatID(d.ID))
}

// attemptLog returns the delivery's logged attempts.
func (e *automationEnv) attemptLog(id uint64) []*models.DeliveryAttempt {
	e.t.Helper()
	atts, err := models.AttemptsOfDeliveries(e.ctx, e.db, []uint64{id})
	if err != nil {
		e.t.Fatal(err)
	}
	return atts[id]
}

// sameWebhookID fails unless every request carries one webhook-id.
func sameWebhookID(t *testing.T, got []received) {
	t.Helper()
	for _, r := range got {
		if id := r.header.Get("webhook-id"); id != got[0].header.Get("webhook-id") {
			t.Fatalf("webhook-ids %q and %q", got[0].header.Get("webhook-id"), id)
		}
	}
}

// A dead-lettered delivery, replayed (replayDelivery, then replayRule), gets
// the whole retry policy again: MaxAttempts more attempts before it is dead
// again, with its attempts counted from the replay and every attempt in its
// log.
func TestReplayDeliveryAfterDeadLetter(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *gorm.DB) {
		e := newAutomationEnv(t, db, models.DispatcherOptions{MaxAttempts: 3})
		down := newReceiver(t, func(_ int, w http.ResponseWriter) { w.WriteHeader(503) })
		_, dead := e.oneDelivery(down, models.DeliveryDead)
		if dead.Attempts != 3 || len(down.requests()) != 3 {
			t.Fatalf("dead after %d attempts, %d requests; want 3", dead.Attempts, len(down.requests()))
		}
		replayed, err := e.replay(dead)
		if err != nil {
			t.Fatal(err)
		}
		if replayed.Status != models.DeliveryPending || replayed.Attempts != 0 || replayed.NextAttemptAt() == nil || time.Until(*replayed.NextAttemptAt()) > 0 {
			t.Fatalf("replayed: %s, %d attempts, next at %v; want pending, 0, due now", replayed.Status, replayed.Attempts, replayed.NextAttemptAt())
		}
		waitFor(t, "the replay to be dead-lettered again", func() bool {
			d := e.deliveries("")[0]
			return d.Status == models.DeliveryDead && len(e.attemptLog(d.ID)) > 3
		})
		d := e.deliveries("")[0]
		if d.Attempts != 3 || len(e.attemptLog(d.ID)) != 6 {
			t.Fatalf("after the replay: %d attempts counted, %d logged; want 3 and 6", d.Attempts, len(e.attemptLog(d.ID)))
		}
		got := down.requests()
		if len(got) != 6 {
			t.Fatalf("the receiver got %d requests, want 3 and 3 after the replay", len(got))
		}

		// replayRule too.
		n, err := models.ReplayRuleFor(e.ctx, db, e.owner, e.app.PublicID, models.FormatID(d.RuleID), time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
		if err != nil || n != 1 {
			t.Fatalf("replayRule: %d events, %v", n, err)
		}
		waitFor(t, "the rule's replay to be dead-lettered", func() bool {
			d := e.deliveries("")[0]
			return d.Status == models.DeliveryDead && len(e.attemptLog(d.ID)) > 6
		})
		d = e.deliveries("")[0]
		if d.Attempts != 3 || d.Replays != 2 || len(e.attemptLog(d.ID)) != 9 {
			t.Fatalf("after replayRule: %d attempts counted, %d logged, %d replays; want 3, 9 and 2", d.Attempts, len(e.attemptLog(d.ID)), d.Replays)
		}
		got = down.requests()
		if len(got) != 9 {
			t.Fatalf("the receiver got %d requests, want 3 more after replayRule", len(got))
		}
		sameWebhookID(t, got)
	})
}

// Replaying a delivery of a disabled action (410 Gone, or switched off) is
// a conflict that changes nothing: it could not be sent. Enabled again, the
// action takes the replay.
func TestReplayDeliveryOfDisabledAction(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *gorm.DB) {
		e := newAutomationEnv(t, db, models.DispatcherOptions{})
		recv := newReceiver(t, func(n int, w http.ResponseWriter) {
			if n == 0 {
				w.WriteHeader(http.StatusGone)
			}
		})
		created, dead := e.oneDelivery(recv, models.DeliveryDead)
		action := models.FormatID(created.Secrets[0].Action.ID)
		_, err := e.replay(dead)
		if !errors.Is(err, models.ErrConflict) || !strings.Contains(err.Error(), "disabled") || !strings.Contains(err.Error(), "410") {
			t.Fatalf("replay of a delivery of an action disabled by 410: %v, want a conflict saying so", err)
		}
		if d := e.deliveries("")[0]; d.Status != models.DeliveryDead || d.Attempts != 1 || d.Replays != 0 {
			t.Fatalf("the refused replay changed the delivery: %+v", d)
		}
		guard := models.URLGuard{AllowPrivate: true}
		if _, err := models.UpdateAutomationActionFor(e.ctx, db, e.owner, guard, e.app.PublicID, action, models.AutomationActionInput{Enabled: ptr(true)}); err != nil {
			t.Fatal(err)
		}
		if _, err := e.replay(dead); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the replay", func() bool { return len(e.deliveries(models.DeliverySucceeded)) == 1 })
		if _, err := models.UpdateAutomationActionFor(e.ctx, db, e.owner, guard, e.app.PublicID, action, models.AutomationActionInput{Enabled: ptr(false)}); err != nil {
			t.Fatal(err)
		}
		if _, err := e.replay(dead); !errors.Is(err, models.ErrConflict) || !strings.Contains(err.Error(), "switched off") {
			t.Fatalf("replay of a delivery of an action switched off: %v, want a conflict saying so", err)
		}
		if n := len(recv.requests()); n != 2 {
			t.Fatalf("the receiver got %d requests, want the 410 and the replay", n)
		}
	})
}

// A replay during an attempt is not undone when the attempt's outcome is
// recorded: the attempt is logged, and the replay gets its whole retry
// policy. The receiver holds the attempt until the replay has committed.
func TestReplayDeliveryDuringAnAttempt(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *gorm.DB) {
		e := newAutomationEnv(t, db, models.DispatcherOptions{MaxAttempts: 2})
		arrived, release := make(chan struct{}), make(chan struct{})
		t.Cleanup(func() {
			select {
			case <-release:
			default:
				close(release)
			}
		})
		recv := newReceiver(t, func(n int, w http.ResponseWriter) {
			if n == 1 { // the dispatcher's first retry
				close(arrived)
				<-release
			}
			w.WriteHeader(500)
		})
		_, d := e.oneDelivery(recv, models.DeliveryRetrying)
		select {
		case <-arrived:
		case <-time.After(20 * time.Second):
			t.Fatal("the retry never arrived")
		}
		// Without the replay, this attempt is the last: it would be dead.
		if _, err := e.replay(d); err != nil {
			t.Fatal(err)
		}
		close(release)
		waitFor(t, "the replay to be dead-lettered", func() bool {
			d := e.deliveries("")[0]
			return d.Status == models.DeliveryDead && len(e.attemptLog(d.ID)) == 4
		})
		if d := e.deliveries("")[0]; d.Attempts != 2 || d.Replays != 1 {
			t.Fatalf("after the replay: %d attempts, %d replays; want the policy's 2, and 1", d.Attempts, d.Replays)
		}
		got := recv.requests()
		if len(got) != 4 {
			t.Fatalf("the receiver got %d requests; want the first, the one held, and 2 after the replay", len(got))
		}
		sameWebhookID(t, got)
	})
}

// waitForStatement waits until a statement on table runs in this test's
// MySQL database (waiting, in these tests, for a lock the test holds), or
// until done closes. The caller makes sure nothing else touches the table
// meanwhile. SQLite has one connection, which runs a transaction's
// statements with nothing in between, so there it waits for nothing: what
// a test then checks holds whatever the order.
func waitForStatement(t *testing.T, db *gorm.DB, table string, done <-chan struct{}) {
	t.Helper()
	if db.Dialector.Name() != "mysql" {
		return
	}
	waitFor(t, "a statement on "+table, func() bool {
		select {
		case <-done:
			return true
		default:
		}
		// A statement waiting for a row lock while the optimizer reads
		// the row by its key shows in the process list, not always in
		// INNODB_TRX.
		var running int
		err := db.Raw(`SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE DB = DATABASE() AND ID <> CONNECTION_ID() AND COMMAND = 'Query' AND INFO LIKE ?`,
			"%`"+table+"`%").Scan(&running).Error
		if err != nil {
			t.Fatal(err)
		}
		return running > 0
	})
}

// replayAsync replays d in a goroutine: its answer comes on the first
// channel; the second closes after it.
func (e *automationEnv) replayAsync(d *models.Delivery) (<-chan error, <-chan struct{}) {
	answer, done := make(chan error, 1), make(chan struct{})
	go func() {
		_, err := e.replay(d)
		answer <- err
		close(done)
	}()
	return answer, done
}

// A delivery deleted while it is being replayed (with its rule or action,
// by an erasure, by pruning) answers NOT_FOUND: the replay waits for the
// deletion and finds nothing, rather than answering a delivery that is
// gone. A replay that wins the race against pruning keeps its delivery.
func TestReplayDeliveryDeletedMeanwhile(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *gorm.DB) {
		e := newAutomationEnv(t, db, models.DispatcherOptions{MaxAttempts: 1})
		down := newReceiver(t, func(_ int, w http.ResponseWriter) { w.WriteHeader(503) })
		e.define("buy")
		e.matcher("Buys", "buy")
		rule1 := e.rule("One", "Buys", false, webhookTo(down.URL))
		rule2 := e.rule("Two", "Buys", false, webhookTo(down.URL))
		if _, err := models.Identify(e.ctx, db, models.NewCatalog(db, 0), models.IdentifyInput{AppPublicID: e.app.PublicID, DeviceID: "d-lead",
			Email: "erase-me@example.com", Secret: e.secret}); err != nil {
			t.Fatal(err)
		}
		var events []uint64
		for _, dev := range []string{"d-lead", "d-2", "d-3", "d-4"} {
			events = append(events, e.mustTrigger(models.TriggerInput{Secret: e.secret, Code: "buy", DeviceID: dev}).EventID)
		}
		waitFor(t, "8 dead deliveries", func() bool { return len(e.deliveries(models.DeliveryDead)) == 8 })
		e.dispatcher.Close() // its claims would look like the statements the test waits for
		of := func(event uint64, rule *models.CreatedRule) *models.Delivery {
			for _, d := range e.deliveries("") {
				if d.EventID == event && d.RuleID == rule.Rule.ID {
					return d
				}
			}
			t.Fatalf("no delivery of event %d by rule %d", event, rule.Rule.ID)
			return nil
		}
		notFound := func(what string, d *models.Delivery, err error) {
			t.Helper()
			if !errors.Is(err, models.ErrNotFound) {
				t.Fatalf("replay of a delivery deleted %s: %v, want NOT_FOUND", what, err)
			}
			var n int64
			db.Model(&models.Delivery{}).Where("id = ?", d.ID).Count(&n)
			if n != 0 {
				t.Fatalf("the delivery deleted %s is back", what)
			}
		}

		// A deletion in progress (as deleteAutomationRule, deleteAutomationAction
		// and erasures delete): the replay waits for its commit.
		d := of(events[1], rule1)
		var replayed <-chan error
		err := db.Transaction(func(tx *gorm.DB) error {
			if err := tx.Where("delivery_id = ?", d.ID).Delete(&models.DeliveryAttempt{}).Error; err != nil {
				return err
			}
			if err := tx.Delete(&models.Delivery{ID: d.ID}).Error; err != nil {
				return err
			}
			var done <-chan struct{}
			replayed, done = e.replayAsync(d)
			waitForStatement(t, db, "automation_deliveries", done)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		notFound("while it was replayed", d, <-replayed)

		// Pruning in progress, held at the delivery's attempts.
		d = of(events[2], rule1)
		if err := db.Model(&models.Delivery{}).Where("id = ?", d.ID).UpdateColumn("updated_at", time.Now().Add(-48*time.Hour)).Error; err != nil {
			t.Fatal(err)
		}
		pruned := make(chan error, 1)
		err = db.Transaction(func(tx *gorm.DB) error {
			lock := tx.Model(&models.DeliveryAttempt{}).Where("delivery_id = ?", d.ID)
			if db.Dialector.Name() == "mysql" {
				lock = lock.Clauses(clause.Locking{Strength: "UPDATE"})
			}
			var ids []uint64
			if err := lock.Pluck("id", &ids).Error; err != nil {
				return err
			}
			go func() { _, err := models.PruneDeliveries(e.ctx, db, time.Now().Add(-24*time.Hour)); pruned <- err }()
			waitForStatement(t, db, "automation_attempts", nil)
			var done <-chan struct{}
			replayed, done = e.replayAsync(d)
			waitForStatement(t, db, "automation_deliveries", done)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := <-pruned; err != nil {
			t.Fatal(err)
		}
		if err := <-replayed; err == nil {
			var kept models.Delivery
			if err := db.Take(&kept, d.ID).Error; err != nil || kept.Status != models.DeliveryPending {
				t.Fatalf("the replay was answered, then pruned: %v, status %q", err, kept.Status)
			}
		} else {
			notFound("by pruning", d, err)
		}

		// Deleted before the replay: by an erasure, with the action, with the rule.
		d = of(events[0], rule1)
		if _, err := models.EraseLead(e.ctx, db, e.owner, e.app.PublicID, "erase-me@example.com"); err != nil {
			t.Fatal(err)
		}
		_, err = e.replay(d)
		notFound("by an erasure", d, err)
		d = of(events[3], rule2)
		if _, err := models.DeleteAutomationActionFor(e.ctx, db, e.owner, e.app.PublicID, models.FormatID(rule2.Secrets[0].Action.ID)); err != nil {
			t.Fatal(err)
		}
		_, err = e.replay(d)
		notFound("with its action", d, err)
		d = of(events[3], rule1)
		if _, err := models.DeleteAutomationRuleFor(e.ctx, db, e.owner, e.app.PublicID, models.FormatID(rule1.Rule.ID)); err != nil {
			t.Fatal(err)
		}
		_, err = e.replay(d)
		notFound("with its rule", d, err)
	})
}
