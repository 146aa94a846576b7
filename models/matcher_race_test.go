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
