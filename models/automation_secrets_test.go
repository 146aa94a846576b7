package models_test

import (
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
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
