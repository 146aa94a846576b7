package models

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"gorm.io/gorm"
)

// DispatcherOptions tune delivery. Zero values take the defaults.
type DispatcherOptions struct {
	Guard URLGuard
	// Workers bounds the deliveries this replica attempts at once (16).
	Workers int
	// PerRule bounds the attempts in flight per rule on this replica (4),
	// so one slow receiver cannot take every worker. A rule's actions
	// share it: a slow receiver holds back its own rule's other actions,
	// not other rules.
	PerRule int
	// Rate bounds the attempts started per second per rule on this
	// replica (10), a token bucket holding one second's worth shared by
	// the rule's actions: deliveries over it stay pending, with no attempt
	// counted, and go out as the budget refills, so one flooded rule cannot
	// hold back the others. Negative: no rate cap.
	Rate float64
	// Backoff is the wait after the first failed attempt (30s); each
	// further failure doubles it, up to maxBackoff (8 hours), and every
	// wait varies by ±25% (jitter).
	Backoff time.Duration
	// MaxAttempts is the attempts before a delivery is dead-lettered (13:
	// with the default backoff, retries over about a day; see
	// NominalRetrySpan).
	MaxAttempts int
	// Timeout bounds one attempt (10s).
	Timeout time.Duration
	// Poll is how often the dispatcher looks for due deliveries (250ms).
	Poll time.Duration
	// Retention is how long finished deliveries stay in the log (30 days);
	// they are pruned every PruneEvery (1 hour).
	Retention, PruneEvery time.Duration
	Log                   *slog.Logger
}

// Dispatcher attempts the due deliveries. Every replica runs one; a lease
// on each delivery row (not a lock held across the HTTP call) makes each
// delivery attempted by one replica at a time, and a replica that dies
// mid-attempt leaves it to another once the lease expires.
type Dispatcher struct {
	db      *gorm.DB
	opts    DispatcherOptions
	client  *http.Client
	owner   string
	seq     atomic.Uint64
	ctx     context.Context
	cancel  context.CancelFunc
	done    chan struct{}   // closed when the loop and the recorder are done
	firsts  chan []*hookJob // first attempts from the automations consumer (automation_first.go)
	handing sync.WaitGroup  // first attempts handed over, waiting for their consumer's commit

	counts [4]atomic.Uint64 // by outcome, see outcomeNames

	warned sync.Map // log message -> *warnState: store faults are logged at most once per second
}

var outcomeNames = [4]string{"succeeded", "failed", "dead", "disabled"}

const (
	outcomeSucceeded = iota
	outcomeFailed    // an attempt failed; it will be retried
	outcomeDead      // dead-lettered
	outcomeDisabled  // 410 Gone disabled the action
)

// maxResponseBody caps what is read of a receiver's answer.
const maxResponseBody = 4 << 10

// WithDefaults returns the options with each zero value replaced by its default.
func (opts DispatcherOptions) WithDefaults() DispatcherOptions {
	if opts.Workers <= 0 {
		opts.Workers = 16
	}
	if opts.PerRule <= 0 {
		opts.PerRule = 4
	}
	if opts.Rate == 0 {
		opts.Rate = 10
	}
	if opts.Backoff <= 0 {
		opts.Backoff = 30 * time.Second
	}
	if opts.MaxAttempts <= 0 {
		opts.MaxAttempts = 13
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 10 * time.Second
	}
	if opts.Poll <= 0 {
		opts.Poll = 250 * time.Millisecond
	}
	if opts.Retention <= 0 {
		opts.Retention = 30 * 24 * time.Hour
	}
	if opts.PruneEvery <= 0 {
		opts.PruneEvery = time.Hour
	}
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	return opts
}

// NewDispatcher starts delivering; Close stops it.
func NewDispatcher(db *gorm.DB, opts DispatcherOptions) *Dispatcher {
	opts = opts.WithDefaults()
	host, _ := os.Hostname()
	d := &Dispatcher{db: db, opts: opts, done: make(chan struct{}), firsts: make(chan []*hookJob),
		owner: fmt.Sprintf("%.30s:%d:%s", host, os.Getpid(), randomToken(6))}
	d.client = newDeliveryClient(opts.Guard, opts.Timeout, opts.Workers)
	d.ctx, d.cancel = context.WithCancel(context.Background())
	go d.run()
	return d
}

// newDeliveryClient keeps up to workers idle connections per host: every
// Slack action posts to the same host, and a smaller pool would close and
// dial again a connection for most attempts.
func newDeliveryClient(g URLGuard, timeout time.Duration, workers int) *http.Client {
	dialer := &net.Dialer{Timeout: 5 * time.Second, Control: g.dialControl}
	return &http.Client{
		Timeout: timeout,
		Transport: &http.Transport{
			Proxy:                 nil, // a proxy would dial for us, past the guard
			DialContext:           g.dial(dialer),
			TLSHandshakeTimeout:   5 * time.Second,
			ResponseHeaderTimeout: timeout,
			MaxIdleConnsPerHost:   workers,
			IdleConnTimeout:       60 * time.Second,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// Guard is the URL guard the dispatcher delivers under.
func (d *Dispatcher) Guard() URLGuard { return d.opts.Guard }

// Close stops claiming deliveries and waits for the attempts in flight;
// an attempt cut short is left to be retried.
func (d *Dispatcher) Close() {
	d.cancel()
	<-d.done
}

// DeliveryCounts are the attempts' outcomes so far, for
// crumbs_webhook_deliveries_total{status}.
func (d *Dispatcher) DeliveryCounts() map[string]float64 {
	out := make(map[string]float64, len(outcomeNames))
	for i, n := range outcomeNames {
		out[n] = float64(d.counts[i].Load())
	}
	return out
}

// sendResult is what one attempt got. err, and body unless the answer
// was 2xx, show nothing of the action's URL but its scheme and host
// (hideURL): they are recorded in the delivery log, which every viewer of
// the app reads.
type sendResult struct {
	code       int
	latency    time.Duration
	err        error
	retryAfter time.Duration
	body       []byte
}

func (r sendResult) ok() bool { return r.err == nil && r.code >= 200 && r.code < 300 }

func (r sendResult) errorText() string {
	switch {
	case r.err != nil:
		return truncate(r.err.Error(), 400)
	case r.ok():
		return ""
	}
	msg := fmt.Sprintf("HTTP %d", r.code)
	if len(r.body) > 0 {
		msg += ": " + strings.ToValidUTF8(string(r.body), "?")
	}
	return truncate(msg, 400)
}

func actionBody(a *AutomationAction, payload JSONObject) ([]byte, error) {
	if a.Kind == ActionSlack {
		return json.Marshal(slackMessage(payload, a.Template))
	}
	return json.Marshal(payload)
}

// send makes one HTTP request: a webhook signed per Standard Webhooks, or
// a Slack message.
func (d *Dispatcher) send(ctx context.Context, a *AutomationAction, msgID string, body []byte) sendResult {
	// Latency counts from before the deadline is set, so an attempt cut
	// off by it never reads as shorter than the timeout.
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, d.opts.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, a.URL, bytes.NewReader(body))
	if err != nil {
		return sendResult{err: hideURL(err, a.URL)}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "Crumbs-Webhooks/1")
	if a.Kind == ActionWebhook {
		for _, h := range a.Headers {
			req.Header.Set(h.Name, h.Value)
		}
		now := time.Now()
		ts := strconv.FormatInt(now.Unix(), 10)
		req.Header.Set("webhook-id", msgID)
		req.Header.Set("webhook-timestamp", ts)
		req.Header.Set("webhook-signature", a.signatures(msgID, ts, body, now))
	}
	resp, err := d.client.Do(req)
	res := sendResult{latency: time.Since(start)}
	if err != nil {
		res.err = hideURL(err, a.URL)
		return res
	}
	defer resp.Body.Close()
	res.code = resp.StatusCode
	res.body, _ = io.ReadAll(io.LimitReader(resp.Body, maxResponseBody))
	if !res.ok() && len(res.body) > 0 {
		res.body = []byte(a.hideSecretsIn(string(res.body))) // error pages echo the path and keys
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // lets the connection be reused
	res.latency = time.Since(start)
	res.retryAfter = parseRetryAfter(resp.Header.Get("Retry-After"), time.Now())
	return res
}

// signatures is the webhook-signature header: v1,<base64 HMAC-SHA256 of
// "id.timestamp.body"> by the current secret and by each secret rotated
// out in the last 24 hours (at most three), space-separated.
func (a *AutomationAction) signatures(msgID, ts string, body []byte, now time.Time) string {
	secrets := a.signingSecrets(now)
	sigs := make([]string, len(secrets))
	for i, s := range secrets {
		sigs[i] = SignWebhook(s, msgID, ts, body)
	}
	return strings.Join(sigs, " ")
}

// SignWebhook returns one Standard Webhooks signature ("v1,<base64>").
func SignWebhook(secret, msgID, ts string, body []byte) string {
	key, _ := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(msgID + "." + ts + "."))
	mac.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// parseRetryAfter reads Retry-After as seconds or an HTTP date.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if n, err := strconv.Atoi(v); err == nil && n >= 0 {
		return time.Duration(n) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// maxBackoff caps the wait between two attempts, Retry-After aside.
const maxBackoff = 8 * time.Hour

// RetryJitter is how far each wait between attempts may stray from its
// nominal length, as a fraction of it: ±25%.
const RetryJitter = 0.25

// nominalWait is the wait after the n-th failed attempt before jitter:
// Backoff doubled n-1 times, at most maxBackoff (doubled step by step, so
// that a long Backoff cannot overflow).
func (opts DispatcherOptions) nominalWait(n int) time.Duration {
	wait := opts.Backoff
	for i := 1; i < n && wait < maxBackoff; i++ {
		wait *= 2
	}
	return min(wait, maxBackoff)
}

// NominalRetrySpan is how long a delivery whose receiver always fails
// (without Retry-After) is retried: from its first failed attempt to its
// last, the sum of the nominal waits between its attempts. Jitter makes the
// real span vary by ±RetryJitter, and each attempt adds its own duration
// (at most Timeout). Zero options take the defaults.
func NominalRetrySpan(opts DispatcherOptions) time.Duration {
	opts = opts.WithDefaults()
	var span time.Duration
	for n := 1; n < opts.MaxAttempts; n++ {
		span += opts.nominalWait(n)
	}
	return span
}

// backoff is the wait after the n-th failed attempt.
func (d *Dispatcher) backoff(n int, retryAfter time.Duration) time.Duration {
	if retryAfter > 0 {
		return min(retryAfter, 24*time.Hour)
	}
	return time.Duration(float64(d.opts.nominalWait(n)) * (1 - RetryJitter + 2*RetryJitter*rand.Float64()))
}

// TestDelivery is the receiver's answer to a sample delivery.
type TestDelivery struct {
	WebhookID    string
	StatusCode   int
	LatencyMs    int64
	Error        string
	ResponseBody string
}

// SendTestDeliveryFor sends one sample to an action now (the newest event
// of its rule's matcher code, by occurrence, reception and id, or a made-up
// one) and answers what the receiver said; nothing is logged or retried.
// For editors of the app.
func (d *Dispatcher) SendTestDeliveryFor(ctx context.Context, v Viewer, appPublicID, actionID string) (*TestDelivery, error) {
	db := d.db
	return inApp(ctx, db, v, appPublicID, RoleEditor, func(app *App) (*TestDelivery, error) {
		a, err := automationActionByID(ctx, db, app, "actionId", actionID)
		if err != nil {
			return nil, err
		}
		var rule AutomationRule
		if err := db.WithContext(ctx).Take(&rule, a.RuleID).Error; err != nil {
			return nil, err
		}
		e := sampleEvent(app)
		var latest Event
		err = db.WithContext(ctx).Where("definition_id IN (?)",
			db.Table("event_definitions AS d").Select("d.id").Joins("JOIN event_matchers AS m ON m.code = d.code AND m.app_id = d.app_id").
				Where("m.id = ? AND d.app_id = ?", rule.MatcherID, app.ID)).
			// Newest by occurrence, then reception, then id: events of one
			// instant otherwise came in the plan's order (by device id).
			Order("occurred_at DESC, received_at DESC, id DESC").Take(&latest).Error
		if err == nil {
			e = &latest
		} else if !errors.Is(err, gorm.ErrRecordNotFound) {
			return nil, err
		}
		payload, err := buildPayload(ctx, db, app, &rule, e)
		if err != nil {
			if e.ID != 0 {
				return nil, err
			}
			payload = JSONObject{"type": "event.triggered", "data": JSONObject{"app": JSONObject{"id": app.PublicID, "name": app.Name}, "test": true}}
		}
		body, err := actionBody(a, payload)
		if err != nil {
			return nil, err
		}
		msgID := "msg_test_" + randomToken(16)
		res := d.send(ctx, a, msgID, body)
		return &TestDelivery{WebhookID: msgID, StatusCode: res.code, LatencyMs: res.latency.Milliseconds(), Error: res.errorText(),
			ResponseBody: strings.ToValidUTF8(truncate(a.hideSecretsIn(string(res.body)), 1000), "?")}, nil
	})
}

// ErrAutomationsOff answers a test delivery on a server without a dispatcher.
var ErrAutomationsOff = newError(ErrUnavailable, "automations are not running on this server")
