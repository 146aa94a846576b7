package models_test

import (
	"net/http"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/crumbs-dev/crumbs/models"
	"github.com/crumbs-dev/crumbs/models/modelstest"
	"gorm.io/gorm"
)

// A receiver's error answer is kept as the delivery's last error, cut to
// 400 bytes. The cut fell inside a character when the answer was not
// ASCII, and MariaDB refuses text that is not UTF-8, so the attempt's
// outcome was not stored there and the delivery was attempted again and
// again; SQLite stored the broken text.
func TestDeliveryErrorTextStaysUTF8(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *gorm.DB) {
		e := newAutomationEnv(t, db, models.DispatcherOptions{MaxAttempts: 2})
		// "HTTP 500: " and an odd byte, then two-byte letters: byte 400
		// falls inside one.
		body := "x" + strings.Repeat("é", 300)
		recv := newReceiver(t, func(_ int, w http.ResponseWriter) {
			w.WriteHeader(500)
			w.Write([]byte(body))
		})
		e.define("buy")
		e.matcher("Buys", "buy")
		e.rule("Failing", "Buys", false, webhookTo(recv.URL))
		e.mustTrigger(models.TriggerInput{Secret: e.secret, Code: "buy", DeviceID: "d-1"})
		waitFor(t, "the delivery to be dead-lettered", func() bool { return len(e.deliveries(models.DeliveryDead)) == 1 })
		d := e.deliveries(models.DeliveryDead)[0]
		if !utf8.ValidString(d.LastError) || !strings.HasPrefix(d.LastError, "HTTP 500: x") || len(d.LastError) > 400+len("…") {
			t.Fatalf("last error %q", d.LastError)
		}
		if n := len(recv.requests()); n != 2 {
			t.Fatalf("the receiver got %d attempts, want 2", n)
		}
	})
}
