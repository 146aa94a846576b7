package models_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/crumbs-dev/crumbs/models"
	"github.com/crumbs-dev/crumbs/models/modelstest"
)

// A webhook's custom headers are refused at save when net/http could not
// send them (a name that is no HTTP token, a value with a control
// character) or when a name is given twice, so no saved action fails
// every delivery or silently drops one of its headers; what net/http
// accepts is saved and sent as given.
func TestWebhookHeadersAreSendable(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *gorm.DB) {
		e := newAutomationEnv(t, db, models.DispatcherOptions{})
		e.define("demo")
		e.matcher("Demos", "demo")
		created := e.rule("Headers", "Demos", false, webhookTo("https://crm.example/hooks"))
		actionID := models.FormatID(created.Secrets[0].Action.ID)
		update := func(hs ...models.Header) error {
			_, err := models.UpdateAutomationActionFor(e.ctx, e.db, e.owner, models.URLGuard{AllowPrivate: true}, e.app.PublicID, actionID,
				models.AutomationActionInput{Headers: hs})
			return err
		}
		for _, c := range []struct {
			name    string
			headers []models.Header
			field   string
		}{
			{"a name with a parenthesis", []models.Header{{Name: "X-Key(1)", Value: "v"}}, "input.headers.0.name"},
			{"a name with a NUL", []models.Header{{Name: "X-Key\x00", Value: "v"}}, "input.headers.0.name"},
			{"a name that is not ASCII", []models.Header{{Name: "X-Clé", Value: "v"}}, "input.headers.0.name"},
			{"a value with a NUL", []models.Header{{Name: "X-Api-Key", Value: "ab\x00cd"}}, "input.headers.0.value"},
			{"a value with DEL", []models.Header{{Name: "X-Api-Key", Value: "ab\x7fcd"}}, "input.headers.0.value"},
			{"a value with a newline", []models.Header{{Name: "X-Api-Key", Value: "ab\ncd"}}, "input.headers.0.value"},
			{"a name given twice", []models.Header{{Name: "X-Api-Key", Value: "a"}, {Name: "x-api-key", Value: "b"}}, "input.headers.1.name"},
			{"a reserved name", []models.Header{{Name: "webhook-signature", Value: "v1,x"}}, "input.headers.0.name"},
		} {
			err := update(c.headers...)
			if err == nil {
				t.Errorf("%s: saved", c.name)
				continue
			}
			wantField(t, err, c.field)
		}

		got := make(chan http.Header, 1)
		recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			select {
			case got <- r.Header.Clone():
			default:
			}
		}))
		t.Cleanup(recv.Close)
		url := recv.URL + "/hooks"
		if _, err := models.UpdateAutomationActionFor(e.ctx, e.db, e.owner, models.URLGuard{AllowPrivate: true}, e.app.PublicID, actionID,
			models.AutomationActionInput{URL: &url, Headers: []models.Header{{Name: "x-api-key", Value: "crm_live_\tkey ünï"}, {Name: "Authorization", Value: "Bearer abc"}}}); err != nil {
			t.Fatal(err)
		}
		e.mustTrigger(models.TriggerInput{Secret: e.secret, Code: "demo", DeviceID: "d1"})
		h := <-got
		if h.Get("X-Api-Key") != "crm_live_\tkey ünï" || h.Get("Authorization") != "Bearer abc" {
			t.Fatalf("sent headers %v", h)
		}
	})
}

// A webhook's header values are never shown again once saved (the API
// shows a hint), so nobody of the app reads them through a receiver: not
// in the delivery log or a test delivery's answer when the receiver echoes
// them (viewers read the log), and not by moving the action to a server of
// their own, which needs the headers given again.
func TestHeaderValuesAreNotReadBack(t *testing.T) {
	const key, token = "crm_live_k3y_0001", "tok_abcdefgh_0002"
	modelstest.Each(t, func(t *testing.T, db *gorm.DB) {
		e := newAutomationEnv(t, db, models.DispatcherOptions{Backoff: time.Hour})
		var sentKey atomic.Value
		echo := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			sentKey.Store(r.Header.Get("X-Api-Key"))
			w.WriteHeader(http.StatusUnauthorized)
			fmt.Fprintf(w, "invalid API key %s (with %s)", r.Header.Get("X-Api-Key"), r.Header.Get("Authorization"))
		}))
		t.Cleanup(echo.Close)
		e.define("demo")
		e.matcher("Demos", "demo")
		created := e.rule("Echo", "Demos", false, webhookTo(echo.URL+"/hooks",
			models.Header{Name: "X-Api-Key", Value: key}, models.Header{Name: "Authorization", Value: "Bearer " + token}))
		actionID := models.FormatID(created.Secrets[0].Action.ID)
		hidden := func(what, text string) {
			t.Helper()
			if !strings.Contains(text, "invalid API key") {
				t.Errorf("%s %q is not the receiver's answer", what, text)
			}
			if strings.Contains(text, key) || strings.Contains(text, token) {
				t.Errorf("%s shows a header's value: %q", what, text)
			}
		}

		e.mustTrigger(models.TriggerInput{Secret: e.secret, Code: "demo", DeviceID: "d1"})
		waitFor(t, "a failed attempt", func() bool { return len(e.deliveries(models.DeliveryRetrying)) == 1 })
		hidden("lastError", e.deliveries("")[0].LastError)
		var attempts []models.DeliveryAttempt
		if err := db.Where("app_id = ?", e.app.ID).Find(&attempts).Error; err != nil || len(attempts) != 1 {
			t.Fatalf("attempts %v %v", attempts, err)
		}
		hidden("an attempt's error", attempts[0].Error)
		res, err := e.dispatcher.SendTestDeliveryFor(e.ctx, e.owner, e.app.PublicID, actionID)
		if err != nil {
			t.Fatal(err)
		}
		hidden("a test delivery's error", res.Error)
		hidden("a test delivery's response body", res.ResponseBody)
		if got, _ := sentKey.Load().(string); got != key {
			t.Fatalf("the receiver got X-Api-Key %q", got)
		}

		// Another origin needs the headers again; the same origin keeps them.
		elsewhere := newReceiver(t, nil)
		update := func(in models.AutomationActionInput) (*models.AutomationAction, error) {
			return models.UpdateAutomationActionFor(e.ctx, e.db, models.Viewer{Secret: e.secret}, models.URLGuard{AllowPrivate: true}, e.app.PublicID, actionID, in)
		}
		_, err = update(models.AutomationActionInput{URL: ptr(elsewhere.URL + "/hooks")})
		wantField(t, err, "input.headers")
		samePort := strings.Replace(echo.URL, "127.0.0.1", "localhost", 1) + "/hooks"
		_, err = update(models.AutomationActionInput{URL: &samePort})
		wantField(t, err, "input.headers")
		if _, err := e.dispatcher.SendTestDeliveryFor(e.ctx, e.owner, e.app.PublicID, actionID); err != nil {
			t.Fatal(err)
		}
		if n := len(elsewhere.requests()); n != 0 {
			t.Fatalf("the other origin got %d requests", n)
		}
		moved, err := update(models.AutomationActionInput{URL: ptr(echo.URL + "/v2/hooks")})
		if err != nil || len(moved.Headers) != 2 {
			t.Fatalf("moved on the same origin: %+v %v", moved, err)
		}
		moved, err = update(models.AutomationActionInput{URL: ptr(elsewhere.URL + "/hooks"), Headers: []models.Header{}})
		if err != nil || len(moved.Headers) != 0 {
			t.Fatalf("moved with no headers: %+v %v", moved, err)
		}
	})
}
