package models_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/crumbs-dev/crumbs/models"
	"github.com/crumbs-dev/crumbs/models/modelstest"
	"gorm.io/gorm"
)

// Deleting a matcher locks the goals that use it and no others. Asked
// whether any goal starts or completes with it in one locking read
// ("start_matcher_id = ? OR completion_matcher_id = ?"), MariaDB scanned
// the whole goals table for a matcher many goals start from and locked
// every goal of every app: the delete waited for another app's goal being
// edited (here past its deadline), and held every other edit of a goal
// until it ended. MariaDB only: SQLite locks the whole database anyway.
func TestDeletingAMatcherLocksNoOtherAppsGoals(t *testing.T) {
	db := modelstest.MySQL(t)
	e := newEnv(t, db)
	matcher := func(app *models.App, name string) *models.EventMatcher {
		m, err := models.CreateEventMatcher(e.ctx, db, app, models.EventMatcherInput{Name: &name, Code: ptr("view")})
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	start, end, spare := matcher(e.app, "start"), matcher(e.app, "end"), matcher(e.app, "spare")
	// Many goals from one matcher, as a site whose funnels all begin with
	// a page view has.
	now := time.Now()
	goals := make([]models.Goal, 300)
	for i := range goals {
		goals[i] = models.Goal{AppID: e.app.ID, Name: fmt.Sprint("funnel ", i), StartMatcherID: start.ID, CompletionMatcherID: end.ID,
			WindowSeconds: 3600, CreatedAt: now, UpdatedAt: now}
	}
	if err := db.CreateInBatches(goals, 100).Error; err != nil {
		t.Fatal(err)
	}
	other, _, err := models.CreateApp(e.ctx, db, newUser(t, db), models.AppInput{Name: ptr("Other " + t.Name())})
	if err != nil {
		t.Fatal(err)
	}
	matcher(other, "a")
	matcher(other, "b")
	edited, err := models.CreateGoal(e.ctx, db, other, models.GoalInput{Name: ptr("other"), StartMatcher: ptr("a"), CompletionMatcher: ptr("b")})
	if err != nil {
		t.Fatal(err)
	}
	// The statistics a live table has: the plan follows the data.
	if err := db.Exec("ANALYZE TABLE goals").Error; err != nil {
		t.Fatal(err)
	}

	// Another app's goal is being edited: its row stays locked until the
	// edit ends.
	edit := db.Begin()
	defer edit.Rollback()
	if err := edit.Exec("UPDATE goals SET window_seconds = window_seconds + 1 WHERE id = ?", edited.ID).Error; err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(e.ctx, 5*time.Second)
	defer cancel()
	var log sqlLog
	_, err = models.DeleteEventMatcher(ctx, db.Session(&gorm.Session{Logger: &log}), e.app, models.FormatID(start.ID))
	wantCode(t, err, "CONFLICT")
	// Each read of the goals goes through the index of its column alone.
	for _, column := range []string{"start_matcher_id", "completion_matcher_id"} {
		plan := explainOne(t, db, log.find(t, "WHERE "+column+" = "))
		if plan["type"] != "ref" || plan["key"] != "idx_goals_"+column {
			t.Errorf("the delete's read of goals by %s: %v", column, plan)
		}
	}
	_, err = models.DeleteEventMatcher(ctx, db, e.app, models.FormatID(end.ID))
	wantCode(t, err, "CONFLICT")
	if _, err := models.DeleteEventMatcher(ctx, db, e.app, models.FormatID(spare.ID)); err != nil {
		t.Fatalf("deleting an unused matcher: %v", err)
	}
}
