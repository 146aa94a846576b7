package models_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/crumbs-dev/crumbs/models"
	"github.com/crumbs-dev/crumbs/models/modelstest"
	"gorm.io/gorm"
)

// received is one request a test receiver got.
type received struct {
	at     time.Time
	header http.Header
	body   []byte
}

// receiver is an HTTP endpoint inside the test that records requests and
// answers what answer says for the n-th request (0-based).
type receiver struct {
	*httptest.Server
	mu     sync.Mutex
	got    []received
	answer func(n int, w http.ResponseWriter)
}

func newReceiver(t *testing.T, answer func(n int, w http.ResponseWriter)) *receiver {
	r := &receiver{answer: answer}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		n := len(r.got)
		r.got = append(r.got, received{at: time.Now(), header: req.Header.Clone(), body: body})
		r.mu.Unlock()
		if r.answer != nil {
			r.answer(n, w)
		}
	}))
	t.Cleanup(r.Close)
	return r
}

func (r *receiver) requests() []received {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]received(nil), r.got...)
}

// waitFor polls until cond holds, for up to 20 seconds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for range 400 {
		if cond() {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s", what)
}

// automationEnv is an app whose writer runs an automations consumer of its
// own name and a dispatcher with a short backoff.
type automationEnv struct {
	*env
	dispatcher *models.Dispatcher
}

func newAutomationEnv(t *testing.T, db *gorm.DB, opts models.DispatcherOptions) *automationEnv {
	t.Helper()
	e := newQuietEnv(t, db)
	opts.Guard.AllowPrivate = true
	if opts.Poll == 0 {
		opts.Poll = 20 * time.Millisecond
	}
	if opts.Backoff == 0 {
		opts.Backoff = 100 * time.Millisecond
	}
	d := models.NewDispatcher(db, opts)
	t.Cleanup(d.Close)
	consumer := d.AutomationsConsumer(fmt.Sprintf("automations-test-%d", time.Now().UnixNano()))
	e.writer = models.NewWriter(db, models.NewCatalog(db, time.Minute), models.WriterOptions{Consumers: []models.LogConsumer{consumer},
		EventLog: models.EventLogOptions{Interval: 10 * time.Millisecond, SealMargin: time.Millisecond, MinAge: time.Millisecond}})
	t.Cleanup(e.writer.Close)
	return &automationEnv{env: e, dispatcher: d}
}

func (e *automationEnv) matcher(name, code string, rules ...models.Rule) {
	e.t.Helper()
	if _, err := models.CreateEventMatcherFor(e.ctx, e.db, e.owner, e.app.PublicID, models.EventMatcherInput{Name: &name, Code: &code, Rules: rules}); err != nil {
		e.t.Fatal(err)
	}
}

func (e *automationEnv) rule(name, matcher string, identifiedOnly bool, actions ...models.AutomationActionInput) *models.CreatedRule {
	e.t.Helper()
	created, err := models.CreateAutomationRuleFor(e.ctx, e.db, e.owner, models.URLGuard{AllowPrivate: true}, e.app.PublicID,
		models.AutomationRuleInput{Name: &name, Matcher: &matcher, IdentifiedOnly: &identifiedOnly, Enabled: ptr(true)}, actions)
	if err != nil {
		e.t.Fatal(err)
	}
	return created
}

func webhookTo(url string, headers ...models.Header) models.AutomationActionInput {
	return models.AutomationActionInput{Kind: ptr(models.ActionWebhook), URL: &url, Headers: headers}
}

func (e *automationEnv) deliveries(status string) []*models.Delivery {
	e.t.Helper()
	page, err := models.DeliveriesFor(e.ctx, e.db, e.owner, e.app.PublicID, models.DeliveriesInput{Status: status, First: 100})
	if err != nil {
		e.t.Fatal(err)
	}
	return page.Deliveries
}

// verifySignature checks a request as a Standard Webhooks receiver does,
// with any of the signatures in the header.
func verifySignature(secret string, r received) bool {
	key, _ := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(r.header.Get("webhook-id") + "." + r.header.Get("webhook-timestamp") + "."))
	mac.Write(r.body)
	want := "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
	for _, sig := range strings.Fields(r.header.Get("webhook-signature")) {
		if hmac.Equal([]byte(sig), []byte(want)) {
			return true
		}
	}
	return false
}

// A rule sends each committed event that matches it, once, signed, with
// the event's definition, device and lead, and custom headers; events that
// do not match, and events of a rolled-back group commit, are never sent.
func TestAutomationDeliversMatchingEvents(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *gorm.DB) {
		e := newAutomationEnv(t, db, models.DispatcherOptions{})
		recv := newReceiver(t, nil)
		e.define("signup")
		e.matcher("Pro signups", "signup", models.Rule{Field: "properties.plan", Operator: models.OpEquals, Value: "pro"})
		created := e.rule("To CRM", "Pro signups", false, webhookTo(recv.URL+"/hook?token=abc", models.Header{Name: "x-api-key", Value: "crm-key-0123456789"}))
		secret := created.Secrets[0].Secret
		if !strings.HasPrefix(secret, "whsec_") {
			t.Fatalf("secret %q", secret)
		}
		action := created.Secrets[0].Action
		if hint := action.URLHint(); strings.Contains(hint, "abc") || action.HeaderHints()[0].ValueHint != "…89" {
			t.Fatalf("secrets shown: url %q, header %+v", hint, action.HeaderHints())
		}
		if _, err := models.Identify(e.ctx, db, models.NewCatalog(db, 0), models.IdentifyInput{AppPublicID: e.app.PublicID, DeviceID: "d-lead",
			Email: "pro@example.com", Secret: e.secret}); err != nil {
			t.Fatal(err)
		}

		// A group commit that rolls back sends nothing.
		restore := models.SetWriterHooks(nil, func() { panic("roll this group commit back") })
		rolledBack := e.trigger(models.TriggerInput{Secret: e.secret, Code: "signup", DeviceID: "d-rolled", Properties: map[string]any{"plan": "pro"}})
		restore()
		if rolledBack.Accepted {
			t.Fatal("the rolled-back trigger was accepted")
		}
		pro := e.mustTrigger(models.TriggerInput{Secret: e.secret, Code: "signup", DeviceID: "d-lead", URL: "https://a.example/pricing", Properties: map[string]any{"plan": "pro"}})
		e.mustTrigger(models.TriggerInput{Secret: e.secret, Code: "signup", DeviceID: "d-free", Properties: map[string]any{"plan": "free"}})
		e.mustTrigger(models.TriggerInput{Secret: e.secret, Code: "view", DeviceID: "d-lead", Properties: map[string]any{"plan": "pro"}})

		waitFor(t, "the delivery", func() bool { return len(e.deliveries(models.DeliverySucceeded)) == 1 })
		time.Sleep(300 * time.Millisecond) // nothing else arrives
		got := recv.requests()
		if len(got) != 1 {
			t.Fatalf("%d requests, want 1", len(got))
		}
		r := got[0]
		if !verifySignature(secret, r) {
			t.Fatalf("signature %q does not verify", r.header.Get("webhook-signature"))
		}
		if want := fmt.Sprintf("msg_%d_%d", pro.EventID, action.ID); r.header.Get("webhook-id") != want {
			t.Fatalf("webhook-id %q, want %q", r.header.Get("webhook-id"), want)
		}
		if r.header.Get("X-Api-Key") != "crm-key-0123456789" {
			t.Fatalf("custom header %q", r.header.Get("X-Api-Key"))
		}
		var body struct {
			Type string
			Data struct {
				Event struct {
					ID, Code, Name, URL string
					Properties          map[string]any
				}
				Lead *struct{ Email string }
				App  struct{ ID string }
			}
		}
		if err := json.Unmarshal(r.body, &body); err != nil {
			t.Fatal(err)
		}
		if body.Type != "event.triggered" || body.Data.Event.Code != "signup" || body.Data.Event.Name != "Def signup" ||
			body.Data.Event.URL != "https://a.example/pricing" || body.Data.Lead == nil || body.Data.Lead.Email != "pro@example.com" ||
			body.Data.App.ID != e.app.PublicID {
			t.Fatalf("payload %s", r.body)
		}
		d := e.deliveries("")[0]
		if d.Attempts != 1 || d.LastStatusCode != 200 || d.NextAttemptAt() != nil {
			t.Fatalf("delivery %+v", d)
		}
	})
}

// A rule for identified leads only skips anonymous devices; a Slack action
// posts the template with the event's fields.
func TestAutomationIdentifiedOnlyAndSlack(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *gorm.DB) {
		e := newAutomationEnv(t, db, models.DispatcherOptions{})
		recv := newReceiver(t, nil)
		e.define("demo")
		e.matcher("Demos", "demo")
		tmpl := "{{event.name}} <{{lead.email}}> on {{event.url}}, plan {{properties.plan}}" // the template is the author's: only values are escaped
		e.rule("Slack demos", "Demos", true, models.AutomationActionInput{Kind: ptr(models.ActionSlack), URL: ptr(recv.URL + "/services/T0/B0/xyz"), Template: &tmpl})
		if _, err := models.Identify(e.ctx, db, models.NewCatalog(db, 0), models.IdentifyInput{AppPublicID: e.app.PublicID, DeviceID: "d-known",
			Email: "known@example.com", Secret: e.secret}); err != nil {
			t.Fatal(err)
		}
		e.mustTrigger(models.TriggerInput{Secret: e.secret, Code: "demo", DeviceID: "d-anon"})
		e.mustTrigger(models.TriggerInput{Secret: e.secret, Code: "demo", DeviceID: "d-known", URL: "https://a.example/demo", Properties: map[string]any{"plan": "team"}})
		waitFor(t, "the Slack message", func() bool { return len(e.deliveries(models.DeliverySucceeded)) == 1 })
		time.Sleep(300 * time.Millisecond)
		got := recv.requests()
		if len(got) != 1 {
			t.Fatalf("%d requests, want 1 (the identified device only)", len(got))
		}
		var msg struct{ Text string }
		if err := json.Unmarshal(got[0].body, &msg); err != nil {
			t.Fatal(err)
		}
		if want := "Def demo <known@example.com> on https://a.example/demo, plan team"; msg.Text != want {
			t.Fatalf("slack text %q, want %q", msg.Text, want)
		}
		if got[0].header.Get("webhook-signature") != "" {
			t.Fatal("a Slack message carries a webhook signature")
		}
	})
}

// Failed attempts are retried with backoff, honouring Retry-After; 410
// Gone disables the action; after the last attempt the delivery is dead.
func TestAutomationRetryPolicy(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *gorm.DB) {
		e := newAutomationEnv(t, db, models.DispatcherOptions{Backoff: 200 * time.Millisecond, MaxAttempts: 3})
		flaky := newReceiver(t, func(n int, w http.ResponseWriter) {
			switch n {
			case 0:
				w.WriteHeader(500)
			case 1:
				w.Header().Set("Retry-After", "2")
				w.WriteHeader(429)
			}
		})
		gone := newReceiver(t, func(_ int, w http.ResponseWriter) { w.WriteHeader(410) })
		down := newReceiver(t, func(_ int, w http.ResponseWriter) { w.WriteHeader(503) })
		e.define("buy")
		e.matcher("Buys", "buy")
		e.rule("Flaky", "Buys", false, webhookTo(flaky.URL))
		goneRule := e.rule("Gone", "Buys", false, webhookTo(gone.URL))
		downRule := e.rule("Down", "Buys", false, webhookTo(down.URL))
		e.mustTrigger(models.TriggerInput{Secret: e.secret, Code: "buy", DeviceID: "d-1"})

		waitFor(t, "every delivery to finish", func() bool {
			return len(e.deliveries(models.DeliverySucceeded))+len(e.deliveries(models.DeliveryDead)) == 3
		})
		f := flaky.requests()
		if len(f) != 3 {
			t.Fatalf("flaky receiver got %d attempts, want 3", len(f))
		}
		if gap := f[1].at.Sub(f[0].at); gap < 150*time.Millisecond {
			t.Fatalf("second attempt after %v, before the backoff", gap)
		}
		if gap := f[2].at.Sub(f[1].at); gap < 2*time.Second {
			t.Fatalf("third attempt after %v, before Retry-After", gap)
		}
		if f[0].header.Get("webhook-id") != f[2].header.Get("webhook-id") {
			t.Fatal("the webhook-id changed between attempts")
		}
		if n := len(gone.requests()); n != 1 {
			t.Fatalf("the 410 receiver got %d attempts", n)
		}
		if n := len(down.requests()); n != 3 {
			t.Fatalf("the 503 receiver got %d attempts, want MaxAttempts 3", n)
		}
		rules, err := models.AutomationRulesFor(e.ctx, db, e.owner, e.app.PublicID)
		if err != nil {
			t.Fatal(err)
		}
		acts, err := models.ActionsOfRules(e.ctx, db, []uint64{goneRule.Rule.ID})
		if err != nil || len(rules) != 3 {
			t.Fatal(err, len(rules))
		}
		if a := acts[goneRule.Rule.ID][0]; a.Enabled() || !strings.Contains(a.DisabledReason, "410") {
			t.Fatalf("the 410 action: enabled %v, reason %q", a.Enabled(), a.DisabledReason)
		}
		for _, d := range e.deliveries("") {
			atts, err := models.AttemptsOfDeliveries(e.ctx, db, []uint64{d.ID})
			if err != nil {
				t.Fatal(err)
			}
			if len(atts[d.ID]) != d.Attempts {
				t.Fatalf("delivery %d: %d attempts logged, %d counted", d.ID, len(atts[d.ID]), d.Attempts)
			}
		}
		// The counts move just after the outcomes commit, so they may trail
		// the log a moment.
		waitFor(t, "the outcome counts (succeeded 1, disabled 1, dead 1, failed 4)", func() bool {
			counts := e.dispatcher.DeliveryCounts()
			return counts["succeeded"] >= 1 && counts["disabled"] >= 1 && counts["dead"] >= 1 && counts["failed"] >= 4
		})
		// A replay of the dead-lettered delivery sends it again, same
		// webhook-id. It is found by its action: the log's order says
		// nothing about which rule's delivery is which.
		var downDead *models.Delivery
		for _, d := range e.deliveries(models.DeliveryDead) {
			if d.ActionID == downRule.Secrets[0].Action.ID {
				downDead = d
			}
		}
		if downDead == nil {
			t.Fatal("the 503 receiver's delivery is not dead")
		}
		if _, err := models.ReplayDeliveryFor(e.ctx, db, e.owner, e.app.PublicID, models.FormatID(downDead.ID)); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the replay", func() bool { return len(down.requests()) >= 4 })
		if got := down.requests(); got[3].header.Get("webhook-id") != got[0].header.Get("webhook-id") {
			t.Fatalf("the replay's webhook-id %q, the first attempt's %q", got[3].header.Get("webhook-id"), got[0].header.Get("webhook-id"))
		}
	})
}

// testRule counts what a brute-force match over the same events finds, and
// replayRule sends exactly that set, with the webhook-ids of the events.
func TestTestRuleAndReplayMatchBruteForce(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *gorm.DB) {
		e := newAutomationEnv(t, db, models.DispatcherOptions{Workers: 8, PerRule: 8})
		recv := newReceiver(t, nil)
		e.define("order")
		rules := []models.Rule{{Field: "properties.total", Operator: models.OpGreaterThan, Value: "50"}, {Field: "url", Operator: models.OpContains, Value: "shop"}}
		e.matcher("Big orders", "order", rules...)
		want := map[uint64]bool{}
		start := time.Now().Add(-time.Minute)
		for i := range 60 {
			url := "https://a.example/shop/" + fmt.Sprint(i)
			if i%4 == 0 {
				url = "https://a.example/blog"
			}
			total := float64(i * 3)
			res := e.mustTrigger(models.TriggerInput{Secret: e.secret, Code: "order", DeviceID: fmt.Sprint("d-", i%7), URL: url, Properties: map[string]any{"total": total}})
			if total > 50 && strings.Contains(url, "shop") {
				want[res.EventID] = true
			}
		}
		e.mustTrigger(models.TriggerInput{Secret: e.secret, Code: "view", DeviceID: "d-x", URL: "https://a.example/shop/1", Properties: map[string]any{"total": 99}})
		res, err := models.TestRuleFor(e.ctx, db, e.owner, e.app.PublicID, models.TestRuleInput{Matcher: "Big orders", From: start, To: time.Now().Add(time.Minute)})
		if err != nil {
			t.Fatal(err)
		}
		if res.Matched != len(want) || res.Scanned != 60 || len(res.Samples) != 3 {
			t.Fatalf("testRule: matched %d scanned %d samples %d; brute force %d of 60", res.Matched, res.Scanned, len(res.Samples), len(want))
		}
		if len(recv.requests()) != 0 {
			t.Fatal("testRule sent something")
		}
		// The rule is made after the automations consumer has matched the
		// events: nothing fires until the replay. (Made before, the rule
		// would fire for them as well, and a consumer's first attempt may
		// then go out beside the replay's, with the same webhook-id.)
		if err := e.writer.EventLog().Drain(e.ctx); err != nil {
			t.Fatal(err)
		}
		created := e.rule("Replayed", "Big orders", false, webhookTo(recv.URL))
		n, err := models.ReplayRuleFor(e.ctx, db, e.owner, e.app.PublicID, models.FormatID(created.Rule.ID), start, time.Now().Add(time.Minute))
		if err != nil || n != len(want) {
			t.Fatalf("replayRule: %d events, %v; want %d", n, err, len(want))
		}
		waitFor(t, "the replayed deliveries", func() bool { return len(e.deliveries(models.DeliverySucceeded)) == len(want) })
		time.Sleep(200 * time.Millisecond)
		seen := map[string]int{}
		for _, r := range recv.requests() {
			seen[r.header.Get("webhook-id")]++
		}
		for id := range want {
			if wid := fmt.Sprintf("msg_%d_%d", id, created.Secrets[0].Action.ID); seen[wid] != 1 {
				t.Fatalf("%s sent %d times", wid, seen[wid])
			}
		}
		if len(seen) != len(want) {
			t.Fatalf("replay sent %d events, want %d", len(seen), len(want))
		}
	})
}

// Erasing a lead deletes the delivery log of its events, so nothing of
// theirs is sent or kept.
func TestEraseLeadPurgesDeliveries(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *gorm.DB) {
		e := newAutomationEnv(t, db, models.DispatcherOptions{})
		recv := newReceiver(t, func(_ int, w http.ResponseWriter) { w.WriteHeader(500) })
		e.define("signup")
		e.matcher("Signups", "signup")
		e.rule("Hook", "Signups", false, webhookTo(recv.URL))
		if _, err := models.Identify(e.ctx, db, models.NewCatalog(db, 0), models.IdentifyInput{AppPublicID: e.app.PublicID, DeviceID: "d-erase",
			Email: "erase-me@example.com", Secret: e.secret}); err != nil {
			t.Fatal(err)
		}
		e.mustTrigger(models.TriggerInput{Secret: e.secret, Code: "signup", DeviceID: "d-erase"})
		e.mustTrigger(models.TriggerInput{Secret: e.secret, Code: "signup", DeviceID: "d-keep"})
		waitFor(t, "two deliveries", func() bool { return len(e.deliveries("")) == 2 })
		if _, err := models.EraseLead(e.ctx, db, e.owner, e.app.PublicID, "erase-me@example.com"); err != nil {
			t.Fatal(err)
		}
		left := e.deliveries("")
		if len(left) != 1 {
			t.Fatalf("%d deliveries left, want 1", len(left))
		}
		var attempts int64
		db.Model(&models.DeliveryAttempt{}).Where("app_id = ? AND delivery_id <> ?", e.app.ID, left[0].ID).Count(&attempts)
		if attempts != 0 {
			t.Fatalf("%d attempts of the erased delivery kept", attempts)
		}
	})
}

// Delivery URLs to the server's own networks are refused unless allowed.
func TestURLGuard(t *testing.T) {
	ctx := context.Background()
	strict := models.URLGuard{}
	for _, u := range []string{
		"http://127.0.0.1/hook", "http://localhost:8080/", "http://10.1.2.3/", "http://192.168.0.1/", "http://172.16.5.5/",
		"http://169.254.169.254/latest/meta-data/", "http://[::1]/", "http://[fd00:ec2::254]/", "http://[::ffff:127.0.0.1]/",
		"http://100.64.0.1/", "http://0.0.0.0/", "http://[::127.0.0.1]/", "http://[::ffff:0:7f00:1]/", "http://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/",
		"http://[2001:db8::1]/", "http://[100::1]/", "ftp://example.com/", "https://user:pw@93.184.216.34/", "/relative",
	} {
		if err := strict.CheckURL(ctx, u); err == nil {
			t.Errorf("%s accepted", u)
		}
	}
	for _, u := range []string{"https://93.184.216.34/hook", "http://[2606:4700::1111]/"} {
		if err := strict.CheckURL(ctx, u); err != nil {
			t.Errorf("%s refused: %v", u, err)
		}
	}
	if err := (models.URLGuard{AllowPrivate: true}).CheckURL(ctx, "http://127.0.0.1:9/"); err != nil {
		t.Errorf("allowed private refused: %v", err)
	}
}

// A URL saved while private addresses were allowed (or a name that later
// resolves to one: DNS rebinding) is refused again when connecting.
func TestURLGuardAtSendTime(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *gorm.DB) {
		e := newAutomationEnv(t, db, models.DispatcherOptions{})
		e.dispatcher.Close()
		strict := models.NewDispatcher(db, models.DispatcherOptions{Poll: 20 * time.Millisecond, Backoff: time.Hour})
		t.Cleanup(strict.Close)
		recv := newReceiver(t, nil)
		e.define("signup")
		e.matcher("Signups", "signup")
		e.rule("Hook", "Signups", false, webhookTo(recv.URL))
		e.mustTrigger(models.TriggerInput{Secret: e.secret, Code: "signup", DeviceID: "d-1"})
		waitFor(t, "the refused attempt", func() bool { return len(e.deliveries(models.DeliveryRetrying)) == 1 })
		d := e.deliveries(models.DeliveryRetrying)[0]
		if !strings.Contains(d.LastError, "refused") || d.LastStatusCode != 0 {
			t.Fatalf("delivery %+v", d)
		}
		if len(recv.requests()) != 0 {
			t.Fatal("the receiver on loopback was reached")
		}
	})
}

// Pruning deletes finished deliveries older than the cutoff with their
// attempts, and keeps those still to be attempted.
func TestPruneDeliveries(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *gorm.DB) {
		e := newAutomationEnv(t, db, models.DispatcherOptions{Backoff: time.Hour})
		ok := newReceiver(t, nil)
		failing := newReceiver(t, func(_ int, w http.ResponseWriter) { w.WriteHeader(500) })
		e.define("signup")
		e.matcher("Signups", "signup")
		e.rule("Good", "Signups", false, webhookTo(ok.URL))
		e.rule("Failing", "Signups", false, webhookTo(failing.URL))
		e.mustTrigger(models.TriggerInput{Secret: e.secret, Code: "signup", DeviceID: "d-1"})
		e.mustTrigger(models.TriggerInput{Secret: e.secret, Code: "signup", DeviceID: "d-2"})
		waitFor(t, "every first attempt", func() bool {
			return len(e.deliveries(models.DeliverySucceeded)) == 2 && len(e.deliveries(models.DeliveryRetrying)) == 2
		})
		if _, err := models.PruneDeliveries(e.ctx, db, time.Now().Add(-time.Hour)); err != nil {
			t.Fatal(err)
		}
		if n := len(e.deliveries("")); n != 4 {
			t.Fatalf("pruning with an old cutoff left %d of 4", n)
		}
		if _, err := models.PruneDeliveries(e.ctx, db, time.Now().Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		left := e.deliveries("")
		if len(left) != 2 || left[0].Status != models.DeliveryRetrying || left[1].Status != models.DeliveryRetrying {
			t.Fatalf("left %d deliveries", len(left))
		}
		var attempts int64
		db.Model(&models.DeliveryAttempt{}).Where("app_id = ?", e.app.ID).Count(&attempts)
		if attempts != 2 {
			t.Fatalf("%d attempts left, want the 2 of the retrying deliveries", attempts)
		}
	})
}
