package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strings"
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
	received      atomic.Int64
	server        *http.Server
}

func (e *benchEnv) setupRules() error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	r := &rulesLoad{}
	r.server = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		r.received.Add(1)
		w.WriteHeader(http.StatusNoContent)
	})}
	go r.server.Serve(ln)
	e.cleanup = append(e.cleanup, func() { r.server.Close() })
	lo := options{target: e.crumbs.url + "/graphql", email: e.adminEmail, password: "bench password 123", codes: e.o.codes}
	if r.appID, r.secret, err = setup(e.client, lo); err != nil {
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
	if err := graphql(e.client, lo.target, token, `mutation($a: ID!) { createEventMatcher(appId: $a, input: {name: "tenth", code: "load_0"}) { id } }`,
		map[string]any{"a": r.appID}, nil); err != nil {
		return err
	}
	for i := range e.o.rules {
		err := graphql(e.client, lo.target, token, `mutation($a: ID!, $n: String!, $u: String!) { createAutomationRule(appId: $a,
			input: {name: $n, matcher: "tenth", actions: [{kind: webhook, url: $u}]}) { rule { id } } }`,
			map[string]any{"a": r.appID, "n": fmt.Sprintf("rule %d", i), "u": "http://" + ln.Addr().String() + "/hook"}, nil)
		if err != nil {
			return err
		}
	}
	e.rules = r
	return nil
}

// drainDeliveries waits until no delivery is due or retrying, so that one
// measurement's deliveries do not load the next; it reports how long that took.
func (e *benchEnv) drainDeliveries(ctx context.Context) (time.Duration, int64, error) {
	start := time.Now()
	for {
		var n int64
		err := e.crumbsDB.WithContext(ctx).Model(&models.Delivery{}).Where("status IN ?", []string{models.DeliveryPending, models.DeliveryRetrying}).Count(&n).Error
		if err != nil {
			return 0, 0, err
		}
		if n == 0 {
			return time.Since(start), e.rules.received.Load(), nil
		}
		if time.Since(start) > 10*time.Minute {
			return 0, 0, fmt.Errorf("%d deliveries still waiting after 10 minutes", n)
		}
		time.Sleep(200 * time.Millisecond)
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
