package main

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/99designs/gqlgen/client"
	"github.com/crumbs-dev/crumbs/models"
	"github.com/crumbs-dev/crumbs/models/modelstest"
	"gorm.io/gorm"
)

// fakeDNS answers the names a test sets, every other name with any (when
// set) or else as the system resolver does.
type fakeDNS struct {
	mu    sync.Mutex
	names map[string]netip.Addr
	any   netip.Addr
}

func (d *fakeDNS) set(name, addr string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.names[name] = netip.MustParseAddr(addr)
}

// answerAll makes every name not set resolve to addr ("": as the system resolver does).
func (d *fakeDNS) answerAll(addr string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.any = netip.Addr{}
	if addr != "" {
		d.any = netip.MustParseAddr(addr)
	}
}

func (d *fakeDNS) resolve(ctx context.Context, host string) ([]netip.Addr, error) {
	d.mu.Lock()
	a, ok := d.names[host]
	if !ok && d.any.IsValid() {
		a, ok = d.any, true
	}
	d.mu.Unlock()
	if ok {
		return []netip.Addr{a}, nil
	}
	return net.DefaultResolver.LookupNetIP(ctx, "ip", host)
}

// In production mode delivery URLs that reach the server's own networks are
// refused through the API when saved: loopback, RFC 1918, link-local and
// the metadata address, IPv6 loopback, ULA and link-local, IPv4-mapped
// IPv6, IPv4 in decimal, octal or hexadecimal forms, and a name that
// resolves to loopback. A name accepted when saved that later resolves to
// loopback (DNS rebinding) fails its attempts, and test deliveries, with
// an error saying so, and the receiver behind it is never connected to.
func TestProductionRefusesPrivateWebhookURLs(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *gorm.DB) {
		dns := &fakeDNS{names: map[string]netip.Addr{}}
		a := newAPI(t, db, func(c *config) { c.Webhooks.Guard.Resolve = dns.resolve }) // production mode
		if a.resolver.Automations.Guard().AllowPrivate {
			t.Fatal("production mode allows private webhook URLs")
		}
		app, key := a.createApp("Guarded")
		ownerID, err := a.tokenUser(a.ownerToken)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { deleteRules(t, db, models.Viewer{UserID: ownerID}, app) })
		a.ok(`mutation($a: ID!) { createEventDefinition(input: {appId: $a, code: "signup", name: "Signed up", color: "#00aa55"}) { id } }`, &map[string]any{}, client.Var("a", app))
		a.ok(`mutation($a: ID!) { createEventMatcher(appId: $a, input: {name: "Signups", code: "signup"}) { id } }`, &map[string]any{}, client.Var("a", app))
		const create = `mutation($a: ID!, $u: String!) { createAutomationRule(appId: $a, input: {name: "Hook", matcher: "Signups",
			actions: [{kind: webhook, url: $u}]}) { rule { id } secrets { action { id } } } }`

		private := []string{
			"http://127.0.0.1/hook", "http://127.8.9.10:8080/", "http://10.0.0.1/", "http://10.255.255.254/",
			"http://172.16.0.1/", "http://172.31.255.254/", "http://192.168.0.1/", "http://192.168.255.254/",
			"http://169.254.169.254/latest/meta-data/", "http://169.254.0.1/",
			"http://[::1]/", "http://[fc00::1]/", "http://[fd12:3456:789a::1]/", "http://[fe80::1]/", "http://[fe80::1%25eth0]/", "http://[febf::1]/",
			"http://[::ffff:127.0.0.1]/", "http://[::ffff:7f00:1]/", "http://[::ffff:10.0.0.1]/", "http://[::ffff:169.254.169.254]/",
			"http://2130706433/", "http://0177.0.0.1/", "http://0x7f.0.0.1/", "http://0x7f000001/", "http://127.1/", "http://017700000001/",
			"http://localhost/", "http://localhost:8080/hook", "https://LocalHost/",
		}
		numeric := []string{"http://2130706433/", "http://0177.0.0.1/", "http://0x7f.0.0.1/", "http://0x7f000001/", "http://127.1/", "http://017700000001/"}
		refuse := func(urls []string) {
			t.Helper()
			for _, u := range urls {
				e := a.refused("BAD_USER_INPUT", "actions.0.url", create, client.Var("a", app), client.Var("u", u))
				t.Logf("%s: %s", u, e.Message)
			}
		}
		refuse(private)
		// The numeric forms are refused for their form, whatever a resolver
		// (a wildcard record, a search domain) makes of them.
		dns.answerAll("93.184.216.34")
		refuse(numeric)
		dns.answerAll("")

		// A name that resolves to a public address when saved...
		recv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
		var conns atomic.Int32
		recv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
			if s == http.StateNew {
				conns.Add(1)
			}
		}
		recv.Start()
		defer recv.Close()
		port := recv.Listener.Addr().(*net.TCPAddr).Port
		dns.set("hooks.rebind.test", "93.184.216.34")
		var rule struct {
			CreateAutomationRule struct {
				Rule    struct{ ID string }
				Secrets []struct{ Action struct{ ID string } }
			}
		}
		a.ok(create, &rule, client.Var("a", app), client.Var("u", "http://hooks.rebind.test:"+strconv.Itoa(port)+"/hook"))
		ruleID, actionID := rule.CreateAutomationRule.Rule.ID, rule.CreateAutomationRule.Secrets[0].Action.ID
		// ... cannot be changed to a private one, nor given a private action.
		a.refused("BAD_USER_INPUT", "input.url", `mutation($a: ID!, $id: ID!) { updateAutomationAction(appId: $a, id: $id, input: {url: "http://127.0.0.1/"}) { id } }`,
			client.Var("a", app), client.Var("id", actionID))
		a.refused("BAD_USER_INPUT", "input.url", `mutation($a: ID!, $r: ID!) { addAutomationAction(appId: $a, ruleId: $r, input: {kind: webhook, url: "http://[::ffff:169.254.169.254]/"}) { signingSecret } }`,
			client.Var("a", app), client.Var("r", ruleID))

		// Then it resolves to the receiver on loopback: every connection is refused.
		dns.set("hooks.rebind.test", "127.0.0.1")
		a.ok(`mutation($a: ID!) { trigger(input: {appId: $a, deviceId: "d-1", code: "signup"}) { accepted } }`, &map[string]any{}, client.Var("a", app), as(key))
		var log struct {
			Deliveries struct {
				Edges []struct {
					Node struct {
						Status         string
						Attempts       int
						LastStatusCode int
						LastError      string
					}
				}
			}
		}
		for range 200 {
			a.ok(`query($a: ID!, $r: ID!) { deliveries(appId: $a, ruleId: $r) { edges { node { status attempts lastStatusCode lastError } } } }`, &log,
				client.Var("a", app), client.Var("r", ruleID))
			if len(log.Deliveries.Edges) == 1 && log.Deliveries.Edges[0].Node.Attempts > 0 {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if len(log.Deliveries.Edges) != 1 {
			t.Fatalf("deliveries %+v", log)
		}
		refusedLoopback := func(msg string) bool {
			return strings.Contains(msg, "refused") && strings.Contains(msg, "127.0.0.1 is a loopback")
		}
		if n := log.Deliveries.Edges[0].Node; n.Status != "retrying" || n.LastStatusCode != 0 || !refusedLoopback(n.LastError) {
			t.Fatalf("the attempt after the name rebound to loopback: %+v", n)
		}
		var tested struct {
			SendTestDelivery struct {
				StatusCode int
				Error      string
			}
		}
		a.ok(`mutation($a: ID!, $id: ID!) { sendTestDelivery(appId: $a, actionId: $id) { statusCode error } }`, &tested,
			client.Var("a", app), client.Var("id", actionID))
		if tested.SendTestDelivery.StatusCode != 0 || !refusedLoopback(tested.SendTestDelivery.Error) {
			t.Fatalf("test delivery after the name rebound to loopback: %+v", tested.SendTestDelivery)
		}
		if n := conns.Load(); n != 0 {
			t.Fatalf("the receiver behind the rebound name got %d connections", n)
		}
	})
}
