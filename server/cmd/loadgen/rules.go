package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/crumbs-dev/crumbs/models"
)

// rulesLoad is the second app of a compare run: the same codes as the
// first, with o.rules enabled automation rules on load_0 (a tenth of the
// events), each with a webhook to a receiver in this process. Driving it
// against the first app, round by round, measures what enabled rules cost
// the write path.
type rulesLoad struct {
	appID, secret string
	// spreadAppID and spreadSecret: the third app, whose o.rules rules
	// each match a hundredth of the events (load_0 events whose property
	// n ends in i0 for rule i), the same tenth in all: the other reading
	// of "10 rules matching 10% of traffic", one webhook per matching event
	// instead of o.rules.
	spreadAppID, spreadSecret string
	received                  atomic.Int64
	server                    *http.Server
	url                       string                 // the receiver's
	body                      atomic.Pointer[[]byte] // the first webhook received: a real payload
	signingSecret             string                 // of the first rule's action
}

func (e *benchEnv) setupRules() error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	r := &rulesLoad{}
	r.server = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.received.Add(1)
		if r.body.Load() == nil {
			if b, err := io.ReadAll(req.Body); err == nil {
				r.body.CompareAndSwap(nil, &b)
			}
		}
		w.WriteHeader(http.StatusNoContent)
	})}
	r.url = "http://" + ln.Addr().String() + "/hook"
	go r.server.Serve(ln)
	e.cleanup = append(e.cleanup, func() { r.server.Close() })
	lo := options{target: e.crumbs.url + "/graphql", email: e.adminEmail, password: "bench password 123", codes: e.o.codes}
	if r.appID, r.secret, err = setup(e.client, lo); err != nil {
		return err
	}
	if r.spreadAppID, r.spreadSecret, err = setup(e.client, lo); err != nil {
		return err
	}
	var login struct {
		Data struct{ Login struct{ AccessToken string } }
	}
	if err := graphql(e.client, lo.target, "", `mutation($e: String!, $p: String!) { login(email: $e, password: $p) { accessToken } }`,
		map[string]any{"e": lo.email, "p": lo.password}, &login); err != nil {
		return err
	}
	token := login.Data.Login.AccessToken
	if err := r.createRules(e, lo.target, token, r.appID, false); err != nil {
		return err
	}
	if err := r.createRules(e, lo.target, token, r.spreadAppID, true); err != nil {
		return fmt.Errorf("spread: %w", err)
	}
	e.rules = r
	return nil
}

// createRules makes the app's e.o.rules rules, each with a webhook to the
// receiver: on load_0, or with spread, rule i on the load_0 events whose
// property n ends in i0 (a hundredth of the events each, for ten rules).
// For the first app, a sample delivery gives the receiver a real payload.
func (r *rulesLoad) createRules(e *benchEnv, target, token, appID string, spread bool) error {
	for i := range e.o.rules {
		matcher := "tenth"
		if spread {
			matcher = fmt.Sprintf("hundredth %d", i)
		}
		if i == 0 || spread {
			in := map[string]any{"name": matcher, "code": "load_0"}
			if spread {
				in["rules"] = []map[string]any{{"field": "properties.n", "operator": "ends_with", "value": fmt.Sprintf("%d0", i)}}
			}
			if err := graphql(e.client, target, token, `mutation($a: ID!, $in: EventMatcherInput!) { createEventMatcher(appId: $a, input: $in) { id } }`,
				map[string]any{"a": appID, "in": in}, nil); err != nil {
				return err
			}
		}
		var created struct {
			Data struct {
				CreateAutomationRule struct {
					Secrets []struct {
						Action        struct{ ID string }
						SigningSecret string
					}
				}
			}
		}
		err := graphql(e.client, target, token, `mutation($a: ID!, $n: String!, $m: String!, $u: String!) { createAutomationRule(appId: $a,
			input: {name: $n, matcher: $m, actions: [{kind: webhook, url: $u}]}) { secrets { action { id } signingSecret } } }`,
			map[string]any{"a": appID, "n": fmt.Sprintf("rule %d", i), "m": matcher, "u": r.url}, &created)
		if err != nil {
			return err
		}
		if i > 0 || spread {
			continue
		}
		// One sample sent now gives the receiver a payload as the rules
		// send it, for the measurement of the webhooks alone.
		secrets := created.Data.CreateAutomationRule.Secrets
		if len(secrets) != 1 {
			return fmt.Errorf("rule %d: %d actions created", i, len(secrets))
		}
		r.signingSecret = secrets[0].SigningSecret
		var sent struct {
			Data struct{ SendTestDelivery struct{ StatusCode int } }
		}
		if err := graphql(e.client, target, token, `mutation($a: ID!, $x: ID!) { sendTestDelivery(appId: $a, actionId: $x) { statusCode } }`,
			map[string]any{"a": appID, "x": secrets[0].Action.ID}, &sent); err != nil {
			return err
		}
		if sent.Data.SendTestDelivery.StatusCode != http.StatusNoContent || r.body.Load() == nil {
			return fmt.Errorf("the sample delivery got %d", sent.Data.SendTestDelivery.StatusCode)
		}
	}
	return nil
}

// webhooksAlone is the reference for the rules measurement: the app
// without rules, while loadgen itself sends the webhooks the rules would
// send (o.rules for each load_0 event, the sample payload signed per
// Standard Webhooks with a fresh HMAC each, from 16 senders as the
// dispatcher's 16 workers, over as many kept-alive connections) to the same
// receiver. No Crumbs work is done for them, so the ratio to the app
// without rules is what the HTTP requests alone cost the write path on
// this machine: the floor under any dispatcher's figure.
type webhooksAlone struct {
	r     *rulesLoad
	queue chan int64
	wg    sync.WaitGroup
}

func (r *rulesLoad) startWebhooksAlone() *webhooksAlone {
	w := &webhooksAlone{r: r, queue: make(chan int64, 1<<20)}
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 16, IdleConnTimeout: time.Minute}}
	body := *r.body.Load()
	for range 16 {
		w.wg.Go(func() {
			for n := range w.queue {
				id := "msg_alone_" + strconv.FormatInt(n, 10)
				ts := strconv.FormatInt(time.Now().Unix(), 10)
				req, err := http.NewRequest(http.MethodPost, r.url, bytes.NewReader(body))
				if err != nil {
					continue
				}
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("User-Agent", "Crumbs-Webhooks/1")
				req.Header.Set("webhook-id", id)
				req.Header.Set("webhook-timestamp", ts)
				req.Header.Set("webhook-signature", models.SignWebhook(r.signingSecret, id, ts, body))
				if resp, err := client.Do(req); err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
			}
		})
	}
	return w
}

// send queues the webhooks of one event.
func (w *webhooksAlone) send(n int64, rules int) {
	for i := range int64(rules) {
		w.queue <- n*int64(rules) + i
	}
}

// drain waits until every queued webhook was sent.
func (w *webhooksAlone) drain() time.Duration {
	start := time.Now()
	close(w.queue)
	w.wg.Wait()
	return time.Since(start)
}

// drainDeliveries waits until the automations consumer has matched every
// event stored so far and no delivery is due or retrying, so that one
// measurement's deliveries do not load the next; it reports how long that
// took. The consumer makes most first attempts before it records their
// deliveries, so the delivery table alone does not show the events it has
// yet to match and send.
func (e *benchEnv) drainDeliveries(ctx context.Context) (time.Duration, error) {
	start := time.Now()
	var last uint64
	if err := e.crumbsDB.WithContext(ctx).Raw("SELECT COALESCE(MAX(id), 0) FROM events").Scan(&last).Error; err != nil {
		return 0, err
	}
	for {
		var position uint64
		err := e.crumbsDB.WithContext(ctx).Raw("SELECT position FROM event_log_consumers WHERE name = ?", models.AutomationsConsumerName).Scan(&position).Error
		if err != nil {
			return 0, err
		}
		var n int64
		if position >= last {
			err = e.crumbsDB.WithContext(ctx).Model(&models.Delivery{}).Where("status IN ?", []string{models.DeliveryPending, models.DeliveryRetrying}).Count(&n).Error
			if err != nil {
				return 0, err
			}
			if n == 0 {
				return time.Since(start), nil
			}
		}
		if time.Since(start) > 10*time.Minute {
			return 0, fmt.Errorf("after 10 minutes: the automations consumer at %d of %d, %d deliveries waiting", position, last, n)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// wanted reports whether the step named name is to run (-steps).
func (o compareOptions) wanted(name string) bool {
	if o.only == "" {
		return true
	}
	for s := range strings.SplitSeq(o.only, ",") {
		if s = strings.TrimSpace(s); s != "" && strings.Contains(name, s) {
			return true
		}
	}
	return false
}
