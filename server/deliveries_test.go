package main

import (
	"encoding/base64"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/99designs/gqlgen/client"
	"github.com/crumbs-dev/crumbs/models"
	"github.com/crumbs-dev/crumbs/models/modelstest"
	"gorm.io/gorm"
)

// automationApp is an app with a matcher and the rules a test makes in it.
type automationApp struct {
	a     *api
	app   string // public id
	appID uint64
}

func newAutomationApp(t *testing.T, a *api, name string) *automationApp {
	t.Helper()
	app, _ := a.createApp(name)
	ownerID, err := a.tokenUser(a.ownerToken)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { deleteRules(t, a.db, models.Viewer{UserID: ownerID}, app) })
	var appID uint64
	if err := a.db.Table("apps").Where("public_id = ?", app).Pluck("id", &appID).Error; err != nil || appID == 0 {
		t.Fatal(appID, err)
	}
	a.ok(`mutation($a: ID!) { createEventDefinition(input: {appId: $a, code: "signup", name: "Signed up"}) { id } }`, &map[string]any{}, client.Var("a", app))
	a.ok(`mutation($a: ID!) { createEventMatcher(appId: $a, input: {name: "Signups", code: "signup"}) { id } }`, &map[string]any{}, client.Var("a", app))
	return &automationApp{a: a, app: app, appID: appID}
}

// rule makes a rule with webhooks to the URLs and returns its id and its
// actions' ids.
func (x *automationApp) rule(name string, urls ...string) (uint64, []uint64) {
	x.a.t.Helper()
	actions := make([]map[string]any, len(urls))
	for i, u := range urls {
		actions[i] = map[string]any{"kind": "webhook", "url": u}
	}
	var out struct {
		CreateAutomationRule struct {
			Rule    struct{ ID string }
			Secrets []struct{ Action struct{ ID string } }
		}
	}
	x.a.ok(`mutation($a: ID!, $n: String!, $acts: [AutomationActionInput!]!) { createAutomationRule(appId: $a, input: {name: $n, matcher: "Signups",
		actions: $acts}) { rule { id } secrets { action { id } } } }`, &out, client.Var("a", x.app), client.Var("n", name), client.Var("acts", actions))
	ruleID, _ := models.ParseID("id", out.CreateAutomationRule.Rule.ID)
	var ids []uint64
	for _, s := range out.CreateAutomationRule.Secrets {
		id, _ := models.ParseID("id", s.Action.ID)
		ids = append(ids, id)
	}
	return ruleID, ids
}

// deliveryPage is one page of the log as the API answers it.
type deliveryPage struct {
	Deliveries struct {
		Edges []struct {
			Cursor string
			Node   struct {
				ID     string
				Status string
				Rule   struct{ ID string }
			}
		}
		PageInfo struct {
			HasNextPage bool
			EndCursor   *string
		}
	}
}

const deliveriesQuery = `query($a: ID!, $r: ID, $s: DeliveryStatus, $f: Int, $after: String) {
	deliveries(appId: $a, ruleId: $r, status: $s, first: $f, after: $after) {
		edges { cursor node { id status rule { id } } } pageInfo { hasNextPage endCursor } } }`

// The delivery log pages newest first, by cursor, with no delivery twice
// and none left out, alone or filtered by rule and status; a page size
// outside 1 to 100 or a cursor that is not one is BAD_USER_INPUT naming the
// argument.
func TestDeliveriesPaging(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *gorm.DB) {
		a := newAPI(t, db, func(c *config) { c.Webhooks.Guard.AllowPrivate = true })
		x := newAutomationApp(t, a, "Paging")
		ruleA, actionsA := x.rule("A", "http://127.0.0.1:9/a1", "http://127.0.0.1:9/a2")
		ruleB, actionsB := x.rule("B", "http://127.0.0.1:9/b")
		// 23 deliveries of made-up events, none of them due: the
		// dispatcher leaves them as they are.
		statuses := []string{models.DeliverySucceeded, models.DeliveryDead, models.DeliveryRetrying, models.DeliveryPending}
		never := time.Now().Add(24 * time.Hour).UnixMilli()
		type row struct {
			id     uint64
			rule   uint64
			status string
		}
		var rows []row
		for i := range 23 {
			rule, action := ruleA, actionsA[i%2]
			if i%3 == 2 {
				rule, action = ruleB, actionsB[0]
			}
			now := time.Now()
			d := &models.Delivery{AppID: x.appID, RuleID: rule, ActionID: action, EventID: uint64(900_000 + i), Status: statuses[i%len(statuses)],
				DueAt: never, CreatedAt: now, UpdatedAt: now}
			if err := db.Create(d).Error; err != nil {
				t.Fatal(err)
			}
			rows = append(rows, row{d.ID, rule, d.Status})
		}
		want := func(keep func(row) bool) []string {
			var ids []string
			for i := len(rows) - 1; i >= 0; i-- {
				if keep(rows[i]) {
					ids = append(ids, models.FormatID(rows[i].id))
				}
			}
			return ids
		}
		// pages reads every page of first deliveries and checks each.
		pages := func(first int, vars ...client.Option) []string {
			t.Helper()
			var ids []string
			var after *string
			for n := 0; ; n++ {
				var p deliveryPage
				a.ok(deliveriesQuery, &p, append(vars, client.Var("a", x.app), client.Var("f", first), client.Var("after", after))...)
				edges := p.Deliveries.Edges
				if len(edges) > first || (p.Deliveries.PageInfo.HasNextPage && len(edges) != first) {
					t.Fatalf("page %d: %d deliveries, hasNextPage %v, first %d", n, len(edges), p.Deliveries.PageInfo.HasNextPage, first)
				}
				for _, e := range edges {
					ids = append(ids, e.Node.ID)
				}
				if len(edges) > 0 && (p.Deliveries.PageInfo.EndCursor == nil || *p.Deliveries.PageInfo.EndCursor != edges[len(edges)-1].Cursor) {
					t.Fatalf("page %d: endCursor %v, the last edge's cursor %q", n, p.Deliveries.PageInfo.EndCursor, edges[len(edges)-1].Cursor)
				}
				if !p.Deliveries.PageInfo.HasNextPage {
					return ids
				}
				after = p.Deliveries.PageInfo.EndCursor
			}
		}
		for _, tc := range []struct {
			name  string
			first int
			vars  []client.Option
			keep  func(row) bool
		}{
			{"all, 5 a page", 5, nil, func(row) bool { return true }},
			{"all, 1 a page", 1, nil, func(row) bool { return true }},
			{"all in one page", 100, nil, func(row) bool { return true }},
			{"dead", 2, []client.Option{client.Var("s", "dead")}, func(r row) bool { return r.status == models.DeliveryDead }},
			{"rule B", 3, []client.Option{client.Var("r", models.FormatID(ruleB))}, func(r row) bool { return r.rule == ruleB }},
			{"rule A, retrying", 2, []client.Option{client.Var("r", models.FormatID(ruleA)), client.Var("s", "retrying")},
				func(r row) bool { return r.rule == ruleA && r.status == models.DeliveryRetrying }},
		} {
			got, want := pages(tc.first, tc.vars...), want(tc.keep)
			if len(want) < 2 {
				t.Fatalf("%s: the test's data gives %d deliveries", tc.name, len(want))
			}
			if !slices.Equal(got, want) {
				t.Fatalf("%s: paged\n%v\nwant, newest first,\n%v", tc.name, got, want)
			}
		}

		for _, first := range []int{0, -1, 101, 1 << 30} {
			a.refused(models.CodeBadUserInput, "first", deliveriesQuery, client.Var("a", x.app), client.Var("f", first))
		}
		b64 := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
		cursor := b64(models.FormatID(rows[5].id))
		for _, after := range []string{"not a cursor", cursor + "=", b64("abc"), b64("0"), b64("-5"), models.FormatID(rows[5].id)} {
			a.refused(models.CodeBadUserInput, "after", deliveriesQuery, client.Var("a", x.app), client.Var("f", 10), client.Var("after", after))
		}
		a.refused(models.CodeBadUserInput, "ruleId", deliveriesQuery, client.Var("a", x.app), client.Var("f", 10), client.Var("r", "rule-1"))
		a.refused(models.CodeNotFound, "", deliveriesQuery, client.Var("a", x.app), client.Var("f", 10), client.Var("r", fmt.Sprint(ruleB+1000)))
		// The other arguments named ruleId are named so in their refusals too.
		a.refused(models.CodeBadUserInput, "ruleId", `mutation($a: ID!, $range: RangeInput!) { replayRule(appId: $a, ruleId: "rule-1", range: $range) { events } }`,
			client.Var("a", x.app), client.Var("range", lastWeek()))
		a.refused(models.CodeBadUserInput, "ruleId", `mutation($a: ID!) { addAutomationAction(appId: $a, ruleId: "rule-1", input: {kind: webhook, url: "http://127.0.0.1:9/"}) {
			action { id } } }`, client.Var("a", x.app))
	})
}

// replayDelivery answers the delivery due now with no attempts counted;
// CONFLICT when its action is disabled, NOT_FOUND when it was deleted; and a
// delivery whose rule or action is gone by the time its fields are read is
// NOT_FOUND too, not an internal error.
func TestReplayDeliveryAnswers(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *gorm.DB) {
		a := newAPI(t, db, func(c *config) { c.Webhooks.Guard.AllowPrivate = true })
		x := newAutomationApp(t, a, "Replays")
		ruleID, actions := x.rule("A", "http://127.0.0.1:9/a")
		now := time.Now()
		dead := &models.Delivery{AppID: x.appID, RuleID: ruleID, ActionID: actions[0], EventID: 900_001, Status: models.DeliveryDead, Attempts: 12,
			LastStatusCode: 503, CreatedAt: now, UpdatedAt: now}
		orphan := &models.Delivery{AppID: x.appID, RuleID: ruleID + 1000, ActionID: actions[0] + 1000, EventID: 900_002, Status: models.DeliveryDead,
			CreatedAt: now, UpdatedAt: now}
		for _, d := range []*models.Delivery{dead, orphan} {
			if err := db.Create(d).Error; err != nil {
				t.Fatal(err)
			}
		}
		t.Cleanup(func() { db.Delete(&models.Delivery{}, orphan.ID) })
		const replay = `mutation($a: ID!, $id: ID!) { replayDelivery(appId: $a, id: $id) { id status attempts nextAttemptAt rule { id } action { id } } }`
		var out struct {
			ReplayDelivery struct {
				ID, Status    string
				Attempts      int
				NextAttemptAt *string
				Rule, Action  struct{ ID string }
			}
		}
		a.ok(replay, &out, client.Var("a", x.app), client.Var("id", models.FormatID(dead.ID)))
		r := out.ReplayDelivery
		if r.Status != "pending" || r.Attempts != 0 || r.NextAttemptAt == nil {
			t.Fatalf("replayDelivery answered %+v; want pending, 0 attempts, due now", r)
		}
		if due, err := time.Parse(time.RFC3339Nano, *r.NextAttemptAt); err != nil || due.After(time.Now()) {
			t.Fatalf("nextAttemptAt %q (%v); want now", *r.NextAttemptAt, err)
		}

		a.ok(`mutation($a: ID!, $id: ID!) { updateAutomationAction(appId: $a, id: $id, input: {enabled: false}) { enabled } }`, &map[string]any{},
			client.Var("a", x.app), client.Var("id", models.FormatID(actions[0])))
		if e := a.refused(models.CodeConflict, "", replay, client.Var("a", x.app), client.Var("id", models.FormatID(dead.ID))); !strings.Contains(e.Message, "disabled") {
			t.Fatalf("the conflict says %q", e.Message)
		}

		// The rule's fields of a delivery whose rule is gone (as when it is
		// deleted between the replay and the read of its fields).
		a.refused(models.CodeNotFound, "", `query($a: ID!) { deliveries(appId: $a, status: dead, first: 1) { edges { node { rule { id } } } } }`, client.Var("a", x.app))
		a.refused(models.CodeNotFound, "", `query($a: ID!) { deliveries(appId: $a, status: dead, first: 1) { edges { node { action { id } } } } }`, client.Var("a", x.app))

		a.ok(`mutation($a: ID!, $id: ID!) { deleteAutomationRule(appId: $a, id: $id) { id } }`, &map[string]any{},
			client.Var("a", x.app), client.Var("id", models.FormatID(ruleID)))
		a.refused(models.CodeNotFound, "", replay, client.Var("a", x.app), client.Var("id", models.FormatID(dead.ID)))
	})
}
