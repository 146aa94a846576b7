package models_test

import (
	"fmt"
	"testing"

	"github.com/crumbs-dev/crumbs/models"
	"github.com/crumbs-dev/crumbs/models/modelstest"
	"gorm.io/gorm"
)

// A matcher deleted while a goal or rule is being stored with it is either
// refused CONFLICT (the goal or rule came first) or the goal or rule is
// refused naming its matcher: on MariaDB both went through, and the goal
// left without its matcher made goals(appId) INTERNAL_SERVER_ERROR.
func TestDeletingAMatcherRacingItsUsers(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *gorm.DB) {
		e := newEnv(t, db)
		if _, err := models.CreateEventMatcher(e.ctx, db, e.app, models.EventMatcherInput{Name: ptr("base"), Code: ptr("view")}); err != nil {
			t.Fatal(err)
		}
		goal, err := models.CreateGoal(e.ctx, db, e.app, models.GoalInput{Name: ptr("moved"), StartMatcher: ptr("base"), CompletionMatcher: ptr("base")})
		if err != nil {
			t.Fatal(err)
		}
		guard := models.URLGuard{AllowPrivate: true}
		users := []func(name string, i int) error{
			func(name string, i int) error {
				_, err := models.CreateGoal(e.ctx, db, e.app, models.GoalInput{Name: ptr(fmt.Sprint("goal ", i)), StartMatcher: ptr("base"), CompletionMatcher: &name})
				return err
			},
			func(name string, _ int) error {
				_, err := models.UpdateGoal(e.ctx, db, e.app, models.FormatID(goal.ID), models.GoalInput{StartMatcher: &name})
				return err
			},
			func(name string, i int) error {
				_, err := models.CreateAutomationRuleFor(e.ctx, db, e.owner, guard, e.app.PublicID, models.AutomationRuleInput{Name: ptr(fmt.Sprint("rule ", i)), Matcher: &name},
					[]models.AutomationActionInput{{Kind: ptr(models.ActionWebhook), URL: ptr("http://127.0.0.1/h")}})
				return err
			},
		}
		for i := range 30 {
			name := fmt.Sprint("m", i)
			m, err := models.CreateEventMatcher(e.ctx, db, e.app, models.EventMatcherInput{Name: &name, Code: ptr("view")})
			if err != nil {
				t.Fatal(err)
			}
			used := make(chan error, 1)
			go func() { used <- users[i%len(users)](name, i) }()
			_, delErr := models.DeleteEventMatcher(e.ctx, db, e.app, models.FormatID(m.ID))
			useErr := <-used
			if (delErr == nil) == (useErr == nil) {
				t.Fatalf("round %d: delete %v, use %v: want exactly one refused", i, delErr, useErr)
			}
			if delErr != nil {
				wantCode(t, delErr, "CONFLICT")
			} else {
				wantCode(t, useErr, "BAD_USER_INPUT")
			}
		}
	})
}

// A goal or rule moved off a matcher while that matcher is deleted ends
// one of two ways: the delete is refused CONFLICT (the goal or rule still
// used it) or it goes through after the move; the move itself always goes
// through. On MariaDB the delete locked the user's old index entry and
// waited for its row, which the move held while it waited for that entry:
// one of them failed with a deadlock (Error 1213).
func TestMovingOffAMatcherRacingItsDeletion(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *gorm.DB) {
		e := newEnv(t, db)
		guard := models.URLGuard{AllowPrivate: true}
		matcher := func(name string) *models.EventMatcher {
			m, err := models.CreateEventMatcher(e.ctx, db, e.app, models.EventMatcherInput{Name: &name, Code: ptr("view")})
			if err != nil {
				t.Fatal(err)
			}
			return m
		}
		matcher("m0")
		goal, err := models.CreateGoal(e.ctx, db, e.app, models.GoalInput{Name: ptr("goal"), StartMatcher: ptr("m0"), CompletionMatcher: ptr("m0")})
		if err != nil {
			t.Fatal(err)
		}
		rule, err := models.CreateAutomationRuleFor(e.ctx, db, e.owner, guard, e.app.PublicID, models.AutomationRuleInput{Name: ptr("rule"), Matcher: ptr("m0")},
			[]models.AutomationActionInput{{Kind: ptr(models.ActionWebhook), URL: ptr("http://127.0.0.1/h")}})
		if err != nil {
			t.Fatal(err)
		}
		goalID, ruleID := models.FormatID(goal.ID), models.FormatID(rule.Rule.ID)
		moves := []func(to string) error{
			func(to string) error {
				_, err := models.UpdateGoal(e.ctx, db, e.app, goalID, models.GoalInput{StartMatcher: &to, CompletionMatcher: &to})
				return err
			},
			func(to string) error {
				_, err := models.UpdateAutomationRuleFor(e.ctx, db, e.owner, e.app.PublicID, ruleID, models.AutomationRuleInput{Matcher: &to})
				return err
			},
		}
		// Each round moves the goal and the rule from m<i> to m<i+1> while m<i> is deleted.
		from := "m0"
		for i := range 100 {
			to := fmt.Sprint("m", i+1)
			matcher(to)
			var oldID uint64
			if err := db.Model(&models.EventMatcher{}).Where("app_id = ? AND name = ?", e.app.ID, from).Pluck("id", &oldID).Error; err != nil {
				t.Fatal(err)
			}
			moved := make(chan error, len(moves))
			for _, move := range moves {
				go func() { moved <- move(to) }()
			}
			_, delErr := models.DeleteEventMatcher(e.ctx, db, e.app, models.FormatID(oldID))
			for range moves {
				if err := <-moved; err != nil {
					t.Fatalf("round %d: moving to %s: %v", i, to, err)
				}
			}
			if delErr != nil {
				wantCode(t, delErr, "CONFLICT")
				if _, err := models.DeleteEventMatcher(e.ctx, db, e.app, models.FormatID(oldID)); err != nil {
					t.Fatalf("round %d: deleting %s once unused: %v", i, from, err)
				}
			}
			noDanglingMatchers(t, e)
			from = to
		}
	})
}

// noDanglingMatchers fails the test if a goal or rule of the app names a
// matcher that is gone.
func noDanglingMatchers(t *testing.T, e *env) {
	t.Helper()
	var n int64
	err := e.db.Raw(`SELECT COUNT(*) FROM goals g WHERE g.app_id = ? AND (
		NOT EXISTS (SELECT 1 FROM event_matchers m WHERE m.id = g.start_matcher_id) OR
		NOT EXISTS (SELECT 1 FROM event_matchers m WHERE m.id = g.completion_matcher_id))`, e.app.ID).Scan(&n).Error
	if err != nil || n != 0 {
		t.Fatalf("%d goals without their matchers (%v)", n, err)
	}
	err = e.db.Raw(`SELECT COUNT(*) FROM automation_rules r WHERE r.app_id = ? AND
		NOT EXISTS (SELECT 1 FROM event_matchers m WHERE m.id = r.matcher_id)`, e.app.ID).Scan(&n).Error
	if err != nil || n != 0 {
		t.Fatalf("%d rules without their matcher (%v)", n, err)
	}
}
