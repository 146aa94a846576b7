package main

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/99designs/gqlgen/client"
	"github.com/crumbs-dev/crumbs/models"
	"github.com/crumbs-dev/crumbs/models/modelstest"
	"github.com/vektah/gqlparser/v2/ast"
	"gorm.io/gorm"
)

// idCase is a root field that takes the id of an object inside an app: its
// document for an app (ignored by fields without appId) and an object id,
// and the id of such an object in app A.
type idCase struct {
	doc    func(app, id string) (string, map[string]any)
	object func(f *fixture) string
}

func withID(doc string) func(app, id string) (string, map[string]any) {
	return func(app, id string) (string, map[string]any) {
		vars := map[string]any{"id": id}
		if strings.Contains(doc, "$a") {
			vars["a"] = app
		}
		if strings.Contains(doc, "$r") {
			vars["r"] = lastWeek()
		}
		return doc, vars
	}
}

// idCases lists every root field with an object id argument (an ID other
// than appId); TestIDsRevealNothing fails when the schema gains one that is
// not here. Fields whose id is an app's public id are the access matrix's.
var idCases = map[string]idCase{
	"Query.eventDefinition":      {withID(`query($id: ID!) { eventDefinition(id: $id) { id } }`), func(f *fixture) string { return f.defA }},
	"Query.lead":                 {withID(`query($id: ID!) { lead(id: $id) { id } }`), func(f *fixture) string { return f.leadA }},
	"Query.device":               {withID(`query($a: ID!, $id: ID!) { device(appId: $a, deviceId: $id) { id } }`), func(f *fixture) string { return f.devA1 }},
	"Query.goalReport":           {withID(`query($a: ID!, $id: ID!, $r: RangeInput!) { goalReport(appId: $a, goalId: $id, range: $r) { started } }`), (*fixture).freshGoal},
	"Query.automationRule":       {withID(`query($a: ID!, $id: ID!) { automationRule(appId: $a, id: $id) { id } }`), func(f *fixture) string { return f.ruleA }},
	"Query.deliveries":           {withID(`query($a: ID!, $id: ID) { deliveries(appId: $a, ruleId: $id) { edges { node { id } } } }`), func(f *fixture) string { return f.ruleA }},
	"Query.erasure":              {withID(`query($a: ID!, $id: ID!) { erasure(appId: $a, id: $id) { done } }`), (*fixture).erasureA},
	"Mutation.eraseDevice":       {withID(`mutation($a: ID!, $id: ID!) { eraseDevice(appId: $a, deviceId: $id) { deletedEvents } }`), func(f *fixture) string { return f.devA1 }},
	"Mutation.revokeIngestToken": {withID(`mutation($id: ID!) { revokeIngestToken(id: $id) { id } }`), (*fixture).freshIngestToken},
	"Mutation.updateEventDefinition": {withID(`mutation($id: ID!) { updateEventDefinition(id: $id, input: {name: "Taken"}) { id } }`),
		func(f *fixture) string { return f.defA }},
	"Mutation.deleteEventDefinition": {withID(`mutation($id: ID!) { deleteEventDefinition(id: $id) { id } }`), (*fixture).freshDefinition},
	"Mutation.revokeInvitation":      {withID(`mutation($a: ID!, $id: ID!) { revokeInvitation(appId: $a, id: $id) { id } }`), (*fixture).invitationA},
	"Mutation.setMemberRole": {withID(`mutation($a: ID!, $id: ID!) { setMemberRole(appId: $a, userId: $id, role: owner) { role } }`),
		func(f *fixture) string { return models.FormatID(f.userIDs[viewer]) }},
	"Mutation.removeMember": {withID(`mutation($a: ID!, $id: ID!) { removeMember(appId: $a, userId: $id) }`),
		func(f *fixture) string { return models.FormatID(f.userIDs[editor]) }},
	"Mutation.updateEventMatcher": {withID(`mutation($a: ID!, $id: ID!) { updateEventMatcher(appId: $a, id: $id, input: {code: "taken"}) { id } }`), (*fixture).freshMatcher},
	"Mutation.deleteEventMatcher": {withID(`mutation($a: ID!, $id: ID!) { deleteEventMatcher(appId: $a, id: $id) { id } }`), (*fixture).freshMatcher},
	"Mutation.updateGoal":         {withID(`mutation($a: ID!, $id: ID!) { updateGoal(appId: $a, id: $id, input: {windowSeconds: 60}) { id } }`), (*fixture).freshGoal},
	"Mutation.deleteGoal":         {withID(`mutation($a: ID!, $id: ID!) { deleteGoal(appId: $a, id: $id) { id } }`), (*fixture).freshGoal},
	"Mutation.updateAutomationRule": {withID(`mutation($a: ID!, $id: ID!) { updateAutomationRule(appId: $a, id: $id, input: {enabled: false}) { id } }`),
		func(f *fixture) string { return f.ruleA }},
	"Mutation.deleteAutomationRule": {withID(`mutation($a: ID!, $id: ID!) { deleteAutomationRule(appId: $a, id: $id) { id } }`),
		func(f *fixture) string { return f.ruleA }},
	"Mutation.addAutomationAction": {withID(`mutation($a: ID!, $id: ID!) { addAutomationAction(appId: $a, ruleId: $id, input: {kind: webhook, url: "https://taken.example/"}) { signingSecret } }`),
		func(f *fixture) string { return f.ruleA }},
	"Mutation.updateAutomationAction": {withID(`mutation($a: ID!, $id: ID!) { updateAutomationAction(appId: $a, id: $id, input: {enabled: false}) { id } }`),
		func(f *fixture) string { return f.actionA }},
	"Mutation.deleteAutomationAction": {withID(`mutation($a: ID!, $id: ID!) { deleteAutomationAction(appId: $a, id: $id) { id } }`),
		func(f *fixture) string { return f.actionA }},
	"Mutation.rotateActionSecret": {withID(`mutation($a: ID!, $id: ID!) { rotateActionSecret(appId: $a, id: $id) { signingSecret } }`),
		func(f *fixture) string { return f.actionA }},
	"Mutation.sendTestDelivery": {withID(`mutation($a: ID!, $id: ID!) { sendTestDelivery(appId: $a, actionId: $id) { statusCode } }`),
		func(f *fixture) string { return f.actionA }},
	"Mutation.replayDelivery": {withID(`mutation($a: ID!, $id: ID!) { replayDelivery(appId: $a, id: $id) { id } }`),
		func(f *fixture) string { return f.deliveryA }},
	"Mutation.replayRule": {withID(`mutation($a: ID!, $id: ID!, $r: RangeInput!) { replayRule(appId: $a, ruleId: $id, range: $r) { events } }`),
		func(f *fixture) string { return f.ruleA }},
}

// appIDRoots take an app's public id as id: the access matrix tries them
// with app A's id as every caller.
var appIDRoots = []string{"Query.app", "Mutation.updateApp", "Mutation.rotateAppSecret"}

// idArguments lists the root fields with an ID argument (or an ID field of
// an input argument) other than appId.
func idArguments(s *ast.Schema) []string {
	var out []string
	for _, name := range rootFields(s) {
		typ, field, _ := strings.Cut(name, ".")
		for _, arg := range s.Types[typ].Fields.ForName(field).Arguments {
			ids := arg.Type.Name() == "ID" && arg.Name != "appId"
			if in := s.Types[arg.Type.Name()]; in != nil && in.Kind == ast.InputObject {
				for _, f := range in.Fields {
					ids = ids || f.Type.Name() == "ID" && f.Name != "appId"
				}
			}
			if ids && !slices.Contains(out, name) {
				out = append(out, name)
			}
		}
	}
	return out
}

// Passing the id of another app's object (as a member or the key of
// another app, next to that app's own appId) finds nothing and changes
// nothing, and the answer is the same as for an id that exists nowhere, so
// ids reveal nothing about other tenants; a secret key that is no app's
// key is refused whatever the id.
func TestIDsRevealNothing(t *testing.T) {
	s := schema()
	for _, name := range idArguments(s) {
		if _, ok := idCases[name]; !ok && !slices.Contains(appIDRoots, name) {
			t.Errorf("%s takes an object id: add it to idCases (server/idor_test.go)", name)
		}
	}
	for name := range idCases {
		if !slices.Contains(idArguments(s), name) {
			t.Errorf("idCases lists %s, which takes no object id", name)
		}
	}
	if t.Failed() {
		return
	}
	modelstest.Each(t, func(t *testing.T, db *gorm.DB) {
		f := newFixture(t, db)
		objects := map[string]string{}
		for name, c := range idCases {
			objects[name] = c.object(f)
		}
		before := f.snapshotA()
		const missing = "987654321"
		bogus := "sk_" + strings.Repeat("q", 32)
		for _, name := range slices.Sorted(maps.Keys(idCases)) {
			c, object := idCases[name], objects[name]
			for _, caller := range []struct{ who, auth string }{{other, f.tokens[other]}, {otherServer, f.secretB}, {"a key of no app", bogus}} {
				answer := func(id string) (string, bool) {
					doc, vars := c.doc(f.appB, id)
					opts := []client.Option{as(caller.auth)}
					for k, v := range vars {
						opts = append(opts, client.Var(k, v))
					}
					data, errs := f.a.do(doc, opts...)
					if len(errs) == 0 {
						raw, _ := json.Marshal(data)
						return "answered " + strings.ReplaceAll(string(raw), id, "<id>"), true
					}
					return errs[0].Extensions.Code + ": " + strings.ReplaceAll(errs[0].Message, id, "<id>"), false
				}
				got, answered := answer(object)
				want, _ := answer(missing)
				if got != want {
					t.Errorf("%s as %s: app A's object answers %q, an id of nothing %q", name, caller.who, got, want)
				}
				// Erasing a device that is not in the app erases nothing there and
				// says so; everything else is refused.
				if answered && name != "Mutation.eraseDevice" {
					t.Errorf("%s as %s with app A's object: %s", name, caller.who, got)
				}
				if caller.who == "a key of no app" && !strings.HasPrefix(got, unauth) {
					t.Errorf("%s with a key of no app: %s", name, got)
				}
			}
		}
		if after := f.snapshotA(); after != before {
			t.Errorf("app A changed:\nbefore %s\nafter  %s", before, after)
		}
	})
}

// snapshotA is what the owner reads of app A's objects that idCases name.
func (f *fixture) snapshotA() string {
	data, errs := f.a.do(`query($a: ID!, $d: ID!, $l: ID!, $def: ID!) {
		eventDefinition(id: $def) { name } lead(id: $l) { email } device(appId: $a, deviceId: $d) { id lead { id } }
		app(id: $a) { eventDefinitions { id name } } eventMatchers(appId: $a) { id code } goals(appId: $a) { id windowSeconds }
		automationRules(appId: $a) { id enabled actions { id url enabled retiredSecretExpiries } }
		ingestTokens(appId: $a) { id revokedAt } invitations(appId: $a) { id } members(appId: $a) { user { id } role } }`,
		as(f.tokens[owner]), client.Var("a", f.appA), client.Var("d", f.devA1), client.Var("l", f.leadA), client.Var("def", f.defA))
	if len(errs) > 0 {
		f.a.t.Fatalf("snapshot of app A: %+v", errs)
	}
	raw, _ := json.Marshal(data)
	return string(raw)
}

// erasureA erases a fresh device of app A and returns the erasure's id.
func (f *fixture) erasureA() string {
	device := unique("d-idor-")
	f.identify(f.appA, f.secretA, device, unique("idor")+"@example.com", nil)
	res, err := models.EraseDevice(context.Background(), f.a.db, f.ownerV(), f.appA, device)
	if err != nil {
		f.a.t.Fatal(err)
	}
	return models.FormatID(res.ErasureID)
}

// invitationA invites a fresh email into app A and returns the invitation's id.
func (f *fixture) invitationA() string {
	res, err := models.AddMember(context.Background(), f.a.db, f.ownerV(), f.appA, unique("idor-invitee")+"@example.com", models.RoleViewer)
	if err != nil {
		f.a.t.Fatal(err)
	}
	return models.FormatID(res.Invitation.ID)
}

// freshDefinition makes a definition of app A that was never triggered.
func (f *fixture) freshDefinition() string {
	def, err := models.CreateEventDefinition(context.Background(), f.a.db, f.ownerV(), f.appA,
		models.EventDefinitionInput{Code: ptrTo(unique("idor_")), Name: ptrTo(fmt.Sprintf("IDOR %d", uniqueSeq.Load()))})
	if err != nil {
		f.a.t.Fatal(err)
	}
	return models.FormatID(def.ID)
}
