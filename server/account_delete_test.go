package main

import (
	"context"
	"strings"
	"testing"

	"github.com/99designs/gqlgen/client"
	"github.com/crumbs-dev/crumbs/models"
	"github.com/crumbs-dev/crumbs/models/modelstest"
	"gorm.io/gorm"
)

// A dashboard user deletes their own account: with their password, not while
// an app would be left without an owner; afterwards no token of theirs works,
// the password signs in nowhere, and the apps they shared keep their other
// owners.
func TestDeleteAccount(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *gorm.DB) {
		a := newAPI(t, db)
		ctx := context.Background()
		email := a.newUser("correct horse battery")
		here, elsewhere := a.login(email, "correct horse battery"), a.login(email, "correct horse battery")
		me, err := models.Authenticate(ctx, db, email, "correct horse battery")
		if err != nil {
			t.Fatal(err)
		}
		name := unique("Leaving shop")
		app, _, err := models.CreateApp(ctx, db, models.Viewer{UserID: me.ID}, models.AppInput{Name: &name})
		if err != nil {
			t.Fatal(err)
		}
		del := `mutation($p: String!) { deleteAccount(password: $p) }`
		a.refused("BAD_USER_INPUT", "password", del, client.Var("p", "not my password"), as(here.AccessToken))
		a.refused("UNAUTHENTICATED", "", del, client.Var("p", "correct horse battery"), anonymous())
		refusal := a.refused("CONFLICT", "", del, client.Var("p", "correct horse battery"), as(here.AccessToken))
		if !strings.Contains(refusal.Message, app.PublicID) || !strings.Contains(refusal.Message, name) {
			t.Fatalf("the refusal does not name the app the user alone owns: %q", refusal.Message)
		}
		a.tokenWorks(elsewhere.AccessToken) // refusals delete nothing

		// Another owner: the app no longer needs this user.
		other := a.newUser("another good password")
		otherUser, err := models.Authenticate(ctx, db, other, "another good password")
		if err != nil {
			t.Fatal(err)
		}
		if err := db.Create(&models.Membership{AppID: app.ID, UserID: otherUser.ID, Role: models.RoleOwner}).Error; err != nil {
			t.Fatal(err)
		}
		var out struct{ DeleteAccount bool }
		a.ok(del, &out, client.Var("p", "correct horse battery"), as(here.AccessToken))
		if !out.DeleteAccount {
			t.Fatal("deleteAccount answered false")
		}
		for _, s := range []sessionOut{here, elsewhere} {
			a.tokenRefused(s.AccessToken)
			a.refreshRefused(s.RefreshToken)
		}
		a.refused("UNAUTHENTICATED", "", loginQuery, client.Var("e", email), client.Var("p", "correct horse battery"), anonymous())
		var members []models.Membership
		if err := db.Where("app_id = ?", app.ID).Find(&members).Error; err != nil {
			t.Fatal(err)
		}
		if len(members) != 1 || members[0].UserID != otherUser.ID || members[0].Role != models.RoleOwner {
			t.Fatalf("the app's members after the deletion: %+v", members)
		}
		var users int64
		if err := db.Model(&models.User{}).Where("id = ?", me.ID).Count(&users).Error; err != nil || users != 0 {
			t.Fatalf("%d user rows left (%v)", users, err)
		}
	})
}
