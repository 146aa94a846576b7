package main

import (
	"strings"
	"testing"

	"github.com/99designs/gqlgen/client"
	"github.com/crumbs-dev/crumbs/models"
	"github.com/crumbs-dev/crumbs/models/modelstest"
	"gorm.io/gorm"
)

// A headers edit made against the action's url as read, sent after
// another editor moved the action to another origin, is CONFLICT on
// input.headers: the key meant for the first CRM does not go to the
// second. Made against where the action is now, it goes through.
func TestHeadersEditAfterAMoveIsConflict(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *gorm.DB) {
		a := newAPI(t, db, func(c *config) { c.Webhooks.Guard.AllowPrivate = true })
		x := newAutomationApp(t, a, "Header edits")
		_, actions := x.rule("CRM", "http://127.0.0.1:9/crm/hooks")
		id := models.FormatID(actions[0])
		var read struct {
			AutomationRules []struct{ Actions []struct{ URL string } }
		}
		readURL := func() string {
			a.ok(`query($a: ID!) { automationRules(appId: $a) { actions { url } } }`, &read, client.Var("a", x.app))
			return read.AutomationRules[0].Actions[0].URL
		}
		seen := readURL()
		const edit = `mutation($a: ID!, $id: ID!, $o: String, $h: [HeaderInput!]) {
			updateAutomationAction(appId: $a, id: $id, input: {headers: $h, headersOrigin: $o}) { headers { name valueHint } } }`
		a.ok(`mutation($a: ID!, $id: ID!) { updateAutomationAction(appId: $a, id: $id, input: {url: "http://127.0.0.1:10/other", headers: []}) { id } }`,
			&map[string]any{}, client.Var("a", x.app), client.Var("id", id))
		e := a.refused("CONFLICT", "input.headers", edit, client.Var("a", x.app), client.Var("id", id), client.Var("o", seen),
			client.Var("h", []map[string]any{{"name": "X-Api-Key", "value": "crm_live_0123456789"}}))
		if !strings.Contains(e.Message, "http://127.0.0.1:10") || !strings.Contains(e.Message, "http://127.0.0.1:9") {
			t.Errorf("message %q does not say where the action is and where the headers were for", e.Message)
		}
		var out struct {
			UpdateAutomationAction struct {
				Headers []struct{ Name, ValueHint string }
			}
		}
		a.ok(edit, &out, client.Var("a", x.app), client.Var("id", id), client.Var("o", readURL()),
			client.Var("h", []map[string]any{{"name": "X-Api-Key", "value": "other_live_0123456789"}}))
		if h := out.UpdateAutomationAction.Headers; len(h) != 1 || h[0].ValueHint != "…89" {
			t.Fatalf("headers %+v", h)
		}
		a.refused("BAD_USER_INPUT", "input.headersOrigin", edit, client.Var("a", x.app), client.Var("id", id), client.Var("o", "crm.example"),
			client.Var("h", []map[string]any{}))
	})
}
