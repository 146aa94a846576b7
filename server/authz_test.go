package main

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

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
	"Mutation.removeMember": {ownApp, func(f *fixture) (string, []client.Option) {
		return `mutation($a: ID!, $u: ID!) { removeMember(appId: $a, userId: $u) }`, vars("a", f.appA, "u", f.freshMember())
	}},
}

func ptrTo[T any](v T) *T { return &v }

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
			if strings.HasPrefix(name, "Subscription.") {
				continue // subscriptions are tried over websockets in their own test
			}
			for _, role := range roles {
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
