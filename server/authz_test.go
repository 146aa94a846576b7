package main

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/99designs/gqlgen/client"
	"github.com/crumbs-dev/crumbs/graph"
	"github.com/crumbs-dev/crumbs/graph/generated"
	"github.com/crumbs-dev/crumbs/models"
	"github.com/crumbs-dev/crumbs/models/modelstest"
	"gorm.io/gorm"
)

// The roles every operation is tried as.
const (
	anon   = "anonymous"
	other  = "member of another app"
	viewer = "viewer"
	editor = "editor"
	owner  = "owner"
)

var roles = []string{anon, other, viewer, editor, owner}

// expect gives the outcome per role: an error code, or "" for success.
type expect map[string]string

var (
	public     = expect{}
	signedIn   = expect{anon: "UNAUTHENTICATED"}
	readApp    = expect{anon: "UNAUTHENTICATED", other: "NOT_FOUND"}
	editApp    = expect{anon: "UNAUTHENTICATED", other: "NOT_FOUND", viewer: "FORBIDDEN"}
	ownApp     = expect{anon: "UNAUTHENTICATED", other: "NOT_FOUND", viewer: "FORBIDDEN", editor: "FORBIDDEN"}
	needsKey   = expect{anon: "UNAUTHENTICATED", other: "UNAUTHENTICATED", viewer: "UNAUTHENTICATED", editor: "UNAUTHENTICATED", owner: "UNAUTHENTICATED"}
	uniqueSeq  atomic.Int64
	markerApp  = "Alpha Secret Site"
	markerLead = "lead-alpha@example.com"
)

func unique(prefix string) string { return fmt.Sprintf("%s%d", prefix, uniqueSeq.Add(1)) }

// fixture is app A with a member of each role, app B owned by "other", and
// some data in each. Markers of each app must never reach the other's users.
type fixture struct {
	a           *api
	appA, appB  string
	secretA     string
	tokens      map[string]string
	userIDs     map[string]uint64
	defA, leadA string
	markersB    []string
}

func newFixture(t *testing.T, db *gorm.DB) *fixture {
	a := newAPI(t, db)
	f := &fixture{a: a, tokens: map[string]string{}, userIDs: map[string]uint64{}}
	ctx := context.Background()
	for _, r := range roles[1:] {
		f.tokens[r] = a.signUp()
		id, err := a.tokenUser(f.tokens[r])
		if err != nil {
			t.Fatal(err)
		}
		f.userIDs[r] = id
	}
	var created createdApp
	a.ok(`mutation($n: String!) { createApp(input: {name: $n}) { app { id } secretKey } }`, &created, client.Var("n", markerApp), as(f.tokens[owner]))
	f.appA, f.secretA = created.CreateApp.App.ID, created.CreateApp.SecretKey
	for _, r := range []string{viewer, editor} {
		ownerV := models.Viewer{UserID: f.userIDs[owner]}
		email := a.emailOf(f.userIDs[r])
		if _, err := models.AddMember(ctx, db, ownerV, f.appA, email, models.Role(r)); err != nil {
			t.Fatal(err)
		}
	}
	a.ok(`mutation($n: String!) { createApp(input: {name: $n}) { app { id } } }`, &created, client.Var("n", "Bravo Secret Site"), as(f.tokens[other]))
	f.appB = created.CreateApp.App.ID
	f.markersB = []string{f.appB, "Bravo Secret Site", "lead-bravo@example.com", "bravo_code"}
	var def struct{ CreateEventDefinition struct{ ID string } }
	a.ok(`mutation($a: ID!) { createEventDefinition(input: {appId: $a, code: "bravo_code", name: "Bravo"}) { id } }`, &def, client.Var("a", f.appB), as(f.tokens[other]))
	f.identify(f.appB, "lead-bravo@example.com")
	a.ok(`mutation($a: ID!) { createEventDefinition(input: {appId: $a, code: "alpha_code", name: "Alpha"}) { id } }`, &def, client.Var("a", f.appA), as(f.tokens[owner]))
	f.defA = def.CreateEventDefinition.ID
	f.leadA = f.identify(f.appA, markerLead)
	return f
}

// identify makes a lead through the browser path and returns its id.
func (f *fixture) identify(appID, email string) string {
	var out struct {
		Identify struct{ Lead struct{ ID string } }
	}
	f.a.ok(`mutation($a: ID!, $d: String!, $e: String!) { identify(input: {appId: $a, deviceId: $d, email: $e}) { lead { id } } }`, &out,
		client.Var("a", appID), client.Var("d", unique("dev-")), client.Var("e", email), anonymous(), client.AddHeader("Origin", "https://site.example"))
	return out.Identify.Lead.ID
}

func (a *api) tokenUser(token string) (uint64, error) {
	var me struct{ Me struct{ ID string } }
	a.ok(`{ me { id } }`, &me, as(token))
	return models.ParseID("id", me.Me.ID)
}

func (a *api) emailOf(userID uint64) string {
	u, err := models.UserByID(context.Background(), a.db, userID)
	if err != nil {
		a.t.Fatal(err)
	}
	return u.Email
}

// operation is one query or mutation, made ready for one attempt.
type operation struct {
	want  expect
	query func(f *fixture) (string, []client.Option)
}

func vars(kv ...any) []client.Option {
	var opts []client.Option
	for i := 0; i < len(kv); i += 2 {
		opts = append(opts, client.Var(kv[i].(string), kv[i+1]))
	}
	return opts
}

// afterOperation repairs what an operation ended for the ones after it.
var afterOperation = map[string]func(f *fixture){
	"Mutation.logoutEverywhere": (*fixture).signInAgain,
}

// signInAgain gives every role a new access token.
func (f *fixture) signInAgain() {
	for _, r := range roles[1:] {
		var out struct{ Login struct{ AccessToken string } }
		f.a.ok(`mutation($e: String!) { login(email: $e, password: "correct horse battery") { accessToken } }`, &out,
			client.Var("e", f.a.emailOf(f.userIDs[r])), anonymous())
		f.tokens[r] = out.Login.AccessToken
	}
}

// operations lists every root field of the schema. TestEveryOperationIsInTheMatrix
// fails when the schema gains one that is not here.
var operations = map[string]operation{
	"Query.apps": {signedIn, func(f *fixture) (string, []client.Option) { return `{ apps { id name } }`, nil }},
	"Query.me":   {signedIn, func(f *fixture) (string, []client.Option) { return `{ me { id email } }`, nil }},
	"Query.app": {readApp, func(f *fixture) (string, []client.Option) {
		return `query($a: ID!) { app(id: $a) { id name eventDefinitions { code name } unknownCodes { code } } }`, vars("a", f.appA)
	}},
	"Query.checkAppKey": {needsKey, func(f *fixture) (string, []client.Option) {
		return `query($a: ID!) { checkAppKey(appId: $a) { appName } }`, vars("a", f.appA)
	}},
	"Query.eventDefinition": {readApp, func(f *fixture) (string, []client.Option) {
		return `query($id: ID!) { eventDefinition(id: $id) { code name appId } }`, vars("id", f.defA)
	}},
	"Query.lead": {readApp, func(f *fixture) (string, []client.Option) {
		return `query($id: ID!) { lead(id: $id) { email devices { id } timeline { edges { node { code } } } } }`, vars("id", f.leadA)
	}},
	"Query.device": {readApp, func(f *fixture) (string, []client.Option) {
		var dev string
		f.a.db.Model(&models.Device{}).Select("device_id").Where("lead_id = ?", f.leadA).Limit(1).Scan(&dev)
		return `query($a: ID!, $d: ID!) { device(appId: $a, deviceId: $d) { id lead { email } } }`, vars("a", f.appA, "d", dev)
	}},
	"Query.leads": {readApp, func(f *fixture) (string, []client.Option) {
		return `query($a: ID!) { leads(appId: $a) { edges { node { email } } } }`, vars("a", f.appA)
	}},
	"Query.leadByEmail": {readApp, func(f *fixture) (string, []client.Option) {
		return `query($a: ID!, $e: String!) { leadByEmail(appId: $a, email: $e) { email } }`, vars("a", f.appA, "e", markerLead)
	}},
	"Query.members": {ownApp, func(f *fixture) (string, []client.Option) {
		return `query($a: ID!) { members(appId: $a) { role user { email } } }`, vars("a", f.appA)
	}},
	"Mutation.createApp": {signedIn, func(f *fixture) (string, []client.Option) {
		return `mutation { createApp(input: {name: "Another"}) { app { id } } }`, nil
	}},
	"Mutation.updateApp": {ownApp, func(f *fixture) (string, []client.Option) {
		return `mutation($a: ID!) { updateApp(id: $a, input: {name: "Alpha Secret Site"}) { name } }`, vars("a", f.appA)
	}},
	"Mutation.rotateAppSecret": {ownApp, func(f *fixture) (string, []client.Option) {
		return `mutation($a: ID!) { rotateAppSecret(id: $a) { secretKey } }`, vars("a", f.appA)
	}},
	"Mutation.createEventDefinition": {editApp, func(f *fixture) (string, []client.Option) {
		return `mutation($a: ID!, $c: String!) { createEventDefinition(input: {appId: $a, code: $c, name: "New"}) { id } }`, vars("a", f.appA, "c", unique("code_"))
	}},
	"Mutation.updateEventDefinition": {editApp, func(f *fixture) (string, []client.Option) {
		return `mutation($id: ID!) { updateEventDefinition(id: $id, input: {name: "Alpha"}) { name } }`, vars("id", f.defA)
	}},
	"Mutation.deleteEventDefinition": {editApp, func(f *fixture) (string, []client.Option) {
		def, err := models.CreateEventDefinition(context.Background(), f.a.db, models.Viewer{UserID: f.userIDs[owner]}, f.appA,
			models.EventDefinitionInput{Code: ptrTo(unique("gone_")), Name: ptrTo("Gone")})
		if err != nil {
			f.a.t.Fatal(err)
		}
		return `mutation($id: ID!) { deleteEventDefinition(id: $id) { id } }`, vars("id", models.FormatID(def.ID))
	}},
	"Mutation.trigger": {public, func(f *fixture) (string, []client.Option) {
		return `mutation($a: ID!) { trigger(input: {appId: $a, deviceId: "d-trigger", code: "view"}) { accepted } }`, vars("a", f.appA)
	}},
	"Mutation.triggerBatch": {public, func(f *fixture) (string, []client.Option) {
		return `mutation($a: ID!) { triggerBatch(inputs: [{appId: $a, deviceId: "d-batch", code: "view"}, {appId: $a, deviceId: "d-batch", code: "click"}]) { accepted } }`, vars("a", f.appA)
	}},
	"Mutation.identify": {public, func(f *fixture) (string, []client.Option) {
		return `mutation($a: ID!, $e: String!) { identify(input: {appId: $a, deviceId: "d-ident", email: $e}) { moved } }`,
			append(vars("a", f.appA, "e", unique("someone")+"@example.com"), client.AddHeader("Origin", "https://site.example"))
	}},
	"Mutation.eraseLead": {editApp, func(f *fixture) (string, []client.Option) {
		email := unique("erase") + "@example.com"
		f.identify(f.appA, email)
		return `mutation($a: ID!, $e: String!) { eraseLead(appId: $a, email: $e) { erased } }`, vars("a", f.appA, "e", email)
	}},
	"Mutation.login": {public, func(f *fixture) (string, []client.Option) {
		email := unique("login") + "@example.com"
		models.CreateUser(context.Background(), f.a.db, email, "", "correct horse battery")
		return `mutation($e: String!) { login(email: $e, password: "correct horse battery") { accessToken } }`, vars("e", email)
	}},
	"Mutation.refreshToken": {public, func(f *fixture) (string, []client.Option) {
		return `mutation($r: String!) { refreshToken(refreshToken: $r) { accessToken } }`, vars("r", f.freshRefreshToken())
	}},
	"Mutation.logout": {public, func(f *fixture) (string, []client.Option) {
		return `mutation($r: String!) { logout(refreshToken: $r) }`, vars("r", f.freshRefreshToken())
	}},
	"Mutation.logoutEverywhere": {signedIn, func(f *fixture) (string, []client.Option) {
		return `mutation { logoutEverywhere }`, nil
	}},
	// A wrong current password: the access check comes first, and no
	// sign-in of the fixture ends.
	"Mutation.changePassword": {expect{anon: "UNAUTHENTICATED", other: "BAD_USER_INPUT", viewer: "BAD_USER_INPUT", editor: "BAD_USER_INPUT", owner: "BAD_USER_INPUT"},
		func(f *fixture) (string, []client.Option) {
			return `mutation { changePassword(currentPassword: "not the password", newPassword: "another good password") }`, nil
		}},
	"Mutation.acceptInvitation": {public, func(f *fixture) (string, []client.Option) {
		res, err := models.AddMember(context.Background(), f.a.db, models.Viewer{UserID: f.userIDs[owner]}, f.appA, unique("invitee")+"@example.com", models.RoleViewer)
		if err != nil {
			f.a.t.Fatal(err)
		}
		return `mutation($t: String!) { acceptInvitation(token: $t, password: "correct horse battery") { accessToken } }`, vars("t", res.InviteToken)
	}},
	"Mutation.addMember": {ownApp, func(f *fixture) (string, []client.Option) {
		return `mutation($a: ID!, $e: String!) { addMember(appId: $a, email: $e, role: viewer) { invitationToken } }`, vars("a", f.appA, "e", unique("new")+"@example.com")
	}},
	"Mutation.setMemberRole": {ownApp, func(f *fixture) (string, []client.Option) {
		return `mutation($a: ID!, $u: ID!) { setMemberRole(appId: $a, userId: $u, role: editor) { role } }`, vars("a", f.appA, "u", f.freshMember())
	}},
	"Query.overview": {readApp, func(f *fixture) (string, []client.Option) {
		return `query($a: ID!, $r: RangeInput!) { overview(appId: $a, range: $r) { totalEvents definitions { definition { code name } count } } }`, vars("a", f.appA, "r", lastWeek())
	}},
	"Query.breakdown": {readApp, func(f *fixture) (string, []client.Option) {
		return `query($a: ID!, $r: RangeInput!) { breakdown(appId: $a, range: $r, by: pages) { value } }`, vars("a", f.appA, "r", lastWeek())
	}},
	"Query.funnel": {readApp, func(f *fixture) (string, []client.Option) {
		return `query($a: ID!, $r: RangeInput!) { funnel(input: {appId: $a, range: $r, windowSeconds: 3600, steps: [{code: "view"}, {code: "alpha_code"}]}) { steps { entered } } }`, vars("a", f.appA, "r", lastWeek())
	}},
	"Query.events": {readApp, func(f *fixture) (string, []client.Option) {
		return `query($a: ID!) { events(appId: $a, rules: [{field: "code", operator: equals, value: "view"}]) { edges { node { code lead { email } } } } }`, vars("a", f.appA)
	}},
	"Query.eventMatchers": {readApp, func(f *fixture) (string, []client.Option) {
		return `query($a: ID!) { eventMatchers(appId: $a) { name code } }`, vars("a", f.appA)
	}},
	"Query.goals": {readApp, func(f *fixture) (string, []client.Option) {
		return `query($a: ID!) { goals(appId: $a) { name } }`, vars("a", f.appA)
	}},
	"Query.goalReport": {readApp, func(f *fixture) (string, []client.Option) {
		return `query($a: ID!, $g: ID!, $r: RangeInput!) { goalReport(appId: $a, goalId: $g, range: $r) { started completed } }`, vars("a", f.appA, "g", f.freshGoal(), "r", lastWeek())
	}},
	"Mutation.createEventMatcher": {editApp, func(f *fixture) (string, []client.Option) {
		return `mutation($a: ID!, $n: String!) { createEventMatcher(appId: $a, input: {name: $n, code: "view"}) { id } }`, vars("a", f.appA, "n", unique("matcher "))
	}},
	"Mutation.updateEventMatcher": {editApp, func(f *fixture) (string, []client.Option) {
		return `mutation($a: ID!, $id: ID!) { updateEventMatcher(appId: $a, id: $id, input: {code: "click"}) { code } }`, vars("a", f.appA, "id", f.freshMatcher())
	}},
	"Mutation.deleteEventMatcher": {editApp, func(f *fixture) (string, []client.Option) {
		return `mutation($a: ID!, $id: ID!) { deleteEventMatcher(appId: $a, id: $id) { id } }`, vars("a", f.appA, "id", f.freshMatcher())
	}},
	"Mutation.createGoal": {editApp, func(f *fixture) (string, []client.Option) {
		start, done := f.freshMatcherName(), f.freshMatcherName()
		return `mutation($a: ID!, $n: String!, $s: String!, $c: String!) { createGoal(appId: $a, input: {name: $n, startMatcher: $s, completionMatcher: $c}) { id } }`,
			vars("a", f.appA, "n", unique("goal "), "s", start, "c", done)
	}},
	"Mutation.updateGoal": {editApp, func(f *fixture) (string, []client.Option) {
		return `mutation($a: ID!, $id: ID!) { updateGoal(appId: $a, id: $id, input: {windowSeconds: 7200}) { id } }`, vars("a", f.appA, "id", f.freshGoal())
	}},
	"Mutation.deleteGoal": {editApp, func(f *fixture) (string, []client.Option) {
		return `mutation($a: ID!, $id: ID!) { deleteGoal(appId: $a, id: $id) { id } }`, vars("a", f.appA, "id", f.freshGoal())
	}},
	"Subscription.eventStored": {readApp, func(f *fixture) (string, []client.Option) {
		return `subscription($a: ID!) { eventStored(appId: $a) { code url } }`, vars("a", f.appA)
	}},
	"Mutation.removeMember": {ownApp, func(f *fixture) (string, []client.Option) {
		return `mutation($a: ID!, $u: ID!) { removeMember(appId: $a, userId: $u) }`, vars("a", f.appA, "u", f.freshMember())
	}},
}

func ptrTo[T any](v T) *T { return &v }

func lastWeek() map[string]any {
	now := time.Now().UTC()
	return map[string]any{"from": now.Add(-7 * 24 * time.Hour).Format(time.RFC3339), "to": now.Add(time.Hour).Format(time.RFC3339), "interval": "day"}
}

func (f *fixture) appAModel() *models.App {
	app, err := models.AppByPublicID(context.Background(), f.a.db, f.appA)
	if err != nil {
		f.a.t.Fatal(err)
	}
	return app
}

func (f *fixture) freshMatcherName() string {
	name := unique("matcher ")
	if _, err := models.CreateEventMatcher(context.Background(), f.a.db, f.appAModel(), models.EventMatcherInput{Name: &name, Code: ptrTo("view")}); err != nil {
		f.a.t.Fatal(err)
	}
	return name
}

func (f *fixture) freshMatcher() string {
	name := f.freshMatcherName()
	matchers, err := models.EventMatchers(context.Background(), f.a.db, f.appAModel().ID)
	if err != nil {
		f.a.t.Fatal(err)
	}
	for _, m := range matchers {
		if m.Name == name {
			return models.FormatID(m.ID)
		}
	}
	f.a.t.Fatalf("matcher %q not stored", name)
	return ""
}

func (f *fixture) freshGoal() string {
	start, done, name := f.freshMatcherName(), f.freshMatcherName(), unique("goal ")
	g, err := models.CreateGoal(context.Background(), f.a.db, f.appAModel(), models.GoalInput{Name: &name, StartMatcher: &start, CompletionMatcher: &done})
	if err != nil {
		f.a.t.Fatal(err)
	}
	return models.FormatID(g.ID)
}

func (f *fixture) freshRefreshToken() string {
	email := unique("session") + "@example.com"
	models.CreateUser(context.Background(), f.a.db, email, "", "correct horse battery")
	var out struct{ Login struct{ RefreshToken string } }
	f.a.ok(`mutation($e: String!) { login(email: $e, password: "correct horse battery") { refreshToken } }`, &out, client.Var("e", email), anonymous())
	return out.Login.RefreshToken
}

// freshMember adds a new viewer to app A and returns its user id.
func (f *fixture) freshMember() string {
	ctx := context.Background()
	u, err := models.CreateUser(ctx, f.a.db, unique("member")+"@example.com", "", "correct horse battery")
	if err != nil {
		f.a.t.Fatal(err)
	}
	if _, err := models.AddMember(ctx, f.a.db, models.Viewer{UserID: f.userIDs[owner]}, f.appA, u.Email, models.RoleViewer); err != nil {
		f.a.t.Fatal(err)
	}
	return models.FormatID(u.ID)
}

func TestEveryOperationIsInTheMatrix(t *testing.T) {
	schema := generated.NewExecutableSchema(generated.Config{Resolvers: &graph.Resolver{}}).Schema()
	var missing []string
	for _, root := range []string{"Query", "Mutation"} {
		for _, field := range schema.Types[root].Fields {
			name := root + "." + field.Name
			if strings.HasPrefix(field.Name, "__") {
				continue
			}
			if _, ok := operations[name]; !ok {
				missing = append(missing, name)
			}
		}
	}
	if schema.Subscription != nil {
		for _, field := range schema.Subscription.Fields {
			if _, ok := operations["Subscription."+field.Name]; !ok {
				missing = append(missing, "Subscription."+field.Name)
			}
		}
	}
	if len(missing) > 0 {
		t.Fatalf("operations without an access expectation in server/authz_test.go: %v", missing)
	}
}

func TestAccessMatrix(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *gorm.DB) {
		f := newFixture(t, db)
		names := make([]string, 0, len(operations))
		for name := range operations {
			names = append(names, name)
		}
		slices.Sort(names)
		for _, name := range names {
			op := operations[name]
			for _, role := range roles {
				if strings.HasPrefix(name, "Subscription.") {
					f.trySubscription(t, name, role, op)
					continue
				}
				query, opts := op.query(f)
				if role == anon {
					opts = append(opts, anonymous())
				} else {
					opts = append(opts, as(f.tokens[role]))
				}
				resp, err := f.a.gql.RawPost(query, f.a.withCredentials(opts)...)
				if err != nil {
					t.Fatalf("%s as %s: %v", name, role, err)
				}
				if after := afterOperation[name]; after != nil {
					after(f)
				}
				raw, _ := json.Marshal(resp)
				var errs []gqlError
				json.Unmarshal(resp.Errors, &errs)
				want := op.want[role]
				switch {
				case want == "" && len(errs) > 0:
					t.Errorf("%s as %s: want success, got %s", name, role, resp.Errors)
				case want != "" && (len(errs) != 1 || errs[0].Extensions.Code != want):
					t.Errorf("%s as %s: want %s, got %s", name, role, want, raw)
				}
				leaks := f.markersB
				if role == other {
					leaks = []string{f.appA, markerApp, markerLead, "alpha_code"}
				}
				for _, m := range leaks {
					if strings.Contains(string(raw), m) {
						t.Errorf("%s as %s: response holds %q of an app the viewer is not in: %s", name, role, m, raw)
					}
				}
			}
		}
	})
}

// trySubscription subscribes over a websocket as role (the token in the
// connection_init payload, as browsers send it) and, where success is
// expected, proves it by receiving an event triggered meanwhile.
func (f *fixture) trySubscription(t *testing.T, name, role string, op operation) {
	query, opts := op.query(f)
	var payload map[string]any
	if role != anon {
		payload = map[string]any{"Authorization": "Bearer " + f.tokens[role]}
	}
	sub := f.a.gql.WebsocketWithPayload(query, payload, opts...)
	defer sub.Close()
	want := op.want[role]
	if want == "" {
		go func() {
			time.Sleep(200 * time.Millisecond)
			f.a.do(`mutation($a: ID!) { trigger(input: {appId: $a, deviceId: "d-live", code: "view", url: "https://a.example/live"}) { accepted } }`, client.Var("a", f.appA))
		}()
	}
	var msg map[string]any
	err := sub.Next(&msg)
	switch {
	case want == "" && err != nil:
		t.Errorf("%s as %s: want an event, got %v", name, role, err)
	case want != "" && (err == nil || !strings.Contains(err.Error(), want)):
		t.Errorf("%s as %s: want %s, got %v %v", name, role, want, err, msg)
	}
	if raw, _ := json.Marshal(msg); role == other && strings.Contains(string(raw), "a.example") {
		t.Errorf("%s as %s: received app A's event: %s", name, role, raw)
	}
}
