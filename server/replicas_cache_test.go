package main

import (
	"context"
	"testing"
	"time"

	"github.com/99designs/gqlgen/client"
	"github.com/crumbs-dev/crumbs/models"
	"github.com/crumbs-dev/crumbs/models/modelstest"
	"gorm.io/gorm"
)

// replicaOf starts another replica on db's store, in this process: a
// database handle of its own, so its catalog, sign-in cache, recently
// stored devices, writer and rate limits are its own too (caches are
// cleared through the handle a write went through).
func replicaOf(t *testing.T, db *gorm.DB, mutate ...func(*config)) *api {
	t.Helper()
	var url string
	if db.Dialector.Name() == "sqlite" {
		var files []struct {
			Seq        int
			Name, File string
		}
		if err := db.Raw("PRAGMA database_list").Scan(&files).Error; err != nil || len(files) == 0 {
			t.Fatalf("database_list: %v %v", files, err)
		}
		url = "sqlite:" + files[0].File
	} else {
		url = modelstest.MySQLDSN(t)
	}
	other, err := models.Open(context.Background(), url, models.DBOptions{MaxOpenConns: 4})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { closeGorm(other) })
	return newAPI(t, other, mutate...)
}

// A code deleted and defined again on one replica is stored at once by a
// replica whose catalog still holds the deleted definition: its writer
// finds the definition gone under the row lock and takes the one that now
// has the code. It was refused UNKNOWN_EVENT_CODE, and counted as a typo,
// although the code was defined.
func TestACodeDefinedAgainIsStoredOnAnotherReplica(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *gorm.DB) {
		a := newAPI(t, db)
		b := replicaOf(t, db, func(c *config) { c.CacheTTL = time.Hour })
		appID, secret := a.createApp("Defined again")
		var def struct{ CreateEventDefinition struct{ ID string } }
		create := `mutation($a: ID!) { createEventDefinition(input: {appId: $a, code: "signup", name: "Signup"}) { id } }`
		a.ok(create, &def, client.Var("a", appID))
		// b reads the app and its definitions into its catalog.
		b.ok(`mutation($a: ID!) { identify(input: {appId: $a, deviceId: "d-1", email: "lin@example.com"}) { moved } }`, &map[string]any{}, client.Var("a", appID), as(secret))
		a.ok(`mutation($id: ID!) { deleteEventDefinition(id: $id) { id } }`, &map[string]any{}, client.Var("id", def.CreateEventDefinition.ID))
		a.ok(create, &def, client.Var("a", appID))

		var out triggerOut
		b.ok(triggerMutation, &out, client.Var("in", map[string]any{"appId": appID, "deviceId": "d-1", "code": "signup"}), as(secret))
		b.settle()
		var app struct {
			App struct {
				EventDefinitions []struct {
					ID, Code     string
					TriggerCount int
				}
				UnknownCodes []struct{ Code string }
			}
		}
		a.ok(`query($a: ID!) { app(id: $a) { eventDefinitions { id code triggerCount } unknownCodes { code } } }`, &app, client.Var("a", appID))
		counted := 0
		for _, d := range app.App.EventDefinitions {
			if d.Code == "signup" && d.ID == def.CreateEventDefinition.ID {
				counted = d.TriggerCount
			}
		}
		if counted != 1 || len(app.App.UnknownCodes) != 0 {
			t.Fatalf("definitions %+v, unknown codes %+v", app.App.EventDefinitions, app.App.UnknownCodes)
		}
		// This app's events only: other tests' apps share the MariaDB store.
		var stored []models.Event
		db.Joins("JOIN apps ON apps.id = events.app_id").Where("apps.public_id = ? AND events.device_id = ?", appID, "d-1").Find(&stored)
		if len(stored) != 1 || models.FormatID(stored[0].DefinitionID) != def.CreateEventDefinition.ID {
			t.Fatalf("stored %+v", stored)
		}
	})
}

// What one replica changes holds on another within the bounds the README
// gives: a removed member and a lowered role at once, a rotated key at once
// on operations that read the store and within CRUMBS_CACHE_TTL on the
// ingestion calls, as a new allowedOrigins list does.
func TestChangesOnOneReplicaHoldOnAnother(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *gorm.DB) {
		a := newAPI(t, db)
		b := replicaOf(t, db, func(c *config) { c.CacheTTL = time.Second })
		appID, secret := a.createApp("Changes")
		a.ok(`mutation($a: ID!) { updateApp(id: $a, input: {allowedOrigins: ["https://shop.example"]}) { id } }`, &map[string]any{}, client.Var("a", appID))
		browser := func(origin string) client.Option { return client.AddHeader("Origin", origin) }
		trigger := func(opts ...client.Option) string {
			t.Helper()
			_, errs := b.do(triggerMutation, append([]client.Option{client.Var("in", map[string]any{"appId": appID, "deviceId": "d-1", "code": "view"})}, opts...)...)
			if len(errs) > 0 {
				return errs[0].Extensions.Code
			}
			return ""
		}

		// A member removed, and one whose role was lowered, on a.
		var invite struct {
			AddMember struct{ InvitationToken string }
		}
		var accepted struct{ AcceptInvitation sessionOut }
		tokens := map[string]string{}
		ids := map[string]string{}
		for _, who := range []string{"leaver", "demoted"} {
			a.ok(`mutation($a: ID!, $e: String!) { addMember(appId: $a, email: $e, role: editor) { invitationToken } }`, &invite, client.Var("a", appID), client.Var("e", who+"@example.com"))
			a.ok(`mutation($t: String!) { acceptInvitation(token: $t, password: "another good password") { accessToken } }`, &accepted, client.Var("t", invite.AddMember.InvitationToken), anonymous())
			tokens[who] = accepted.AcceptInvitation.AccessToken
			var me struct{ Me struct{ ID string } }
			b.ok(`{ me { id } }`, &me, as(tokens[who]))
			ids[who] = me.Me.ID
			b.ok(`mutation($a: ID!, $c: String!) { createEventDefinition(input: {appId: $a, code: $c, name: "Warm"}) { id } }`, &map[string]any{}, client.Var("a", appID), client.Var("c", who), as(tokens[who]))
		}
		a.ok(`mutation($a: ID!, $u: ID!) { removeMember(appId: $a, userId: $u) }`, &map[string]any{}, client.Var("a", appID), client.Var("u", ids["leaver"]))
		a.ok(`mutation($a: ID!, $u: ID!) { setMemberRole(appId: $a, userId: $u, role: viewer) { role } }`, &map[string]any{}, client.Var("a", appID), client.Var("u", ids["demoted"]))
		b.refused("NOT_FOUND", "", `query($a: ID!) { app(id: $a) { id } }`, client.Var("a", appID), as(tokens["leaver"]))
		b.refused("FORBIDDEN", "", `mutation($a: ID!) { createEventDefinition(input: {appId: $a, code: "late", name: "Late"}) { id } }`, client.Var("a", appID), as(tokens["demoted"]))

		// b reads the app into its catalog (its own writes above cleared it),
		// then the key is rotated and the origins changed on a.
		if code := trigger(as(secret)); code != "" {
			t.Fatalf("key on b: %s", code)
		}
		if code := trigger(anonymous(), browser("https://shop.example")); code != "" {
			t.Fatalf("allowed origin on b: %s", code)
		}
		a.ok(`mutation($a: ID!) { rotateAppSecret(id: $a) { secretKey } }`, &map[string]any{}, client.Var("a", appID))
		a.ok(`mutation($a: ID!) { updateApp(id: $a, input: {allowedOrigins: ["https://new.example"]}) { id } }`, &map[string]any{}, client.Var("a", appID))
		b.refused("UNAUTHENTICATED", "", `query($a: ID!) { checkAppKey(appId: $a) { keyValid } }`, client.Var("a", appID), as(secret))
		time.Sleep(1100 * time.Millisecond)
		if code := trigger(as(secret)); code != "UNAUTHENTICATED" {
			t.Fatalf("rotated key on b after its CRUMBS_CACHE_TTL: %q", code)
		}
		if code := trigger(anonymous(), browser("https://shop.example")); code != "FORBIDDEN" {
			t.Fatalf("removed origin on b after its CRUMBS_CACHE_TTL: %q", code)
		}
		if code := trigger(anonymous(), browser("https://new.example")); code != "" {
			t.Fatalf("new origin on b after its CRUMBS_CACHE_TTL: %q", code)
		}
	})
}
