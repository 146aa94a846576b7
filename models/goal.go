package models

import (
	"context"
	"errors"
	"slices"
	"time"

	"gorm.io/gorm"
)

// Goal is a stored conversion: visitors who did the start matcher's event
// and then, within the window, the completion matcher's.
type Goal struct {
	ID                  uint64    `gorm:"primaryKey"`
	AppID               uint64    `gorm:"not null;uniqueIndex:idx_goals_app_name,priority:1"`
	Name                string    `gorm:"size:200;not null;uniqueIndex:idx_goals_app_name,priority:2"`
	StartMatcherID      uint64    `gorm:"not null;index"`
	CompletionMatcherID uint64    `gorm:"not null;index"`
	WindowSeconds       int64     `gorm:"not null"`
	CreatedAt           time.Time `gorm:"not null"`
	UpdatedAt           time.Time `gorm:"not null"`
}

// GoalInput holds the editable fields of a goal; matchers are named. Nil
// means unchanged.
type GoalInput struct {
	Name              *string
	StartMatcher      *string
	CompletionMatcher *string
	Window            *time.Duration
}

const defaultGoalWindow = 30 * 24 * time.Hour

// apply validates in, adding its bad fields to bad, and copies it onto g.
// The matchers are looked up only once bad holds none.
func (g *Goal) apply(ctx context.Context, db *gorm.DB, in GoalInput, bad *validation) error {
	if in.Name != nil {
		if name, err := checkName(*in.Name); bad.add(err) {
			g.Name = name
		}
	}
	if in.Window != nil && bad.check("windowSeconds", *in.Window >= time.Second && *in.Window <= maxFunnelWindow, "must be between 1 second and 90 days") {
		g.WindowSeconds = int64(*in.Window / time.Second)
	}
	if err := bad.err(); err != nil {
		return err
	}
	if in.StartMatcher != nil {
		m, err := eventMatcherByName(ctx, db, g.AppID, "startMatcher", *in.StartMatcher)
		if err != nil {
			return err
		}
		g.StartMatcherID = m.ID
	}
	if in.CompletionMatcher != nil {
		m, err := eventMatcherByName(ctx, db, g.AppID, "completionMatcher", *in.CompletionMatcher)
		if err != nil {
			return err
		}
		g.CompletionMatcherID = m.ID
	}
	return nil
}

// matcherFields maps the matchers in names to their argument, for keepMatchers.
func (g *Goal) matcherFields(in GoalInput) map[uint64]string {
	fields := map[uint64]string{}
	if in.StartMatcher != nil {
		fields[g.StartMatcherID] = "startMatcher"
	}
	if in.CompletionMatcher != nil {
		fields[g.CompletionMatcherID] = "completionMatcher"
	}
	return fields
}

// CreateGoal stores a goal in the app.
func CreateGoal(ctx context.Context, db *gorm.DB, app *App, in GoalInput) (*Goal, error) {
	var bad validation
	bad.check("name", in.Name != nil, "is required")
	bad.check("startMatcher", in.StartMatcher != nil, "is required")
	bad.check("completionMatcher", in.CompletionMatcher != nil, "is required")
	g := &Goal{AppID: app.ID, WindowSeconds: int64(defaultGoalWindow / time.Second)}
	if err := g.apply(ctx, db, in, &bad); err != nil {
		return nil, err
	}
	err := db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := keepMatchers(tx, g.matcherFields(in)); err != nil {
			return err
		}
		return tx.Create(g).Error
	})
	return g, conflictOnDuplicate(err, "name", "a goal named %q exists in this app", g.Name)
}

// UpdateGoal changes the given fields of a goal of the app, and only
// those, so concurrent edits of different fields do not undo each other.
// The matchers named are looked up first; the goal is then read locked, so
// the goal it answers is the one stored.
func UpdateGoal(ctx context.Context, db *gorm.DB, app *App, id string, in GoalInput) (*Goal, error) {
	g, err := GoalByID(ctx, db, app, "id", id)
	if err != nil {
		return nil, err
	}
	if err := g.apply(ctx, db, in, &validation{}); err != nil {
		return nil, err
	}
	var stored *Goal
	err = withRetry(ctx, func() error {
		return db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
			// Matchers first, those named and those the goal moves off, then
			// the goal: the order DeleteEventMatcher locks in.
			current, err := GoalByID(ctx, tx, app, "id", id)
			if err != nil {
				return err
			}
			if err := keepMatchers(tx, g.matcherFields(in), current.leaving(in)...); err != nil {
				return err
			}
			if stored, err = GoalByID(ctx, forUpdate(tx), app, "id", id); err != nil {
				return err
			}
			if !slices.Equal(stored.leaving(in), current.leaving(in)) {
				// Moved meanwhile: this lock comes out of order, and the
				// deadlock it may meet is retried.
				if err := keepMatchers(tx, nil, stored.leaving(in)...); err != nil {
					return err
				}
			}
			err = tx.Model(&Goal{}).Where("id = ?", stored.ID).Updates(stored.take(g, in)).Error
			return conflictOnDuplicate(err, "name", "a goal named %q exists in this app", g.Name)
		})
	})
	if err != nil {
		return nil, err
	}
	return stored, nil
}

// leaving lists the matchers that in replaces in g.
func (g *Goal) leaving(in GoalInput) []uint64 {
	var ids []uint64
	if in.StartMatcher != nil {
		ids = append(ids, g.StartMatcherID)
	}
	if in.CompletionMatcher != nil {
		ids = append(ids, g.CompletionMatcherID)
	}
	return ids
}

// take copies the fields that in gives from edited onto g and returns
// their columns, with updated_at.
func (g *Goal) take(edited *Goal, in GoalInput) map[string]any {
	g.UpdatedAt = Now()
	changes := map[string]any{"updated_at": g.UpdatedAt}
	if in.Name != nil {
		g.Name = edited.Name
		changes["name"] = g.Name
	}
	if in.StartMatcher != nil {
		g.StartMatcherID = edited.StartMatcherID
		changes["start_matcher_id"] = g.StartMatcherID
	}
	if in.CompletionMatcher != nil {
		g.CompletionMatcherID = edited.CompletionMatcherID
		changes["completion_matcher_id"] = g.CompletionMatcherID
	}
	if in.Window != nil {
		g.WindowSeconds = edited.WindowSeconds
		changes["window_seconds"] = g.WindowSeconds
	}
	return changes
}

// DeleteGoal deletes a goal of the app.
func DeleteGoal(ctx context.Context, db *gorm.DB, app *App, id string) (*Goal, error) {
	g, err := GoalByID(ctx, db, app, "id", id)
	if err != nil {
		return nil, err
	}
	return g, db.WithContext(ctx).Delete(g).Error
}

// GoalByID returns one goal of the app; field names the argument id came in.
func GoalByID(ctx context.Context, db *gorm.DB, app *App, field, id string) (*Goal, error) {
	n, err := ParseID(field, id)
	if err != nil {
		return nil, err
	}
	var g Goal
	err = db.WithContext(ctx).Where("app_id = ? AND id = ?", app.ID, n).Take(&g).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, newError(ErrNotFound, "goal %s not found", id)
	}
	return &g, err
}

// Goals lists the app's goals by name.
func Goals(ctx context.Context, db *gorm.DB, appID uint64) ([]*Goal, error) {
	var out []*Goal
	err := db.WithContext(ctx).Where("app_id = ?", appID).Order("name").Find(&out).Error
	return out, err
}

// GoalReport is a goal's outcome in a range.
type GoalReport struct {
	From, To  time.Time
	Started   int64
	Completed int64
	// MedianToComplete is nil when nobody completed.
	MedianToComplete *time.Duration
}

// ConversionRate is completed / started, 0 when nobody started.
func (r *GoalReport) ConversionRate() float64 {
	if r.Started == 0 {
		return 0
	}
	return float64(r.Completed) / float64(r.Started)
}

// ReportGoal counts the visitors who started the goal in the range and
// those who completed it within the goal's window: a two-step funnel.
func ReportGoal(ctx context.Context, db *gorm.DB, app *App, g *Goal, in RangeInput) (*GoalReport, error) {
	ms, err := EventMatchersByID(ctx, db, []uint64{g.StartMatcherID, g.CompletionMatcherID})
	if err != nil {
		return nil, err
	}
	start, done := ms[g.StartMatcherID], ms[g.CompletionMatcherID]
	if start == nil || done == nil {
		return nil, newError(ErrNotFound, "a matcher of goal %q is gone", g.Name)
	}
	f, err := Funnel(ctx, db, app, FunnelInput{
		Range: in, Steps: []Matcher{start.Matcher(), done.Matcher()}, Window: time.Duration(g.WindowSeconds) * time.Second,
		undefinedMatchesNothing: true,
	})
	if err != nil {
		return nil, err
	}
	return &GoalReport{From: f.From, To: f.To, Started: f.Steps[0].Entered, Completed: f.Steps[1].Entered, MedianToComplete: f.Steps[1].MedianFromPrevious}, nil
}
