package models_test

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/crumbs-dev/crumbs/models"
	"github.com/crumbs-dev/crumbs/models/modelstest"
	"gorm.io/gorm"
)

// hungUp is a test receiver that counts its requests and the ones whose
// client hung up on it before it finished.
type hungUp struct {
	*httptest.Server
	requests, hungUp atomic.Int32
}

func newHungUp(t *testing.T, answer func(w http.ResponseWriter, r *http.Request)) *hungUp {
	h := &hungUp{}
	stop := make(chan struct{})
	h.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.requests.Add(1)
		io.Copy(io.Discard, r.Body) // then the server notices a hang-up, and cancels r's context
		answer(w, r)
		select {
		case <-r.Context().Done():
			h.hungUp.Add(1)
		case <-stop:
		}
	}))
	t.Cleanup(func() { close(stop); h.Close() })
	return h
}

// Each attempt is bounded, as issue #12 asks: 10 s by default (here a
// shorter timeout, so that the test runs fast), and a capped read of the
// answer. A receiver that never answers fails the attempt at the timeout;
// one that answers a 64 MiB body has only its start read, and at most 400
// characters of it stored; one that trickles its body forever is cut off
// at the timeout.
func TestAttemptTimeoutAndCappedAnswer(t *testing.T) {
	if got := (models.DispatcherOptions{}).WithDefaults().Timeout; got != 10*time.Second {
		t.Fatalf("the default attempt timeout is %v, want 10s", got)
	}
	modelstest.Each(t, func(t *testing.T, db *gorm.DB) {
		const timeout = 300 * time.Millisecond
		e := newAutomationEnv(t, db, models.DispatcherOptions{Timeout: timeout, Backoff: time.Hour})
		silent := newHungUp(t, func(http.ResponseWriter, *http.Request) {})
		const huge = 64 << 20
		var written atomic.Int64
		chatty := newHungUp(t, func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusInternalServerError)
			chunk := bytes.Repeat([]byte("x"), 32<<10)
			for written.Load() < huge {
				n, err := w.Write(chunk)
				written.Add(int64(n))
				if err != nil {
					return
				}
			}
		})
		trickle := newHungUp(t, func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusOK)
			for {
				if _, err := w.Write([]byte("x")); err != nil {
					return
				}
				w.(http.Flusher).Flush()
				select {
				case <-r.Context().Done():
					return
				case <-time.After(20 * time.Millisecond):
				}
			}
		})
		e.define("signup")
		e.matcher("Signups", "signup")
		toSilent := e.rule("Silent", "Signups", false, webhookTo(silent.URL))
		toChatty := e.rule("Chatty", "Signups", false, webhookTo(chatty.URL))
		toTrickle := e.rule("Trickle", "Signups", false, webhookTo(trickle.URL))
		e.mustTrigger(models.TriggerInput{Secret: e.secret, Code: "signup", DeviceID: "d-1"})

		byRule := map[uint64]*models.Delivery{}
		waitFor(t, "an attempt of each delivery", func() bool {
			for _, d := range e.deliveries("") {
				byRule[d.RuleID] = d
			}
			for _, d := range byRule {
				if d.Attempts == 0 {
					return false
				}
			}
			return len(byRule) == 3
		})

		// Never answered: failed at the timeout (whichever of the client's,
		// the response header's or the context's fires first), no status,
		// to be retried.
		d := byRule[toSilent.Rule.ID]
		if d.Status != models.DeliveryRetrying || d.Attempts != 1 || d.LastStatusCode != 0 ||
			!strings.Contains(strings.ToLower(d.LastError), "timeout") && !strings.Contains(d.LastError, "deadline exceeded") {
			t.Fatalf("the attempt to a receiver that never answers: %+v", d)
		}
		if d.LastLatencyMs < timeout.Milliseconds() {
			t.Fatalf("the attempt to a receiver that never answers gave up after %d ms, before the %v timeout", d.LastLatencyMs, timeout)
		}
		waitFor(t, "the silent receiver to see the attempt end", func() bool { return silent.hungUp.Load() == 1 })

		// A huge answer: its start is read and stored, capped; the rest is
		// never read, and the connection is closed.
		d = byRule[toChatty.Rule.ID]
		if d.Status != models.DeliveryRetrying || d.LastStatusCode != 500 || !strings.HasPrefix(d.LastError, "HTTP 500: xxx") ||
			len(d.LastError) > 400+len("…") {
			t.Fatalf("the attempt to a receiver answering %d bytes: status %s, code %d, error of %d bytes", huge, d.Status, d.LastStatusCode, len(d.LastError))
		}
		waitFor(t, "the chatty receiver to be hung up on", func() bool { return chatty.hungUp.Load() == 1 })
		if n := written.Load(); n >= huge {
			t.Fatalf("the receiver wrote all %d bytes of its answer", n)
		}
		t.Logf("the chatty receiver wrote %d KiB of its %d MiB before the dispatcher hung up", written.Load()>>10, huge>>20)
		// A test delivery reads as little, and shows at most 1,000 bytes.
		written.Store(0)
		test, err := e.dispatcher.SendTestDeliveryFor(e.ctx, e.owner, e.app.PublicID, models.FormatID(toChatty.Secrets[0].Action.ID))
		if err != nil {
			t.Fatal(err)
		}
		if test.StatusCode != 500 || !strings.HasPrefix(test.ResponseBody, "xxx") || len(test.ResponseBody) > 1000+len("…") {
			t.Fatalf("test delivery to a receiver answering %d bytes: code %d, body of %d bytes", huge, test.StatusCode, len(test.ResponseBody))
		}
		waitFor(t, "the chatty receiver to be hung up on again", func() bool { return chatty.hungUp.Load() == 2 })
		if n := written.Load(); n >= huge {
			t.Fatalf("the receiver wrote all %d bytes of its answer to the test delivery", n)
		}

		// A body trickling forever: the attempt ends at the timeout. The
		// receiver had answered 200, so the delivery is done.
		d = byRule[toTrickle.Rule.ID]
		if d.Status != models.DeliverySucceeded || d.LastStatusCode != 200 || d.LastLatencyMs < timeout.Milliseconds() {
			t.Fatalf("the attempt to a receiver trickling its answer: %+v", d)
		}
		waitFor(t, "the trickling receiver to be hung up on", func() bool { return trickle.hungUp.Load() == 1 })
		for _, r := range []*hungUp{silent, chatty, trickle} {
			if n := r.requests.Load(); n > 2 {
				t.Fatalf("%s got %d requests", r.URL, n)
			}
		}
	})
}
