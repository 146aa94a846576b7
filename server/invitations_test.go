package main

import (
	"encoding/json"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/99designs/gqlgen/client"
	"github.com/crumbs-dev/crumbs/models"
	"github.com/crumbs-dev/crumbs/models/modelstest"
	"gorm.io/gorm"
)

const addMemberQuery = `mutation($a: ID!, $e: String!, $r: Role!) { addMember(appId: $a, email: $e, role: $r) {
	invitation { id appId email role createdAt expiresAt } invitationToken } }`

type invitationOut struct {
	ID, AppID, Email, Role string
	CreatedAt, ExpiresAt   string
}

// invite adds a member the only way there is: an invitation.
func (a *api) invite(appID, email, role string) (invitationOut, string, json.RawMessage) {
	a.t.Helper()
	resp, err := a.gql.RawPost(addMemberQuery, a.withCredentials([]client.Option{client.Var("a", appID), client.Var("e", email), client.Var("r", role)})...)
	if err != nil || len(resp.Errors) > 0 {
		a.t.Fatalf("addMember %s: %v %s", email, err, resp.Errors)
	}
	raw, _ := json.Marshal(resp.Data)
	var out struct {
		AddMember struct {
			Invitation      invitationOut
			InvitationToken string
		}
	}
	json.Unmarshal(raw, &out)
	return out.AddMember.Invitation, out.AddMember.InvitationToken, raw
}

func (a *api) memberEmails(appID string) []string {
	a.t.Helper()
	var out struct {
		Members []struct{ User struct{ Email string } }
	}
	a.ok(`query($a: ID!) { members(appId: $a) { user { email } } }`, &out, client.Var("a", appID))
	var emails []string
	for _, m := range out.Members {
		emails = append(emails, m.User.Email)
	}
	sort.Strings(emails)
	return emails
}

// shape is the answer with every value blanked: what a caller could tell
// two answers apart by, besides the values themselves.
func shape(raw json.RawMessage) string {
	var v any
	json.Unmarshal(raw, &v)
	var walk func(any) any
	walk = func(v any) any {
		switch x := v.(type) {
		case map[string]any:
			for k, e := range x {
				x[k] = walk(e)
			}
			return x
		case []any:
			for i, e := range x {
				x[i] = walk(e)
			}
			return x
		case nil:
			return nil
		}
		return "·"
	}
	b, _ := json.Marshal(walk(v))
	return string(b)
}

// addMember invites whether or not the email has an account, answers the
// same either way, and adds nobody until the invitee accepts.
func TestAddMemberAlwaysInvites(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *gorm.DB) {
		a := newAPI(t, db)
		appID, _ := a.createApp("Team")
		ownerEmails := a.memberEmails(appID)
		existingToken := a.signUp()
		existingID, _ := a.tokenUser(existingToken)
		existing := a.emailOf(existingID)
		stranger := unique("stranger") + "@example.com"

		invA, tokenA, rawA := a.invite(appID, existing, "editor")
		invB, tokenB, rawB := a.invite(appID, stranger, "editor")
		if shape(rawA) != shape(rawB) || tokenA == "" || tokenB == "" {
			t.Fatalf("the answers differ by account existence:\n%s\n%s", rawA, rawB)
		}
		expires, _ := time.Parse(time.RFC3339, invA.ExpiresAt)
		if invA.Email != existing || invA.Role != "editor" || invA.AppID != appID || !expires.After(time.Now().Add(6*24*time.Hour)) {
			t.Fatalf("invitation %+v", invA)
		}
		if got := a.memberEmails(appID); strings.Join(got, ",") != strings.Join(ownerEmails, ",") {
			t.Fatalf("members before anyone accepted: %v", got)
		}
		a.refused("NOT_FOUND", "", `query($a: ID!) { app(id: $a) { id } }`, client.Var("a", appID), as(existingToken))

		// The account holder consents with their own password.
		a.refused("UNAUTHENTICATED", "", `mutation($t: String!) { acceptInvitation(token: $t, password: "not my password") { accessToken } }`, client.Var("t", tokenA), anonymous())
		a.ok(`mutation($t: String!) { acceptInvitation(token: $t, password: "correct horse battery") { user { email } } }`, &map[string]any{}, client.Var("t", tokenA), anonymous())
		a.ok(`query($a: ID!) { app(id: $a) { id } }`, &map[string]any{}, client.Var("a", appID), as(existingToken))
		a.refused("UNAUTHENTICATED", "", `mutation($t: String!) { acceptInvitation(token: $t, password: "correct horse battery") { accessToken } }`, client.Var("t", tokenA), anonymous())
		// Without an account, accepting creates one.
		var accepted struct {
			AcceptInvitation struct{ User struct{ Email string } }
		}
		a.ok(`mutation($t: String!) { acceptInvitation(token: $t, name: "Stranger", password: "a new good password") { user { email } } }`, &accepted, client.Var("t", tokenB), anonymous())
		if accepted.AcceptInvitation.User.Email != stranger || len(a.memberEmails(appID)) != len(ownerEmails)+2 {
			t.Fatalf("after accepting: %+v, members %v", accepted, a.memberEmails(appID))
		}
		_ = invB
		a.refused("CONFLICT", "email", addMemberQuery, client.Var("a", appID), client.Var("e", strings.ToUpper(existing)), client.Var("r", "viewer"))
	})
}

func TestInvitationsListAndRevoke(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *gorm.DB) {
		a := newAPI(t, db)
		appID, _ := a.createApp("Invites")
		list := func() []invitationOut {
			var out struct{ Invitations []invitationOut }
			a.ok(`query($a: ID!) { invitations(appId: $a) { id appId email role createdAt expiresAt } }`, &out, client.Var("a", appID))
			return out.Invitations
		}
		accept := `mutation($t: String!) { acceptInvitation(token: $t, password: "a new good password") { accessToken } }`
		first, firstToken, _ := a.invite(appID, "ann@example.com", "viewer")
		bob, bobToken, _ := a.invite(appID, "bob@example.com", "editor")
		// Inviting the same email again replaces its invitation and token.
		again, againToken, _ := a.invite(appID, "ANN@example.com", "owner")
		got := list()
		if len(got) != 2 || got[0].ID != again.ID || got[0].Role != "owner" || got[1].ID != bob.ID || got[0].AppID != appID {
			t.Fatalf("pending invitations %+v", got)
		}
		a.refused("UNAUTHENTICATED", "", accept, client.Var("t", firstToken), anonymous())

		var revoked struct{ RevokeInvitation struct{ ID string } }
		a.ok(`mutation($a: ID!, $id: ID!) { revokeInvitation(appId: $a, id: $id) { id } }`, &revoked, client.Var("a", appID), client.Var("id", bob.ID))
		if revoked.RevokeInvitation.ID != bob.ID || len(list()) != 1 {
			t.Fatalf("after revoking: %+v %+v", revoked, list())
		}
		a.refused("UNAUTHENTICATED", "", accept, client.Var("t", bobToken), anonymous())
		a.refused("NOT_FOUND", "", `mutation($a: ID!, $id: ID!) { revokeInvitation(appId: $a, id: $id) { id } }`, client.Var("a", appID), client.Var("id", bob.ID))
		a.refused("NOT_FOUND", "", `mutation($a: ID!, $id: ID!) { revokeInvitation(appId: $a, id: $id) { id } }`, client.Var("a", appID), client.Var("id", first.ID))
		// Another app's owner cannot revoke this app's invitations through their own app.
		otherApp, _ := a.createApp("Elsewhere")
		a.refused("NOT_FOUND", "", `mutation($a: ID!, $id: ID!) { revokeInvitation(appId: $a, id: $id) { id } }`, client.Var("a", otherApp), client.Var("id", again.ID))

		// An expired invitation is neither listed nor accepted.
		if err := db.Model(&models.Invitation{}).Where("id = ?", again.ID).Update("expires_at", time.Now().Add(-time.Minute)).Error; err != nil {
			t.Fatal(err)
		}
		if got := list(); len(got) != 0 {
			t.Fatalf("an expired invitation is listed: %+v", got)
		}
		a.refused("UNAUTHENTICATED", "", accept, client.Var("t", againToken), anonymous())
	})
}

// Event.device for a device erased while its event was being read is null,
// not an internal error (a page of events is read before its devices).
func TestEventOfErasedDevice(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *gorm.DB) {
		a := newAPI(t, db)
		appID, secret := a.createApp("Erased")
		var out triggerOut
		a.ok(triggerMutation, &out, client.Var("in", map[string]any{"appId": appID, "deviceId": "gone", "code": "view", "url": "https://s.example/gone"}), as(secret))
		app, err := models.AppByPublicID(t.Context(), db, appID)
		if err != nil {
			t.Fatal(err)
		}
		if err := db.Where("app_id = ? AND device_id = ?", app.ID, "gone").Delete(&models.Device{}).Error; err != nil {
			t.Fatal(err)
		}
		var events struct {
			Events struct {
				Edges []struct {
					Node struct {
						URL    string
						Device *struct{ ID string }
						Lead   *struct{ Email string }
					}
				}
			}
		}
		a.ok(`query($a: ID!) { events(appId: $a) { edges { node { url device { id } lead { email } } } } }`, &events, client.Var("a", appID))
		if len(events.Events.Edges) != 1 || events.Events.Edges[0].Node.URL != "https://s.example/gone" || events.Events.Edges[0].Node.Device != nil || events.Events.Edges[0].Node.Lead != nil {
			t.Fatalf("events %+v", events)
		}
	})
}
