package main

import (
	"encoding/json"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/99designs/gqlgen/client"
	"github.com/crumbs-dev/crumbs/models"
	"github.com/crumbs-dev/crumbs/models/modelstest"
	"gorm.io/gorm"
)

// A Slack webhook's path is its credential, and Go's transport errors
// print the whole URL: what the API answers of a delivery to a Slack
// action on a port where nothing listens (the delivery log, its attempts,
// a test delivery) names its scheme and host only.
func TestTransportErrorsHideTheURL(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *gorm.DB) {
		a := newAPI(t, db, func(c *config) { c.Webhooks.Guard.AllowPrivate = true; c.Webhooks.Backoff = time.Hour })
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		closed := l.Addr().String()
		l.Close()
		var created createdApp
		a.ok(`mutation { createApp(input: {name: "Closed"}) { app { id } secretKey } }`, &created)
		app, key := created.CreateApp.App.ID, created.CreateApp.SecretKey
		ownerID, err := a.tokenUser(a.ownerToken)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { deleteRules(t, db, models.Viewer{UserID: ownerID}, app) })
		a.ok(`mutation($a: ID!) { createEventDefinition(input: {appId: $a, code: "signup", name: "Signed up", color: "#00aa55"}) { id } }`, &map[string]any{}, client.Var("a", app))
		a.ok(`mutation($a: ID!) { createEventMatcher(appId: $a, input: {name: "Signups", code: "signup"}) { id } }`, &map[string]any{}, client.Var("a", app))
		var rule struct {
			CreateAutomationRule struct {
				Secrets []struct{ Action struct{ ID string } }
			}
		}
		a.ok(`mutation($a: ID!, $u: String!) { createAutomationRule(appId: $a, input: {name: "To Slack", matcher: "Signups",
			actions: [{kind: slack, url: $u}]}) { secrets { action { id } } } }`, &rule,
			client.Var("a", app), client.Var("u", "http://"+closed+"/services/T0SECRET/B0SECRET/XXXXSECRETXXXX"))
		a.ok(`mutation($a: ID!) { trigger(input: {appId: $a, deviceId: "d-1", code: "signup"}) { accepted } }`, &map[string]any{}, client.Var("a", app), as(key))

		var answer []byte
		for range 200 {
			raw, _ := a.do(`query($a: ID!) { deliveries(appId: $a) { edges { node { lastError attemptLog { error } action { url } } } } }`, client.Var("a", app))
			answer, _ = json.Marshal(raw)
			if strings.Contains(string(answer), "connection refused") {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if !strings.Contains(string(answer), `Post \"http://`+closed+`\": dial tcp `+closed+`: connect: connection refused`) {
			t.Fatalf("the delivery log does not say what failed: %s", answer)
		}
		var tested struct{ SendTestDelivery struct{ Error string } }
		a.ok(`mutation($a: ID!, $id: ID!) { sendTestDelivery(appId: $a, actionId: $id) { error } }`, &tested,
			client.Var("a", app), client.Var("id", rule.CreateAutomationRule.Secrets[0].Action.ID))
		if !strings.Contains(tested.SendTestDelivery.Error, "connection refused") {
			t.Fatalf("sendTestDelivery answered %q", tested.SendTestDelivery.Error)
		}
		for _, text := range []string{string(answer), tested.SendTestDelivery.Error} {
			for _, secret := range []string{"services", "SECRET"} {
				if strings.Contains(text, secret) {
					t.Errorf("the API shows %q: %s", secret, text)
				}
			}
		}
	})
}
