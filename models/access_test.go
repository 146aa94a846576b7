package models_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/crumbs-dev/crumbs/models"
	"github.com/crumbs-dev/crumbs/models/modelstest"
	"gorm.io/gorm"
)

// join invites v's user into the app with role and accepts for them.
func (e *env) join(v models.Viewer, role models.Role) {
	e.t.Helper()
	u, err := models.UserByID(e.ctx, e.db, v.UserID)
	if err != nil {
		e.t.Fatal(err)
	}
	inv, err := models.AddMember(e.ctx, e.db, e.owner, e.app.PublicID, u.Email, role)
	if err != nil {
		e.t.Fatal(err)
	}
	if _, err := models.AcceptInvitation(e.ctx, e.db, inv.Token, "", "correct horse battery"); err != nil {
		e.t.Fatal(err)
	}
}

func TestAuthorizeUsers(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *gorm.DB) {
		e := newEnv(t, db)
		member, stranger := newUser(t, db), newUser(t, db)
		e.join(member, models.RoleViewer)
		user := func(v models.Viewer) *models.User {
			u, err := models.UserByID(e.ctx, db, v.UserID)
			if err != nil {
				t.Fatal(err)
			}
			return u
		}
		read := func(v models.Viewer, u *models.User) error { return models.Authorize(e.ctx, db, v.Fresh(), u, nil) }
		if err := read(e.owner, user(member)); err != nil {
			t.Fatalf("an owner may read the users of the app: %v", err)
		}
		if err := read(member, user(member)); err != nil {
			t.Fatalf("a user may read themself: %v", err)
		}
		wantCode(t, read(member, user(e.owner)), models.CodeNotFound) // a viewer does not see the team
		wantCode(t, read(stranger, user(member)), models.CodeNotFound)
		wantCode(t, read(models.Viewer{}, user(member)), models.CodeUnauthenticated)
		wantCode(t, read(models.Viewer{Secret: e.secret}, user(member)), models.CodeUnauthenticated)

		// The holder of a fresh session reads its user, and no one else.
		anon := models.Viewer{}.Fresh()
		if err := models.Authorize(e.ctx, db, anon, &models.Session{User: user(stranger)}, nil); err != nil {
			t.Fatal(err)
		}
		if err := models.Authorize(e.ctx, db, anon, user(stranger), nil); err != nil {
			t.Fatalf("the holder of a session may read its user: %v", err)
		}
		wantCode(t, models.Authorize(e.ctx, db, anon, user(member), nil), models.CodeUnauthenticated)
	})
}

func TestAuthorizeObjects(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *gorm.DB) {
		e := newEnv(t, db)
		res, err := models.Identify(e.ctx, db, models.NewCatalog(db, 0), models.IdentifyInput{
			AppPublicID: e.app.PublicID, DeviceID: "d-1", Email: "someone@example.com", Secret: e.secret,
		})
		if err != nil {
			t.Fatal(err)
		}
		fields := func(names ...string) func() []string { return func() []string { return names } }
		browser := models.Viewer{}.Fresh()
		// A browser reads what it sent of the device, nothing of the lead.
		if err := models.Authorize(e.ctx, db, browser, res.Device, fields("id", "appId", "__typename")); err != nil {
			t.Fatalf("a browser may read the device id it sent: %v", err)
		}
		wantCode(t, models.Authorize(e.ctx, db, browser, res.Device, fields("id", "userAgent")), models.CodeUnauthenticated)
		wantCode(t, models.Authorize(e.ctx, db, browser, res.Lead, fields("id")), models.CodeUnauthenticated)
		wantCode(t, models.Authorize(e.ctx, db, browser, []*models.Lead{res.Lead}, fields("email")), models.CodeUnauthenticated)

		other := newEnv(t, db)
		wantCode(t, models.Authorize(e.ctx, db, other.owner.Fresh(), res.Lead, fields("email")), models.CodeNotFound)
		wantCode(t, models.Authorize(e.ctx, db, models.Viewer{Secret: other.secret}.Fresh(), res.Lead, nil), models.CodeUnauthenticated)
		if err := models.Authorize(e.ctx, db, models.Viewer{Secret: e.secret}.Fresh(), res.Lead, nil); err != nil {
			t.Fatalf("the app's key reads its leads: %v", err)
		}
		// Members and invitations are for owners; a key is not an owner.
		m := &models.Membership{AppID: e.app.ID, UserID: e.owner.UserID, Role: models.RoleOwner}
		wantCode(t, models.Authorize(e.ctx, db, models.Viewer{Secret: e.secret}.Fresh(), m, nil), models.CodeForbidden)
		editor := newUser(t, db)
		e.join(editor, models.RoleEditor)
		wantCode(t, models.Authorize(e.ctx, db, editor.Fresh(), m, nil), models.CodeForbidden)
		if err := models.Authorize(e.ctx, db, e.owner.Fresh(), m, nil); err != nil {
			t.Fatal(err)
		}

		// A type without a rule never reaches a caller.
		err = models.Authorize(e.ctx, db, e.owner.Fresh(), &models.RefreshToken{}, nil)
		if code, _ := models.Code(err); err == nil || code != models.CodeInternal {
			t.Fatalf("an object without an access rule: %v", err)
		}
		if err := models.Authorize(e.ctx, db, browser, (*models.Lead)(nil), nil); err != nil {
			t.Fatalf("a null lead: %v", err)
		}
	})
}

// A viewer's decisions are cached for its life (a request, or a second of
// a subscription); a fresh viewer reads roles again.
func TestAuthorizeCachesPerViewer(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *gorm.DB) {
		e := newEnv(t, db)
		member := newUser(t, db)
		e.join(member, models.RoleViewer)
		def := e.define("cached")
		cached := member.Fresh()
		if err := models.Authorize(e.ctx, db, cached, def, nil); err != nil {
			t.Fatal(err)
		}
		if err := models.RemoveMember(e.ctx, db, e.owner, e.app.PublicID, models.FormatID(member.UserID)); err != nil {
			t.Fatal(err)
		}
		if err := models.Authorize(e.ctx, db, cached, def, nil); err != nil {
			t.Fatalf("the cached decision: %v", err)
		}
		err := models.Authorize(e.ctx, db, member.Fresh(), def, nil)
		if !errors.Is(err, models.ErrNotFound) {
			t.Fatalf("a removed member read a definition: %v", err)
		}
	})
}

// Inviting an address again, in any case, replaces its pending invitation
// on every store: the earlier token stops working.
func TestInvitingAgainReplacesTheInvitation(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *gorm.DB) {
		e := newEnv(t, db)
		first, err := models.AddMember(e.ctx, db, e.owner, e.app.PublicID, "ÉMILE@Example.com", models.RoleViewer)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := models.AddMember(e.ctx, db, e.owner, e.app.PublicID, "other@example.com", models.RoleViewer); err != nil {
			t.Fatal(err)
		}
		if _, err := models.AddMember(e.ctx, db, e.owner, e.app.PublicID, "émile@example.com", models.RoleEditor); err != nil {
			t.Fatal(err)
		}
		pending, err := models.Invitations(e.ctx, db, e.owner, e.app.PublicID)
		if err != nil {
			t.Fatal(err)
		}
		var emails []string
		for _, inv := range pending {
			emails = append(emails, inv.Email)
		}
		if len(emails) != 2 || emails[0] != "émile@example.com" || emails[1] != "other@example.com" {
			t.Fatalf("pending invitations %q, want the new émile@ and other@", emails)
		}
		if _, err := models.AcceptInvitation(e.ctx, db, first.Token, "", "correct horse battery"); err == nil {
			t.Fatal("the replaced invitation's token still works")
		}
	})
}

// Invitations of one address at once leave one pending invitation and
// refuse none: on MariaDB each found no pending invitation to replace, so
// several stayed, or deadlocked into INTERNAL_SERVER_ERROR.
func TestConcurrentInvitationsOfOneAddress(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *gorm.DB) {
		e := newEnv(t, db)
		const n = 8
		errs := make(chan error, n)
		for range n {
			go func() {
				_, err := models.AddMember(e.ctx, db, e.owner, e.app.PublicID, "twice@example.com", models.RoleViewer)
				errs <- err
			}()
		}
		for range n {
			if err := <-errs; err != nil {
				t.Errorf("invitation refused: %v", err)
			}
		}
		pending, err := models.Invitations(e.ctx, db, e.owner, e.app.PublicID)
		if err != nil {
			t.Fatal(err)
		}
		if len(pending) != 1 {
			t.Fatalf("%d pending invitations of one address, want 1", len(pending))
		}
	})
}

// An invitation accepted while the owner invites the address again ends
// with one of them winning (the acceptance, or the new invitation refused
// CONFLICT or replacing the old one), never a deadlock answered
// INTERNAL_SERVER_ERROR, as MariaDB answered one of the two.
func TestAcceptingWhileInvitedAgain(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *gorm.DB) {
		e := newEnv(t, db)
		for i := range 30 {
			email := fmt.Sprintf("again%d@example.com", i)
			inv, err := models.AddMember(e.ctx, db, e.owner, e.app.PublicID, email, models.RoleViewer)
			if err != nil {
				t.Fatal(err)
			}
			accepted := make(chan error, 1)
			go func() {
				_, err := models.AcceptInvitation(e.ctx, db, inv.Token, "", "correct horse battery")
				accepted <- err
			}()
			_, invErr := models.AddMember(e.ctx, db, e.owner, e.app.PublicID, email, models.RoleEditor)
			accErr := <-accepted
			for _, err := range []error{accErr, invErr} {
				if code, _ := models.Code(err); err != nil && code != "UNAUTHENTICATED" && code != "CONFLICT" {
					t.Fatalf("round %d: %v", i, err)
				}
			}
		}
	})
}
