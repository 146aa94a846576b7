package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/99designs/gqlgen/client"
	"github.com/crumbs-dev/crumbs/models"
	"github.com/crumbs-dev/crumbs/models/modelstest"
	"gorm.io/gorm"
)

// webhooksDir holds the receiver script and its node_modules, installed by
// .ci/setup-webhooks.
var webhooksDir = filepath.Join("testdata", "webhooks")

// verifiedDelivery is one delivery the Node receiver checked.
type verifiedDelivery struct {
	ID       string
	Verified []bool
	Payload  map[string]any
}

// nodeReceiver is the Node process that verifies deliveries with the
// standardwebhooks reference library.
type nodeReceiver struct {
	url        string
	deliveries chan verifiedDelivery
}

func startNodeReceiver(t *testing.T) *nodeReceiver {
	t.Helper()
	node, err := exec.LookPath("node")
	if _, serr := os.Stat(filepath.Join(webhooksDir, "node_modules", "standardwebhooks")); err != nil || serr != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("node or the standardwebhooks library is missing; run .ci/setup-webhooks")
		}
		t.Skip("node or the standardwebhooks library is missing; run .ci/setup-webhooks")
	}
	cmd := exec.Command(node, "receiver.mjs")
	cmd.Dir = webhooksDir
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stdin.Close() // the receiver exits when its stdin ends
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill() // ours, by its pid
		}
	})
	lines := bufio.NewScanner(stdout)
	lines.Buffer(make([]byte, 1<<20), 1<<20)
	if !lines.Scan() {
		t.Fatal("the receiver did not start")
	}
	var hello struct{ Port int }
	if err := json.Unmarshal(lines.Bytes(), &hello); err != nil || hello.Port == 0 {
		t.Fatalf("receiver said %q", lines.Text())
	}
	r := &nodeReceiver{url: fmt.Sprintf("http://127.0.0.1:%d", hello.Port), deliveries: make(chan verifiedDelivery, 100)}
	go func() {
		for lines.Scan() {
			var d verifiedDelivery
			if json.Unmarshal(lines.Bytes(), &d) == nil {
				r.deliveries <- d
			}
		}
	}()
	return r
}

func (r *nodeReceiver) setSecrets(t *testing.T, secrets ...string) {
	t.Helper()
	b, _ := json.Marshal(secrets)
	resp, err := http.Post(r.url+"/secrets", "application/json", strings.NewReader(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
}

func (r *nodeReceiver) next(t *testing.T) verifiedDelivery {
	t.Helper()
	select {
	case d := <-r.deliveries:
		return d
	case <-time.After(20 * time.Second):
		t.Fatal("no delivery reached the receiver")
		return verifiedDelivery{}
	}
}

// Deliveries verify with the Standard Webhooks reference library, by the
// new and the old secrets alike for a day after each rotation; the whole life
// of a rule goes through GraphQL, and /metrics counts the deliveries.
func TestWebhooksVerifyWithStandardWebhooks(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *gorm.DB) {
		recv := startNodeReceiver(t)
		a := newAPI(t, db, func(c *config) {
			c.Webhooks.Guard.AllowPrivate = true
			c.MetricsToken = testMetricsToken
		})
		srv := httptest.NewServer(a.handler)
		defer srv.Close()
		var created createdApp
		a.ok(`mutation { createApp(input: {name: "Hooks"}) { app { id } secretKey } }`, &created)
		app, key := created.CreateApp.App.ID, created.CreateApp.SecretKey
		ownerID, err := a.tokenUser(a.ownerToken)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { deleteRules(t, db, models.Viewer{UserID: ownerID}, app) })
		a.ok(`mutation($a: ID!) { createEventDefinition(input: {appId: $a, code: "signup", name: "Signed up", color: "#00aa55"}) { id } }`, &map[string]any{}, client.Var("a", app))
		a.ok(`mutation($a: ID!) { createEventMatcher(appId: $a, input: {name: "Pro signups", code: "signup",
			rules: [{field: "properties.plan", operator: equals, value: "pro"}]}) { id } }`, &map[string]any{}, client.Var("a", app))

		// Tried first on the past: nothing matched yet, nothing sent.
		var tried struct{ TestRule struct{ Matched int } }
		a.ok(`query($a: ID!, $r: RangeInput!) { testRule(appId: $a, input: {matcher: "Pro signups"}, range: $r) { matched } }`, &tried,
			client.Var("a", app), client.Var("r", lastWeek()))
		if tried.TestRule.Matched != 0 {
			t.Fatalf("testRule matched %d", tried.TestRule.Matched)
		}
		var rule struct {
			CreateAutomationRule struct {
				Rule    struct{ ID string }
				Secrets []struct {
					Action        struct{ ID string }
					SigningSecret string
				}
			}
		}
		a.ok(`mutation($a: ID!, $u: String!) { createAutomationRule(appId: $a, input: {name: "To CRM", matcher: "Pro signups",
			actions: [{kind: webhook, url: $u, headers: [{name: "Authorization", value: "Bearer crm-secret-token"}]}]}) {
			rule { id } secrets { action { id } signingSecret } } }`, &rule, client.Var("a", app), client.Var("u", recv.url+"/hook"))
		oldSecret, actionID := rule.CreateAutomationRule.Secrets[0].SigningSecret, rule.CreateAutomationRule.Secrets[0].Action.ID
		recv.setSecrets(t, oldSecret)

		trigger := func(plan string) {
			a.ok(`mutation($a: ID!, $p: JSON) { trigger(input: {appId: $a, deviceId: "d-1", code: "signup", properties: $p}) { accepted } }`,
				&map[string]any{}, client.Var("a", app), client.Var("p", map[string]any{"plan": plan}), as(key))
		}
		trigger("free")
		trigger("pro")
		d := recv.next(t)
		if len(d.Verified) != 1 || !d.Verified[0] {
			t.Fatalf("standardwebhooks did not verify %+v", d)
		}
		event := d.Payload["data"].(map[string]any)["event"].(map[string]any)
		if event["name"] != "Signed up" || event["color"] != "#00AA55" || event["properties"].(map[string]any)["plan"] != "pro" {
			t.Fatalf("payload %+v", d.Payload)
		}

		// Rotation: for a day every delivery verifies by either secret.
		var rotated struct {
			RotateActionSecret struct{ SigningSecret string }
		}
		a.ok(`mutation($a: ID!, $id: ID!) { rotateActionSecret(appId: $a, id: $id) { signingSecret } }`, &rotated,
			client.Var("a", app), client.Var("id", actionID))
		newSecret := rotated.RotateActionSecret.SigningSecret
		if newSecret == oldSecret || !strings.HasPrefix(newSecret, "whsec_") {
			t.Fatalf("rotated secret %q", newSecret)
		}
		recv.setSecrets(t, oldSecret, newSecret)
		trigger("pro")
		if d := recv.next(t); len(d.Verified) != 2 || !d.Verified[0] || !d.Verified[1] {
			t.Fatalf("during the rotation, verified by (old, new) = %v", d.Verified)
		}

		// A second rotation within the day: receivers still on the first
		// secret verify too, each retired secret for a day from its rotation.
		var again struct {
			RotateActionSecret struct {
				SigningSecret string
				Action        struct{ RetiredSecretExpiries []string }
			}
		}
		a.ok(`mutation($a: ID!, $id: ID!) { rotateActionSecret(appId: $a, id: $id) { signingSecret action { retiredSecretExpiries } } }`, &again,
			client.Var("a", app), client.Var("id", actionID))
		newerSecret := again.RotateActionSecret.SigningSecret
		var expiries []time.Time
		for _, s := range again.RotateActionSecret.Action.RetiredSecretExpiries {
			at, err := time.Parse(time.RFC3339Nano, s)
			if err != nil {
				t.Fatal(err)
			}
			expiries = append(expiries, at)
		}
		if len(expiries) != 2 || !expiries[0].Before(expiries[1]) || time.Until(expiries[0]) < 23*time.Hour || time.Until(expiries[1]) > 24*time.Hour {
			t.Fatalf("retiredSecretExpiries %v, want two, a day after each rotation", expiries)
		}
		recv.setSecrets(t, oldSecret, newSecret, newerSecret)
		trigger("pro")
		if d := recv.next(t); len(d.Verified) != 3 || !d.Verified[0] || !d.Verified[1] || !d.Verified[2] {
			t.Fatalf("after two rotations, verified by (first, second, third) = %v", d.Verified)
		}
		var tested struct {
			SendTestDelivery struct {
				StatusCode   int
				ResponseBody string
			}
		}
		a.ok(`mutation($a: ID!, $id: ID!) { sendTestDelivery(appId: $a, actionId: $id) { statusCode responseBody } }`, &tested,
			client.Var("a", app), client.Var("id", actionID))
		if tested.SendTestDelivery.StatusCode != 200 || tested.SendTestDelivery.ResponseBody != "verified" {
			t.Fatalf("sendTestDelivery %+v", tested.SendTestDelivery)
		}
		if d := recv.next(t); !strings.HasPrefix(d.ID, "msg_test_") || !d.Verified[0] || !d.Verified[2] {
			t.Fatalf("test delivery %+v", d)
		}

		// The log shows the three deliveries; the header's value and the
		// secrets are nowhere to be read.
		var log struct {
			Deliveries struct {
				Edges []struct {
					Node struct {
						Status     string
						WebhookID  string
						AttemptLog []struct{ StatusCode int }
						Action     struct {
							URL     string
							Headers []struct{ Name, ValueHint string }
						}
					}
				}
			}
		}
		var raw map[string]any
		for range 100 {
			raw, _ = a.do(`query($a: ID!) { deliveries(appId: $a, status: succeeded) { edges { node { status webhookId attemptLog { statusCode }
				action { url headers { name valueHint } retiredSecretExpiries } } } } }`, client.Var("a", app))
			b, _ := json.Marshal(raw)
			json.Unmarshal(b, &log)
			if len(log.Deliveries.Edges) == 3 {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if len(log.Deliveries.Edges) != 3 {
			t.Fatalf("delivery log %+v", log)
		}
		b, _ := json.Marshal(raw)
		for _, secret := range []string{"crm-secret-token", oldSecret, newSecret, newerSecret} {
			if strings.Contains(string(b), secret) {
				t.Fatalf("the delivery log shows %q: %s", secret, b)
			}
		}
		n := log.Deliveries.Edges[0].Node
		if len(n.AttemptLog) != 1 || n.AttemptLog[0].StatusCode != 200 || n.Action.Headers[0].Name != "Authorization" {
			t.Fatalf("delivery %+v", n)
		}

		families := scrape(t, srv.URL+"/metrics", testMetricsToken)
		if v, _ := sample(families, "crumbs_webhook_deliveries_total", "status", "succeeded"); v < 2 {
			t.Fatalf("crumbs_webhook_deliveries_total{status=succeeded} = %v", v)
		}
		if _, ok := families["crumbs_derived_lag_seconds"]; !ok {
			t.Fatal("no crumbs_derived_lag_seconds")
		}
	})
}
