package models_test

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/crumbs-dev/crumbs/models"
	"github.com/crumbs-dev/crumbs/models/modelstest"
	"gorm.io/gorm"
)

// closedAddr is a loopback address where nothing listens.
func closedAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// credentials are the parts of the URLs TestTransportErrorsHideTheURL
// delivers to that must never be shown.
var credentials = []string{"services", "T0SECRET", "XXXXSECRETXXXX", "catch", "123456", "abcdef", "tok-secret", "3f2a9c4e", "k-secret"}

func showsCredential(t *testing.T, what, text string) {
	t.Helper()
	for _, c := range credentials {
		if strings.Contains(text, c) {
			t.Errorf("%s shows %q: %q", what, c, text)
		}
	}
}

// Transport errors name the URL they failed on (Go's *url.Error prints it
// whole, `Post "https://hooks.slack.com/services/…": dial tcp …`), and a
// receiver's error page may echo the path (Express answers "Cannot POST
// /path"); a Slack webhook's path and a CRM URL's path or query are its
// credentials, so the delivery log and a test delivery's answer show the
// URL's scheme and host only, whatever failed: a refused connection, the
// URL guard at send time, or an HTTP error.
func TestTransportErrorsHideTheURL(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *gorm.DB) {
		e := newAutomationEnv(t, db, models.DispatcherOptions{Backoff: time.Hour})
		closed := closedAddr(t)
		echo := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusNotFound)
			w.Write([]byte("Cannot POST " + r.URL.RequestURI() + " (" + r.Host + r.URL.Path + ")"))
		}))
		t.Cleanup(echo.Close)
		e.define("signup")
		e.matcher("Signups", "signup")
		created := e.rule("Everywhere", "Signups", false,
			models.AutomationActionInput{Kind: ptr(models.ActionSlack), URL: ptr("http://" + closed + "/services/T0SECRET/B0/XXXXSECRETXXXX")},
			webhookTo("http://"+closed+"/hooks/catch/123456/abcdef/?token=tok-secret"),
			webhookTo(echo.URL+"/webhook/3f2a9c4e-0b1d?key=k-secret"))
		e.mustTrigger(models.TriggerInput{Secret: e.secret, Code: "signup", DeviceID: "d-1"})
		waitFor(t, "three failed attempts", func() bool { return len(e.deliveries(models.DeliveryRetrying)) == 3 })

		for _, d := range e.deliveries("") {
			showsCredential(t, "lastError", d.LastError)
			if d.ActionID != created.Secrets[2].Action.ID && !strings.Contains(d.LastError, `"http://`+closed+`"`) {
				t.Errorf("lastError %q does not name the host", d.LastError)
			}
		}
		var attempts []models.DeliveryAttempt
		if err := db.Where("app_id = ?", e.app.ID).Find(&attempts).Error; err != nil {
			t.Fatal(err)
		}
		if len(attempts) != 3 {
			t.Fatalf("%d attempts, want 3", len(attempts))
		}
		for _, a := range attempts {
			showsCredential(t, "an attempt's error", a.Error)
		}

		for _, s := range created.Secrets {
			res, err := e.dispatcher.SendTestDeliveryFor(e.ctx, e.owner, e.app.PublicID, models.FormatID(s.Action.ID))
			if err != nil {
				t.Fatal(err)
			}
			if res.Error == "" {
				t.Fatalf("test delivery to %s did not fail", s.Action.URLHint())
			}
			showsCredential(t, "a test delivery's error", res.Error)
			showsCredential(t, "a test delivery's response body", res.ResponseBody)
		}

		// The URL guard refuses the address when connecting.
		strict := models.NewDispatcher(db, models.DispatcherOptions{Poll: time.Hour})
		t.Cleanup(strict.Close)
		res, err := strict.SendTestDeliveryFor(e.ctx, e.owner, e.app.PublicID, models.FormatID(created.Secrets[0].Action.ID))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(res.Error, "refused") {
			t.Fatalf("the strict guard answered %q", res.Error)
		}
		showsCredential(t, "a refused test delivery's error", res.Error)
	})
}

// Webhook URLs hold their credentials in the path as often as in the
// query: the hint shows the path's segments that read as words, up to the
// first that does not; that one and the rest are hidden, with their last
// two characters when they have 12 or more.
func TestURLHintHidesCredentials(t *testing.T) {
	for _, c := range []struct{ kind, url, hint string }{
		// Zapier: /hooks/catch/<account>/<key>/, keys of letters and digits or letters only.
		{"webhook", "https://hooks.zapier.com/hooks/catch/123456/abcdef/", "https://hooks.zapier.com/hooks/catch/…/…/"},
		{"webhook", "https://hooks.zapier.com/hooks/catch/2749130/o8rk5xu/", "https://hooks.zapier.com/hooks/catch/…/…/"},
		// Make: a 32-character key as the whole path.
		{"webhook", "https://hook.eu1.make.com/ab12cd34ef56gh78ij90kl12mn34op56", "https://hook.eu1.make.com/…56"},
		// n8n: a UUID, or a path its user chose.
		{"webhook", "https://n8n.example.com/webhook/3f2a9c4e-0b1d-4e8f-9a7b-6c5d4e3f2a1b", "https://n8n.example.com/webhook/…1b"},
		{"webhook", "https://n8n.example.com/webhook-test/new-lead", "https://n8n.example.com/webhook-test/new-lead"},
		// Discord: /api/webhooks/<id>/<token>.
		{"webhook", "https://discord.com/api/webhooks/1234567890123456789/AbCdEf-GhIjKl_MnOpQrStUvWxYz0123456789abcdefghijklmnop_qrstuvwxyzABCD",
			"https://discord.com/api/webhooks/…89/…CD"},
		// IFTTT: the key last, after the event's name.
		{"webhook", "https://maker.ifttt.com/trigger/new_lead/with/key/dAbCdEfGhIjKlMnOpQrStU", "https://maker.ifttt.com/trigger/new_lead/with/key/…tU"},
		// Microsoft Teams: ids and a key in mixed case.
		{"webhook", "https://contoso.webhook.office.com/webhookb2/7a1f0c2e-1111-2222-3333-444455556666@0d9e8f7a-aaaa-bbbb-cccc-ddddeeeeffff/IncomingWebhook/0123456789abcdef0123456789abcdef/9f8e7d6c-5b4a-3928-1706-f5e4d3c2b1a0",
			"https://contoso.webhook.office.com/…/…ff/…ok/…ef/…a0"},
		// Google Chat: a space id, then a key and a token in the query.
		{"webhook", "https://chat.googleapis.com/v1/spaces/AAAAbcdEfgh/messages?key=AIzaSy&token=tok", "https://chat.googleapis.com/v1/spaces/…/…?…"},
		// A CRM's own endpoint reads in full; its query does not.
		{"webhook", "https://crm.example.com/api/v2/webhooks/crumbs", "https://crm.example.com/api/v2/webhooks/crumbs"},
		{"webhook", "https://crm.example.com/hooks/crumbs?api_key=sk_live_42", "https://crm.example.com/hooks/crumbs?…"},
		{"webhook", "https://api.example.com/automation/v4/webhook-triggers/12345/abcDEF", "https://api.example.com/automation/v4/webhook-triggers/…/…"},
		// Long, mixed-case or escaped segments may be keys too.
		{"webhook", "https://x.example/notificationsforcrumbs", "https://x.example/…bs"},
		{"webhook", "https://x.example/Hooks/crumbs", "https://x.example/…/…"},
		{"webhook", "https://x.example/hooks/%7Btoken%7D", "https://x.example/hooks/…"},
		{"webhook", "https://x.example", "https://x.example"},
		{"webhook", "https://x.example/", "https://x.example/"},
		{"webhook", "http://127.0.0.1:8080/hook", "http://127.0.0.1:8080/hook"},
		// Slack: the path is the credential; the host alone is shown.
		{"slack", "https://hooks.slack.com/services/T0000/B0000/XXXXXXXXXXXXXXXXXXXXXXXX", "https://hooks.slack.com/…"},
	} {
		a := &models.AutomationAction{Kind: c.kind, URL: c.url}
		if got := a.URLHint(); got != c.hint {
			t.Errorf("URLHint(%s)\n got %s\nwant %s", c.url, got, c.hint)
		}
	}
}

// Every secret rotated out signs deliveries for a day after its rotation,
// not only the last one: a receiver still on the first secret verifies
// after two rotations. A fourth rotation within the day drops the oldest
// of the three kept. The API shows when each expires, never the secrets.
func TestRotationsKeepEachRetiredSecretForADay(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *gorm.DB) {
		e := newAutomationEnv(t, db, models.DispatcherOptions{})
		recv := newReceiver(t, nil)
		e.define("signup")
		e.matcher("Signups", "signup")
		created := e.rule("Hook", "Signups", false, webhookTo(recv.URL))
		id := models.FormatID(created.Secrets[0].Action.ID)
		secrets := []string{created.Secrets[0].Secret}
		rotate := func() *models.AutomationAction {
			t.Helper()
			before := time.Now()
			got, err := models.RotateActionSecretFor(e.ctx, db, e.owner, e.app.PublicID, id)
			if err != nil {
				t.Fatal(err)
			}
			secrets = append(secrets, got.Secret)
			for _, until := range got.Action.RetiredSecretExpiries() {
				if until.Before(before.Add(24*time.Hour-time.Second)) || until.After(time.Now().Add(24*time.Hour)) {
					t.Fatalf("a retired secret expires at %s, not a day after its rotation", until)
				}
			}
			return got.Action
		}
		// deliver triggers an event and answers which secrets its signatures verify by.
		deliver := func() []bool {
			t.Helper()
			n := len(recv.requests())
			e.mustTrigger(models.TriggerInput{Secret: e.secret, Code: "signup", DeviceID: "d-1"})
			waitFor(t, "the delivery", func() bool { return len(recv.requests()) > n })
			r := recv.requests()[n]
			if got := len(strings.Fields(r.header.Get("webhook-signature"))); got > 4 {
				t.Fatalf("%d signatures", got)
			}
			out := make([]bool, len(secrets))
			for i, s := range secrets {
				out[i] = verifySignature(s, r)
			}
			return out
		}
		want := func(got []bool, want ...bool) {
			t.Helper()
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("after %d rotations, verified by %v, want %v", len(secrets)-1, got, want)
			}
		}

		want(deliver(), true)
		rotate()
		want(deliver(), true, true)
		a := rotate()
		want(deliver(), true, true, true)
		if n := len(a.RetiredSecretExpiries()); n != 2 {
			t.Fatalf("%d retired secrets shown after two rotations", n)
		}
		rotate()
		want(deliver(), true, true, true, true)
		a = rotate()
		want(deliver(), false, true, true, true, true)
		expiries := a.RetiredSecretExpiries()
		if len(expiries) != 3 || !expiries[0].Before(expiries[1]) || !expiries[1].Before(expiries[2]) {
			t.Fatalf("retired secrets expire at %v, want 3, oldest first", expiries)
		}
		// The action as read back, as the API shows it.
		rules, err := models.AutomationRulesFor(e.ctx, db, e.owner, e.app.PublicID)
		if err != nil {
			t.Fatal(err)
		}
		acts, err := models.ActionsOfRules(e.ctx, db, []uint64{rules[0].ID})
		if err != nil {
			t.Fatal(err)
		}
		if got := acts[rules[0].ID][0].RetiredSecretExpiries(); fmt.Sprint(got) != fmt.Sprint(expiries) {
			t.Fatalf("stored expiries %v, want %v", got, expiries)
		}
	})
}

// Rotations at once (two editors, a retried request) each keep the secret
// the one before made: every secret handed out signs, none is lost to a
// read-modify-write race.
func TestConcurrentRotationsKeepEverySecret(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *gorm.DB) {
		e := newAutomationEnv(t, db, models.DispatcherOptions{})
		e.define("signup")
		e.matcher("Signups", "signup")
		created := e.rule("Hook", "Signups", false, webhookTo("http://127.0.0.1:9/hook"))
		action := created.Secrets[0].Action
		for round := range 5 {
			got := make([]string, 3)
			var wg sync.WaitGroup
			for i := range got {
				wg.Add(1)
				go func() {
					defer wg.Done()
					r, err := models.RotateActionSecretFor(e.ctx, db, e.owner, e.app.PublicID, models.FormatID(action.ID))
					if err != nil {
						t.Error(err)
						return
					}
					got[i] = r.Secret
				}()
			}
			wg.Wait()
			acts, err := models.ActionsByID(e.ctx, db, []uint64{action.ID})
			if err != nil {
				t.Fatal(err)
			}
			a := acts[action.ID]
			signing := []string{a.Secret}
			for _, r := range a.RetiredSecrets {
				signing = append(signing, r.Secret)
			}
			for _, s := range got {
				if !slices.Contains(signing, s) {
					t.Fatalf("round %d: a secret handed out does not sign (signing %d secrets)", round, len(signing))
				}
			}
		}
	})
}
