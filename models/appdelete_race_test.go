package models_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/crumbs-dev/crumbs/models"
	"github.com/crumbs-dev/crumbs/models/modelstest"
	"gorm.io/gorm"
)

// An owner invites someone while another owner deletes the app: the
// invitation passed its access check before the deletion and reaches its
// transaction after it. It must not outlive the deletion, nor give anyone
// a way into the deleted app; and a member that a write in flight adds
// after the deletion (as an acceptance committing late would) does not
// reach it either: it is not listed, and every lookup by id is NOT_FOUND.
func TestDeleteAppRacesAnInvitation(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *gorm.DB) {
		db = pacedStore(t, db, func() {})
		ctx := context.Background()
		e := newEnv(t, db)
		other := newUser(t, db)
		if err := db.Exec("INSERT INTO memberships (app_id, user_id, role, created_at) VALUES (?, ?, 'owner', ?)", e.app.ID, other.UserID, time.Now()).Error; err != nil {
			t.Fatal(err)
		}
		tokens := newTestTokens(t)
		// Once the invitation's access check has read the inviter's role,
		// the other owner deletes the app.
		var armed atomic.Bool
		var deleted error
		err := db.Callback().Query().After("gorm:query").Register("test:delete-now", func(d *gorm.DB) {
			if d.Statement.Table == "memberships" && strings.Contains(d.Statement.SQL.String(), "SELECT `role`") && armed.CompareAndSwap(true, false) {
				_, deleted = tokens.DeleteApp(ctx, db, other, "127.0.0.1", e.app.PublicID, "correct horse battery")
			}
		})
		if err != nil {
			t.Fatal(err)
		}
		// An invitation made before, whose row a late write puts back.
		early, err := models.AddMember(ctx, db, e.owner, e.app.PublicID, fmt.Sprintf("early-%d@example.com", time.Now().UnixNano()), models.RoleViewer)
		if err != nil {
			t.Fatal(err)
		}
		var row map[string]any
		if err := db.Table("invitations").Where("id = ?", early.Invitation.ID).Take(&row).Error; err != nil {
			t.Fatal(err)
		}
		armed.Store(true)
		res, err := models.AddMember(ctx, db, e.owner, e.app.PublicID, fmt.Sprintf("late-%d@example.com", time.Now().UnixNano()), models.RoleEditor)
		if deleted != nil {
			t.Fatalf("the deletion: %v", deleted)
		}
		if err == nil {
			// Stored after the deletion: it must not let anyone in.
			if _, err := models.AcceptInvitation(ctx, db, res.Token, "Late", "correct horse battery"); err == nil {
				t.Fatal("an invitation to the deleted app was accepted")
			}
		} else if !errors.Is(err, models.ErrNotFound) {
			t.Fatalf("the invitation during the deletion: %v", err)
		}
		var n int64
		db.Table("invitations").Where("app_id = ?", e.app.ID).Count(&n)
		if n != 0 {
			t.Errorf("%d invitations of the deleted app stored after its deletion", n)
		}

		if err := db.Table("invitations").Create(row).Error; err != nil {
			t.Fatal(err)
		}
		if _, err := models.AcceptInvitation(ctx, db, early.Token, "Early", "correct horse battery"); !errors.Is(err, models.ErrUnauthenticated) {
			t.Errorf("an invitation to the deleted app stored late: %v, want UNAUTHENTICATED", err)
		}
		db.Exec("DELETE FROM invitations WHERE id = ?", early.Invitation.ID)

		// A membership arriving late, as a write in flight would add it.
		late := newUser(t, db)
		if err := db.Exec("INSERT INTO memberships (app_id, user_id, role, created_at) VALUES (?, ?, 'owner', ?)", e.app.ID, late.UserID, time.Now()).Error; err != nil {
			t.Fatal(err)
		}
		if apps, err := models.Apps(ctx, db, late); err != nil || len(apps) != 0 {
			t.Errorf("a late member lists %d apps (%v), want none", len(apps), err)
		}
		if _, err := late.AppByID(ctx, db, e.app.ID, models.RoleViewer); !errors.Is(err, models.ErrNotFound) {
			t.Errorf("a late member reaches the deleted app by id: %v", err)
		}
		if _, err := (models.Viewer{Secret: e.secret}).AppByID(ctx, db, e.app.ID, models.RoleViewer); err == nil {
			t.Error("the old key reaches the deleted app by id")
		}
	})
}

// Writes in flight while deleteApp commits: triggers (with the key, from a
// browser, batched), identifies, and the rollups consumer deriving them.
// Nothing fails but with a refusal, whatever landed before the deletion
// is removed by the job, and after it no table holds a row of the app nor
// does any write add one.
func TestDeleteAppRacesWrites(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *gorm.DB) {
		ctx := context.Background()
		e := newEnv(t, db)
		tables := appIDTables(t, db)
		stop := make(chan struct{})
		var wg sync.WaitGroup
		var accepted, refused atomic.Int64
		var unexpected atomic.Value
		note := func(err error) {
			if err == nil {
				accepted.Add(1)
				return
			}
			refused.Add(1)
			if !errors.Is(err, models.ErrNotFound) && !errors.Is(err, models.ErrUnauthenticated) && !errors.Is(err, models.ErrEventDisabled) {
				unexpected.Store(err.Error())
			}
		}
		for w := range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; ; i++ {
					select {
					case <-stop:
						return
					default:
					}
					device := fmt.Sprintf("w%d-%d", w, i%7)
					switch i % 3 {
					case 0:
						for _, r := range e.writer.Trigger(ctx, []models.TriggerInput{
							{AppPublicID: e.app.PublicID, DeviceID: device, Code: "view", Secret: e.secret},
							{AppPublicID: e.app.PublicID, DeviceID: device, Code: "view", Origin: "https://s.example"},
						}) {
							note(r.Err)
						}
					case 1:
						_, err := models.Identify(ctx, db, e.writer.Catalog(), models.IdentifyInput{AppPublicID: e.app.PublicID, DeviceID: device, Email: fmt.Sprintf("w%d@example.com", w), Secret: e.secret})
						note(err)
					default:
						note(e.writer.EventLog().Drain(ctx))
					}
				}
			}()
		}
		for accepted.Load() < 40 {
			time.Sleep(5 * time.Millisecond)
		}
		if _, err := newTestTokens(t).DeleteApp(ctx, db, e.owner, "127.0.0.1", e.app.PublicID, "correct horse battery"); err != nil {
			t.Fatal(err)
		}
		d := models.NewAppDeleter(db, models.AppDeleterOptions{Settle: time.Minute, Chunk: 7})
		if _, err := d.RunOnce(ctx, time.Now()); err != nil {
			t.Fatal(err)
		}
		for before := refused.Load(); refused.Load() < before+40; {
			time.Sleep(5 * time.Millisecond)
		}
		close(stop)
		wg.Wait()
		if err := e.writer.EventLog().Drain(ctx); err != nil {
			t.Fatal(err)
		}
		if u := unexpected.Load(); u != nil {
			t.Errorf("a write answered %v", u)
		}
		run, err := d.RunOnce(ctx, time.Now().Add(time.Hour))
		if err != nil || !slices.Contains(run.Gone, e.app.ID) {
			t.Fatalf("after the settle time: %+v %v", run, err)
		}
		checkNoRows(t, db, tables, e.app.ID)
		// Writes after the app row went add nothing either.
		for _, r := range e.writer.Trigger(ctx, []models.TriggerInput{{AppPublicID: e.app.PublicID, DeviceID: "after", Code: "view", Origin: "https://s.example"}}) {
			if !errors.Is(r.Err, models.ErrNotFound) {
				t.Errorf("a trigger after the app row went: %+v", r)
			}
		}
		if _, err := models.Identify(ctx, db, e.writer.Catalog(), models.IdentifyInput{AppPublicID: e.app.PublicID, DeviceID: "after", Email: "after@example.com"}); err == nil {
			t.Error("an identify after the app row went was accepted")
		}
		if err := e.writer.EventLog().Drain(ctx); err != nil {
			t.Fatal(err)
		}
		checkNoRows(t, db, tables, e.app.ID)
		t.Logf("%d writes accepted, %d refused", accepted.Load(), refused.Load())
	})
}

// A replica of a release before app deletion claims the deliveries of
// every action not disabled, whatever the app: the deletion disables the
// app's actions, so such a replica sends none of its pending deliveries
// during a rolling upgrade. Another app's actions stay as they were.
func TestDeleteAppDisablesItsActions(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *gorm.DB) {
		hook := newReceiver(t, nil)
		doomed := newAutomationEnv(t, db, models.DispatcherOptions{})
		kept := newAutomationEnv(t, db, models.DispatcherOptions{})
		for _, e := range []*automationEnv{doomed, kept} {
			e.matcher("Views", "view")
			e.rule("Hook", "Views", false, webhookTo(hook.URL))
			e.rule("Hook too", "Views", false, webhookTo(hook.URL))
		}
		if _, err := newTestTokens(t).DeleteApp(doomed.ctx, db, doomed.owner, "127.0.0.1", doomed.app.PublicID, "correct horse battery"); err != nil {
			t.Fatal(err)
		}
		count := func(appID uint64, disabled bool) int64 {
			var n int64
			q := db.Model(&models.AutomationAction{}).Where("app_id = ?", appID)
			if disabled {
				q = q.Where("disabled_at IS NOT NULL")
			}
			if err := q.Count(&n).Error; err != nil {
				t.Fatal(err)
			}
			return n
		}
		if all, off := count(doomed.app.ID, false), count(doomed.app.ID, true); all != 2 || off != 2 {
			t.Errorf("the deleted app's actions: %d of %d disabled", off, all)
		}
		if all, off := count(kept.app.ID, false), count(kept.app.ID, true); all != 2 || off != 0 {
			t.Errorf("the other app's actions: %d of %d disabled", off, all)
		}
	})
}

// Owners delete the app at once while one of them deletes their account
// (in odd rounds the app's sole owner, alone): exactly one deletion wins,
// another is NOT_FOUND, deleteAccount either goes through or is CONFLICT,
// and nothing is left behind: no member of the deleted app, and never a
// live app without an owner.
func TestDeleteAppRacesOwners(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *gorm.DB) {
		ctx := context.Background()
		tokens := newTestTokens(t)
		for round := range 6 {
			e := newEnv(t, db)
			deleters := []models.Viewer{e.owner}
			if round%2 == 0 {
				second := newUser(t, db)
				if err := db.Exec("INSERT INTO memberships (app_id, user_id, role, created_at) VALUES (?, ?, 'owner', ?)", e.app.ID, second.UserID, time.Now()).Error; err != nil {
					t.Fatal(err)
				}
				deleters = append(deleters, second)
			}
			var wg sync.WaitGroup
			errs := make([]error, len(deleters))
			var accountErr error
			start := make(chan struct{})
			for i, v := range deleters {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					_, errs[i] = tokens.DeleteApp(ctx, db, v, "127.0.0.1", e.app.PublicID, "correct horse battery")
				}()
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				accountErr = tokens.DeleteAccount(ctx, db, e.owner, "127.0.0.2", "correct horse battery")
			}()
			close(start)
			wg.Wait()
			won := 0
			for i, err := range errs {
				switch {
				case err == nil:
					won++
				case errors.Is(err, models.ErrNotFound):
				case i == 0 && accountErr == nil && errors.Is(err, models.ErrUnauthenticated):
					// The owner's account went first (another owner keeps
					// the app): their deletion finds no user.
				default:
					t.Fatalf("round %d: a deletion answered %v", round, err)
				}
			}
			if accountErr != nil && !errors.Is(accountErr, models.ErrConflict) {
				t.Fatalf("round %d: deleteAccount answered %v", round, accountErr)
			}
			var live, members, owners int64
			db.Model(&models.App{}).Where("id = ? AND deleted_at IS NULL", e.app.ID).Count(&live)
			db.Model(&models.Membership{}).Where("app_id = ?", e.app.ID).Count(&members)
			db.Model(&models.Membership{}).Where("app_id = ? AND role = 'owner'", e.app.ID).Count(&owners)
			if live == 1 && owners == 0 || live == 0 && members != 0 || won > 1 {
				t.Fatalf("round %d: %d deletions won, app live %d, %d members (%d owners), errors %v, deleteAccount %v", round, won, live, members, owners, errs, accountErr)
			}
			if won == 0 && live == 0 {
				t.Fatalf("round %d: the app is deleted but no deletion answered so", round)
			}
		}
	})
}
