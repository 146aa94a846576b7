package models_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/crumbs-dev/crumbs/models"
	"github.com/crumbs-dev/crumbs/models/modelstest"
)

// warnLog records the warnings a dispatcher logs.
type warnLog struct {
	mu  sync.Mutex
	got []slog.Record
}

func (l *warnLog) Enabled(_ context.Context, lv slog.Level) bool { return lv >= slog.LevelWarn }
func (l *warnLog) Handle(_ context.Context, r slog.Record) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.got = append(l.got, r.Clone())
	return nil
}
func (l *warnLog) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l *warnLog) WithGroup(string) slog.Handler      { return l }

// Every committed matching event is delivered, with its fixed webhook-id,
// after the store went away (stopped: connections reset and refused; then
// frozen: connections hang) while its deliveries were due; the dispatcher
// logs the fault, each message at most once a second.
func TestAutomationDeliversAcrossStoreRestart(t *testing.T) {
	modelstest.MySQL(t) // migrated
	proxy, dsn := modelstest.ProxiedMySQL(t)
	db, err := models.Open(context.Background(), dsn, models.DBOptions{Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if sqlDB, err := db.DB(); err == nil {
			sqlDB.Close()
		}
	})
	warns := &warnLog{}
	e := newAutomationEnv(t, db, models.DispatcherOptions{Log: slog.New(warns), Timeout: 2 * time.Second})
	var down sync.Mutex // held while the store is away: the receiver refuses until it is back
	var okMu sync.Mutex
	ok := map[string]int{} // webhook-id -> requests answered 200
	var recv *receiver
	recv = newReceiver(t, func(n int, w http.ResponseWriter) {
		if !down.TryLock() {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		down.Unlock()
		okMu.Lock()
		ok[recv.requests()[n].header.Get("webhook-id")]++
		okMu.Unlock()
	})
	e.define("order")
	e.matcher("Orders", "order")
	created := e.rule("To CRM", "Orders", false, webhookTo(recv.URL))
	actionID := created.Secrets[0].Action.ID

	faults := []struct {
		name         string
		break_, mend func()
	}{
		{"stopped", proxy.Stop, proxy.Start},
		{"frozen", proxy.Freeze, proxy.Thaw},
	}
	var want []string
	for _, f := range faults {
		// Committed, then the store goes away while their deliveries are due
		// (created, or still to be created by the event log consumer).
		down.Lock()
		for i := range 5 {
			res := e.mustTrigger(models.TriggerInput{Secret: e.secret, Code: "order", DeviceID: f.name + "-" + strconv.Itoa(i)})
			want = append(want, fmt.Sprintf("msg_%d_%d", res.EventID, actionID))
		}
		f.break_()
		time.Sleep(3 * time.Second) // polls, claims and the event log consumer all fail meanwhile
		f.mend()
		down.Unlock()
		waitFor(t, "every delivery after the store "+f.name, func() bool {
			okMu.Lock()
			defer okMu.Unlock()
			for _, id := range want {
				if ok[id] == 0 {
					return false
				}
			}
			return true
		})
	}
	for _, r := range recv.requests() {
		found := false
		for _, id := range want {
			found = found || r.header.Get("webhook-id") == id
		}
		if !found {
			t.Fatalf("unexpected webhook-id %q", r.header.Get("webhook-id"))
		}
	}
	waitFor(t, "every delivery recorded as succeeded", func() bool { return len(e.deliveries(models.DeliverySucceeded)) == len(want) })
	t.Logf("%d events: %d requests, %d webhook-ids answered 200", len(want), len(recv.requests()), len(ok))

	warns.mu.Lock()
	defer warns.mu.Unlock()
	last := map[string]time.Time{}
	for _, r := range warns.got {
		if prev, ok := last[r.Message]; ok && r.Time.Sub(prev) < time.Second {
			t.Fatalf("%q logged twice within %v", r.Message, r.Time.Sub(prev))
		}
		last[r.Message] = r.Time
	}
	if len(warns.got) == 0 {
		t.Fatal("the store fault was not logged")
	}
	for _, r := range warns.got {
		t.Logf("logged: %s", r.Message)
	}
}
