package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/creack/pty"
	"github.com/crumbs-dev/crumbs/models"
	"gorm.io/gorm"
)

// An operator deletes a dashboard user (someone who left): the account, its
// memberships and sign-ins go; an app only they owned goes to an heir, and
// without one the command refuses, naming the app, so no app is left without
// an owner. Without a terminal to ask on, --yes is needed.
func TestAdminDeleteUser(t *testing.T) {
	eachStoreURL(t, func(t *testing.T, url string, db *gorm.DB) {
		ctx := context.Background()
		tag := fmt.Sprintf("%d", time.Now().UnixNano())
		email := func(name string) string { return name + "-del-" + tag + "@example.com" }
		env := map[string]string{"CRUMBS_DATABASE_URL": url, "CRUMBS_ADMIN_PASSWORD": "a good long password"}
		getenv := func(k string) string { return env[k] }
		admin := func(args ...string) (string, error) {
			var out bytes.Buffer
			err := run(ctx, append([]string{"admin"}, args...), getenv, strings.NewReader(""), &out, io.Discard)
			return out.String(), err
		}
		users := map[string]*models.User{}
		for _, name := range []string{"ann", "bob", "carol"} {
			u, err := models.CreateUser(ctx, db, email(name), name, "a good long password")
			if err != nil {
				t.Fatal(err)
			}
			users[name] = u
		}
		viewer := func(name string) models.Viewer { return models.Viewer{UserID: users[name].ID} }
		newApp := func(owner, name string) *models.App {
			app, _, err := models.CreateApp(ctx, db, viewer(owner), models.AppInput{Name: &name})
			if err != nil {
				t.Fatal(err)
			}
			return app
		}
		solo := newApp("ann", "Ann's shop "+tag)
		shared := newApp("ann", "Shared blog "+tag)
		if err := db.Create(&models.Membership{AppID: shared.ID, UserID: users["bob"].ID, Role: models.RoleOwner}).Error; err != nil {
			t.Fatal(err)
		}
		if err := db.Create(&models.Membership{AppID: solo.ID, UserID: users["carol"].ID, Role: models.RoleViewer}).Error; err != nil {
			t.Fatal(err)
		}
		// Pending invitations to ann's address (in another case) go with her
		// account; one to someone else stays.
		other := newApp("bob", "Bob's other app "+tag)
		invited, err := models.AddMember(ctx, db, viewer("bob"), other.PublicID, strings.ToUpper(email("ann")), models.RoleEditor)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := models.AddMember(ctx, db, viewer("bob"), other.PublicID, email("dave"), models.RoleViewer); err != nil {
			t.Fatal(err)
		}
		tokens, err := models.NewTokens([][]byte{[]byte(testJWTSecret)}, "crumbs", "crumbs-dashboard", 0)
		if err != nil {
			t.Fatal(err)
		}
		session, err := tokens.Login(ctx, db, "127.0.0.1", email("ann"), "a good long password")
		if err != nil {
			t.Fatal(err)
		}
		stillThere := func() {
			t.Helper()
			if _, err := models.Authenticate(ctx, db, email("ann"), "a good long password"); err != nil {
				t.Fatalf("a refused delete-user deleted the user: %v", err)
			}
		}

		if _, err := admin("delete-user", "--email", email("ann")); err == nil || !strings.Contains(err.Error(), "--yes") {
			t.Fatalf("delete-user without a terminal or --yes: %v", err)
		}
		stillThere()
		_, err = admin("delete-user", "--email", email("ann"), "--yes")
		if !errors.Is(err, models.ErrConflict) || !strings.Contains(err.Error(), solo.PublicID) || strings.Contains(err.Error(), shared.PublicID) {
			t.Fatalf("delete-user of an app's only owner without an heir: %v", err)
		}
		stillThere()
		if _, err := admin("delete-user", "--email", email("ann"), "--yes", "--heir", email("nobody")); !errors.Is(err, models.ErrNotFound) || !strings.Contains(err.Error(), "heir") {
			t.Fatalf("delete-user with an unknown heir: %v", err)
		}
		if _, err := admin("delete-user", "--email", email("ann"), "--yes", "--heir", strings.ToUpper(email("ann"))); err == nil {
			t.Fatal("a user was their own heir")
		}
		stillThere()

		out, err := admin("delete-user", "--email", strings.ToUpper(email("ann")), "--yes", "--heir", email("carol"))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(out, "deleted user "+email("ann")) || !strings.Contains(out, email("carol")+" now owns") || !strings.Contains(out, solo.PublicID) || strings.Contains(out, shared.PublicID) ||
			!strings.Contains(out, "withdrew 1 pending invitation(s)") {
			t.Fatalf("delete-user said %q", out)
		}
		if _, err := models.AcceptInvitation(ctx, db, invited.Token, "Ann again", "another good password"); !errors.Is(err, models.ErrUnauthenticated) {
			t.Fatalf("an invitation to the deleted user's address was accepted: %v", err)
		}
		var left []models.Invitation
		if err := db.Where("app_id = ?", other.ID).Find(&left).Error; err != nil {
			t.Fatal(err)
		}
		if len(left) != 1 || left[0].Email != email("dave") {
			t.Fatalf("invitations left in bob's app: %+v", left)
		}
		roles := func(app *models.App) map[uint64]models.Role {
			var ms []models.Membership
			if err := db.Where("app_id = ?", app.ID).Find(&ms).Error; err != nil {
				t.Fatal(err)
			}
			out := map[uint64]models.Role{}
			for _, m := range ms {
				out[m.UserID] = m.Role
			}
			return out
		}
		if got := roles(solo); len(got) != 1 || got[users["carol"].ID] != models.RoleOwner {
			t.Fatalf("members of the app ann alone owned: %v (carol is %d)", got, users["carol"].ID)
		}
		if got := roles(shared); len(got) != 1 || got[users["bob"].ID] != models.RoleOwner {
			t.Fatalf("members of the shared app: %v (bob is %d)", got, users["bob"].ID)
		}
		for _, table := range []string{"sign_ins", "refresh_tokens", "memberships", "users"} {
			column := "user_id"
			if table == "users" {
				column = "id"
			}
			var n int64
			if err := db.Table(table).Where(column+" = ?", users["ann"].ID).Count(&n).Error; err != nil {
				t.Fatal(err)
			}
			if n != 0 {
				t.Errorf("%d rows of %s are left for the deleted user", n, table)
			}
		}
		if _, err := models.Authenticate(ctx, db, email("ann"), "a good long password"); err == nil {
			t.Fatal("the deleted user signs in")
		}
		if _, err := tokens.Refresh(ctx, db, "127.0.0.1", session.RefreshToken); !errors.Is(err, models.ErrUnauthenticated) {
			t.Fatalf("the deleted user's sign-in refreshed: %v", err)
		}
		if _, err := tokens.VerifyAccessToken(ctx, db, session.AccessToken); !errors.Is(err, models.ErrUnauthenticated) {
			t.Fatalf("the deleted user's access token still works: %v", err)
		}
		// An access token a server still holds as live (CRUMBS_CACHE_TTL)
		// makes no app owned by no one.
		name := "After the deletion " + tag
		if _, _, err := models.CreateApp(ctx, db, viewer("ann"), models.AppInput{Name: &name}); !errors.Is(err, models.ErrUnauthenticated) {
			t.Fatalf("the deleted user made an app: %v", err)
		}
		var made int64
		if err := db.Model(&models.App{}).Where("name = ?", name).Count(&made).Error; err != nil || made != 0 {
			t.Fatalf("%d apps made by the deleted user (%v)", made, err)
		}
		if out, _ := admin("list-users"); strings.Contains(out, email("ann")) {
			t.Fatalf("list-users still lists the deleted user:\n%s", out)
		}
		if _, err := admin("delete-user", "--email", email("ann"), "--yes"); !errors.Is(err, models.ErrNotFound) {
			t.Fatalf("deleting a deleted user: %v", err)
		}
		// An email taken again makes a new account, with no old membership.
		if _, err := admin("create", "--email", email("ann")); err != nil {
			t.Fatal(err)
		}
	})
}

// On a terminal, delete-user asks for the email again before deleting.
func TestAdminDeleteUserAsksOnATerminal(t *testing.T) {
	url := "sqlite:" + filepath.Join(t.TempDir(), "crumbs.db")
	db := openURL(t, url)
	ctx := context.Background()
	if _, err := models.CreateUser(ctx, db, "leaver@example.com", "Leaver", "a good long password"); err != nil {
		t.Fatal(err)
	}
	env := func(k string) string { return map[string]string{"CRUMBS_DATABASE_URL": url}[k] }
	for _, answer := range []string{"someone@example.com", "Leaver@Example.com"} {
		ptmx, tty, err := pty.Open()
		if err != nil {
			t.Fatal(err)
		}
		var screen safeBuffer
		go io.Copy(&screen, ptmx)
		done := make(chan error, 1)
		go func() {
			done <- run(ctx, []string{"admin", "delete-user", "--email", "leaver@example.com"}, env, tty, io.Discard, tty)
		}()
		waitFor(t, func() bool { return strings.Contains(screen.String(), "Type the email again to go on: ") })
		if _, err := ptmx.Write([]byte(answer + "\r")); err != nil {
			t.Fatal(err)
		}
		var runErr error
		select {
		case runErr = <-done:
		case <-time.After(60 * time.Second):
			t.Fatal("delete-user did not finish")
		}
		ptmx.Close()
		tty.Close()
		_, authErr := models.Authenticate(ctx, db, "leaver@example.com", "a good long password")
		if answer == "someone@example.com" {
			if runErr == nil || !strings.Contains(runErr.Error(), "nothing was deleted") || authErr != nil {
				t.Fatalf("a wrong answer: %v; user signs in: %v", runErr, authErr)
			}
			continue
		}
		if runErr != nil || authErr == nil {
			t.Fatalf("the right answer: %v; user still signs in: %v", runErr, authErr == nil)
		}
	}
}

// An operator lists the apps with their owners and deletes one (a test app,
// or one whose owners are gone): it is refused at once, listed as being
// removed, and the servers' job removes it; another app is untouched.
// Without a terminal to ask on, --yes is needed.
func TestAdminDeleteApp(t *testing.T) {
	eachStoreURL(t, func(t *testing.T, url string, db *gorm.DB) {
		ctx := context.Background()
		tag := fmt.Sprintf("%d", time.Now().UnixNano())
		env := map[string]string{"CRUMBS_DATABASE_URL": url}
		admin := func(args ...string) (string, error) {
			var out bytes.Buffer
			err := run(ctx, append([]string{"admin"}, args...), func(k string) string { return env[k] }, strings.NewReader(""), &out, io.Discard)
			return out.String(), err
		}
		var viewers []models.Viewer
		var apps []*models.App
		for _, name := range []string{"ann", "bob"} {
			u, err := models.CreateUser(ctx, db, name+"-apps-"+tag+"@example.com", name, "a good long password")
			if err != nil {
				t.Fatal(err)
			}
			v := models.Viewer{UserID: u.ID}
			appName := name + "'s app " + tag
			app, _, err := models.CreateApp(ctx, db, v, models.AppInput{Name: &appName})
			if err != nil {
				t.Fatal(err)
			}
			viewers, apps = append(viewers, v), append(apps, app)
		}
		line := func(out string, app *models.App) string {
			for l := range strings.SplitSeq(out, "\n") {
				if strings.HasPrefix(l, app.PublicID+" ") {
					return l
				}
			}
			return ""
		}
		out, err := admin("list-apps")
		if err != nil {
			t.Fatal(err)
		}
		if l := line(out, apps[0]); !strings.Contains(l, apps[0].Name) || !strings.Contains(l, "ann-apps-"+tag+"@example.com") || !strings.HasSuffix(strings.TrimSpace(l), "active") {
			t.Fatalf("list-apps lists ann's app as %q:\n%s", l, out)
		}

		if _, err := admin("delete-app", "--app", apps[0].PublicID); err == nil || !strings.Contains(err.Error(), "--yes") {
			t.Fatalf("delete-app without a terminal or --yes: %v", err)
		}
		if _, err := admin("delete-app", "--app", "app_nope"+tag, "--yes"); !errors.Is(err, models.ErrNotFound) {
			t.Fatalf("delete-app of an unknown app: %v", err)
		}
		if _, err := viewers[0].App(ctx, db, apps[0].PublicID, models.RoleOwner); err != nil {
			t.Fatalf("a refused delete-app deleted the app: %v", err)
		}
		out, err = admin("delete-app", "--app", apps[0].PublicID, "--yes")
		if err != nil || !strings.Contains(out, "deleted app") || !strings.Contains(out, apps[0].PublicID) {
			t.Fatalf("delete-app: %v %q", err, out)
		}
		if _, err := viewers[0].App(ctx, db, apps[0].PublicID, models.RoleViewer); !errors.Is(err, models.ErrNotFound) {
			t.Fatalf("the owner still reaches the deleted app: %v", err)
		}
		if _, err := admin("delete-app", "--app", apps[0].PublicID, "--yes"); !errors.Is(err, models.ErrNotFound) {
			t.Fatalf("deleting a deleted app: %v", err)
		}
		out, _ = admin("list-apps")
		if l := line(out, apps[0]); !strings.Contains(l, "data being removed") {
			t.Fatalf("list-apps lists the deleted app as %q:\n%s", l, out)
		}
		// The job every server runs removes it after the settle time.
		job := models.NewAppDeleter(db, models.AppDeleterOptions{})
		if _, err := job.RunOnce(ctx, time.Now().Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		out, _ = admin("list-apps")
		if line(out, apps[0]) != "" || !strings.HasSuffix(strings.TrimSpace(line(out, apps[1])), "active") {
			t.Fatalf("after the job, list-apps:\n%s", out)
		}
		if _, err := viewers[1].App(ctx, db, apps[1].PublicID, models.RoleOwner); err != nil {
			t.Fatalf("bob's app: %v", err)
		}
	})
}
