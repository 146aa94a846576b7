package models_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

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
