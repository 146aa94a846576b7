package models_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/crumbs-dev/crumbs/models"
	"github.com/crumbs-dev/crumbs/models/modelstest"
	"gorm.io/gorm"
)

// otherWriter is a second caller's write that commits right after the
// call made with ctx first reads a row of a table: the moment at which a
// read-then-save update would later write its stale copy of that row back
// over the write. A read that already holds the row's lock (one inside a
// transaction) makes the write wait for the call's commit, so then the
// write runs beside the call, and finish waits for it. No timing decides
// the order.
type otherWriter struct {
	t     *testing.T
	ctx   context.Context
	fired atomic.Bool
	done  chan error
}

type otherWriterKey struct{}

// interleave registers an otherWriter on db, which must be a handle of the
// test's own (reopen): registering is not safe beside running queries.
func interleave(t *testing.T, db *gorm.DB, table string, write func(ctx context.Context) error) *otherWriter {
	t.Helper()
	w := &otherWriter{t: t, done: make(chan error, 1)}
	w.ctx = context.WithValue(context.Background(), otherWriterKey{}, w)
	err := db.Callback().Query().After("gorm:query").Register("test:other-writer", func(tx *gorm.DB) {
		if tx.Statement.Table != table || tx.Statement.Context.Value(otherWriterKey{}) != w || !w.fired.CompareAndSwap(false, true) {
			return
		}
		if _, inTx := tx.Statement.ConnPool.(gorm.TxCommitter); inTx {
			go func() { w.done <- write(context.Background()) }()
			return
		}
		w.done <- write(context.Background())
	})
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// finish waits for the other write, which must have run.
func (w *otherWriter) finish() {
	w.t.Helper()
	if !w.fired.Load() {
		w.t.Fatal("the call never read the row: the other writer did not run")
	}
	if err := <-w.done; err != nil {
		w.t.Fatalf("the other writer: %v", err)
	}
}

// A matcher's rules edited while someone renames it: both stay.
func TestUpdateEventMatcherKeepsAConcurrentEdit(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, shared *gorm.DB) {
		db := reopen(t, shared)
		var tg target
		w := interleave(t, db, "event_matchers", func(ctx context.Context) error {
			_, err := models.UpdateEventMatcherFor(ctx, db, tg.owner, tg.app, tg.id, models.EventMatcherInput{Name: ptr("Orders renamed")})
			return err
		})
		e := newAutomationEnv(t, db, models.DispatcherOptions{})
		e.matcher("Orders", "order")
		m := storedMatcher(t, db, e.app.ID, "Orders")
		tg = newTarget(e, models.FormatID(m.ID))
		rules := []models.Rule{{Field: "url", Operator: models.OpContains, Value: "/pricing"}}
		if _, err := models.UpdateEventMatcherFor(w.ctx, db, e.owner, e.app.PublicID, models.FormatID(m.ID), models.EventMatcherInput{Rules: rules}); err != nil {
			t.Fatal(err)
		}
		w.finish()
		got := storedMatcher(t, db, e.app.ID, "Orders renamed")
		if got.Code != "order" || len(got.Rules) != 1 || got.Rules[0].Value != "/pricing" {
			t.Fatalf("matcher %+v; want the rename and the new rules both", got)
		}
	})
}

// A goal renamed while someone changes its window: both stay.
func TestUpdateGoalKeepsAConcurrentEdit(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, shared *gorm.DB) {
		db := reopen(t, shared)
		var tg target
		w := interleave(t, db, "goals", func(ctx context.Context) error {
			_, err := models.UpdateGoalFor(ctx, db, tg.owner, tg.app, tg.id, models.GoalInput{Window: ptr(time.Hour)})
			return err
		})
		e := newAutomationEnv(t, db, models.DispatcherOptions{})
		e.matcher("Start", "start")
		e.matcher("Done", "done")
		g, err := models.CreateGoalFor(e.ctx, db, e.owner, e.app.PublicID, models.GoalInput{Name: ptr("Signups"), StartMatcher: ptr("Start"), CompletionMatcher: ptr("Done")})
		if err != nil {
			t.Fatal(err)
		}
		tg = newTarget(e, models.FormatID(g.ID))
		if _, err := models.UpdateGoalFor(w.ctx, db, e.owner, e.app.PublicID, models.FormatID(g.ID), models.GoalInput{Name: ptr("Paid signups")}); err != nil {
			t.Fatal(err)
		}
		w.finish()
		var got models.Goal
		if err := db.Take(&got, g.ID).Error; err != nil {
			t.Fatal(err)
		}
		if got.Name != "Paid signups" || got.WindowSeconds != 3600 {
			t.Fatalf("goal %q with a %d s window; want \"Paid signups\" and 3600 s", got.Name, got.WindowSeconds)
		}
	})
}

// A rule renamed while someone switches it off: it stays off.
func TestUpdateAutomationRuleKeepsAConcurrentEdit(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, shared *gorm.DB) {
		db := reopen(t, shared)
		var tg target
		w := interleave(t, db, "automation_rules", func(ctx context.Context) error {
			_, err := models.UpdateAutomationRuleFor(ctx, db, tg.owner, tg.app, tg.id, models.AutomationRuleInput{Enabled: ptr(false)})
			return err
		})
		e := newAutomationEnv(t, db, models.DispatcherOptions{})
		e.matcher("Orders", "order")
		created := e.rule("To CRM", "Orders", false, webhookTo("http://127.0.0.1:9/crm"))
		id := models.FormatID(created.Rule.ID)
		tg = newTarget(e, id)
		if _, err := models.UpdateAutomationRuleFor(w.ctx, db, e.owner, e.app.PublicID, id, models.AutomationRuleInput{Name: ptr("Orders to CRM"), IdentifiedOnly: ptr(true)}); err != nil {
			t.Fatal(err)
		}
		w.finish()
		got, err := models.AutomationRuleFor(e.ctx, db, e.owner, e.app.PublicID, id)
		if err != nil {
			t.Fatal(err)
		}
		if got.Enabled || got.Name != "Orders to CRM" || !got.IdentifiedOnly {
			t.Fatalf("rule %q enabled=%v identifiedOnly=%v; want renamed, identified only, and off", got.Name, got.Enabled, got.IdentifiedOnly)
		}
	})
}

// An action edited while its receiver's 410 Gone disables it stays
// disabled: the edit does not switch back on what the receiver said is gone.
func TestUpdateAutomationActionKeepsA410(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, shared *gorm.DB) {
		db := reopen(t, shared)
		var tg target
		w := interleave(t, db, "automation_actions", func(ctx context.Context) error {
			// As the dispatcher records a 410 (disableGone).
			now := models.Now()
			return db.WithContext(ctx).Model(&models.AutomationAction{}).Where("id = ? AND disabled_at IS NULL", tg.num).
				Updates(map[string]any{"disabled_at": now, "disabled_reason": "the receiver answered 410 Gone", "updated_at": now}).Error
		})
		e := newAutomationEnv(t, db, models.DispatcherOptions{})
		e.matcher("Orders", "order")
		created := e.rule("To CRM", "Orders", false, webhookTo("http://127.0.0.1:9/crm"))
		a := created.Secrets[0].Action
		tg = newTarget(e, models.FormatID(a.ID))
		url := "http://127.0.0.1:9/crm/v2"
		in := models.AutomationActionInput{URL: &url, Template: ptr("{{code}}")}
		if _, err := models.UpdateAutomationActionFor(w.ctx, db, e.owner, models.URLGuard{AllowPrivate: true}, e.app.PublicID, models.FormatID(a.ID), in); err != nil {
			t.Fatal(err)
		}
		w.finish()
		var got models.AutomationAction
		if err := db.Take(&got, a.ID).Error; err != nil {
			t.Fatal(err)
		}
		if got.Enabled() || got.DisabledReason != "the receiver answered 410 Gone" || got.URL != url || got.Template != "{{code}}" {
			t.Fatalf("action enabled=%v (%q), url %s, template %q; want the edit, and disabled by the 410", got.Enabled(), got.DisabledReason, got.URL, got.Template)
		}
	})
}

// An action moved to another origin while someone gives it headers is
// refused: its headers would go to an origin they were not saved for.
func TestUpdateAutomationActionChecksHeadersSavedMeanwhile(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, shared *gorm.DB) {
		db := reopen(t, shared)
		var tg target
		guard := models.URLGuard{AllowPrivate: true}
		headers := []models.Header{{Name: "Authorization", Value: "Bearer secret-for-crm-only"}}
		w := interleave(t, db, "automation_actions", func(ctx context.Context) error {
			_, err := models.UpdateAutomationActionFor(ctx, db, tg.owner, guard, tg.app, tg.id, models.AutomationActionInput{Headers: headers})
			return err
		})
		e := newAutomationEnv(t, db, models.DispatcherOptions{})
		e.matcher("Orders", "order")
		created := e.rule("To CRM", "Orders", false, webhookTo("http://127.0.0.1:9/crm"))
		a := created.Secrets[0].Action
		tg = newTarget(e, models.FormatID(a.ID))
		_, err := models.UpdateAutomationActionFor(w.ctx, db, e.owner, guard, e.app.PublicID, models.FormatID(a.ID), models.AutomationActionInput{URL: ptr("http://localhost:9/elsewhere")})
		w.finish()
		wantField(t, err, "input.headers")
		var got models.AutomationAction
		if err := db.Take(&got, a.ID).Error; err != nil {
			t.Fatal(err)
		}
		if got.URL != "http://127.0.0.1:9/crm" || len(got.Headers) != 1 || got.Headers[0].Value != headers[0].Value {
			t.Fatalf("action at %s with headers %+v; want the headers given, at the first origin", got.URL, got.Headers)
		}
	})
}

// target is what the other writer of a test edits, set once the test
// made it and before the call the other writer interleaves with.
type target struct {
	owner   models.Viewer
	app, id string
	num     uint64
}

func newTarget(e *automationEnv, id string) target {
	num, err := models.ParseID("id", id)
	if err != nil {
		e.t.Fatal(err)
	}
	return target{owner: e.owner, app: e.app.PublicID, id: id, num: num}
}

func storedMatcher(t *testing.T, db *gorm.DB, appID uint64, name string) *models.EventMatcher {
	t.Helper()
	var m models.EventMatcher
	if err := db.Where("app_id = ? AND name = ?", appID, name).Take(&m).Error; err != nil {
		t.Fatalf("matcher %q: %v", name, err)
	}
	return &m
}
