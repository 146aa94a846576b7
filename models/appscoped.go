package models

import (
	"context"
	"log/slog"

	"gorm.io/gorm"
)

// The API reaches the app-scoped computations (insights, the event browser,
// matchers, goals, the live stream) only through the functions of this
// file: each takes the viewer and the app's public id and checks the
// viewer's role before anything runs, like every other models function
// behind a root field. The functions they call take an *App for the
// operator's tools (seed, bench) and for tests, which hold the store itself.

// inApp runs fn on the app with this public id if v has at least role need.
func inApp[T any](ctx context.Context, db *gorm.DB, v Viewer, appPublicID string, need Role, fn func(*App) (T, error)) (T, error) {
	app, err := v.App(ctx, db, appPublicID, need)
	if err != nil {
		var zero T
		return zero, err
	}
	return fn(app)
}

// OverviewFor is AppOverview for viewers of the app.
func OverviewFor(ctx context.Context, db *gorm.DB, v Viewer, appPublicID string, in RangeInput, exact bool) (*Overview, error) {
	return inApp(ctx, db, v, appPublicID, RoleViewer, func(app *App) (*Overview, error) { return AppOverview(ctx, db, app, in, exact) })
}

// BreakdownFor is AppBreakdown for viewers of the app.
func BreakdownFor(ctx context.Context, db *gorm.DB, v Viewer, appPublicID string, in RangeInput, by string, first int) ([]*DimStat, error) {
	return inApp(ctx, db, v, appPublicID, RoleViewer, func(app *App) ([]*DimStat, error) { return AppBreakdown(ctx, db, app, in, by, first) })
}

// FunnelFor is Funnel for viewers of the app.
func FunnelFor(ctx context.Context, db *gorm.DB, v Viewer, appPublicID string, in FunnelInput) (*FunnelReport, error) {
	return inApp(ctx, db, v, appPublicID, RoleViewer, func(app *App) (*FunnelReport, error) { return Funnel(ctx, db, app, in) })
}

// EventsFor is BrowseEvents for viewers of the app.
func EventsFor(ctx context.Context, db *gorm.DB, v Viewer, appPublicID string, in BrowseInput) (*EventPage, error) {
	return inApp(ctx, db, v, appPublicID, RoleViewer, func(app *App) (*EventPage, error) { return BrowseEvents(ctx, db, app, in) })
}

// EventMatchersFor lists the app's matchers, for viewers of the app.
func EventMatchersFor(ctx context.Context, db *gorm.DB, v Viewer, appPublicID string) ([]*EventMatcher, error) {
	return inApp(ctx, db, v, appPublicID, RoleViewer, func(app *App) ([]*EventMatcher, error) { return EventMatchers(ctx, db, app.ID) })
}

// GoalsFor lists the app's goals, for viewers of the app.
func GoalsFor(ctx context.Context, db *gorm.DB, v Viewer, appPublicID string) ([]*Goal, error) {
	return inApp(ctx, db, v, appPublicID, RoleViewer, func(app *App) ([]*Goal, error) { return Goals(ctx, db, app.ID) })
}

// GoalReportFor reports one goal of the app, for viewers of the app.
func GoalReportFor(ctx context.Context, db *gorm.DB, v Viewer, appPublicID, goalID string, in RangeInput) (*GoalReport, error) {
	return inApp(ctx, db, v, appPublicID, RoleViewer, func(app *App) (*GoalReport, error) {
		goal, err := GoalByID(ctx, db, app, "goalId", goalID)
		if err != nil {
			return nil, err
		}
		return ReportGoal(ctx, db, app, goal, in)
	})
}

// CreateEventMatcherFor is CreateEventMatcher for editors of the app.
func CreateEventMatcherFor(ctx context.Context, db *gorm.DB, v Viewer, appPublicID string, in EventMatcherInput) (*EventMatcher, error) {
	return inApp(ctx, db, v, appPublicID, RoleEditor, func(app *App) (*EventMatcher, error) { return CreateEventMatcher(ctx, db, app, in) })
}

// UpdateEventMatcherFor is UpdateEventMatcher for editors of the app.
func UpdateEventMatcherFor(ctx context.Context, db *gorm.DB, v Viewer, appPublicID, id string, in EventMatcherInput) (*EventMatcher, error) {
	return inApp(ctx, db, v, appPublicID, RoleEditor, func(app *App) (*EventMatcher, error) { return UpdateEventMatcher(ctx, db, app, id, in) })
}

// DeleteEventMatcherFor is DeleteEventMatcher for editors of the app.
func DeleteEventMatcherFor(ctx context.Context, db *gorm.DB, v Viewer, appPublicID, id string) (*EventMatcher, error) {
	return inApp(ctx, db, v, appPublicID, RoleEditor, func(app *App) (*EventMatcher, error) { return DeleteEventMatcher(ctx, db, app, id) })
}

// CreateGoalFor is CreateGoal for editors of the app.
func CreateGoalFor(ctx context.Context, db *gorm.DB, v Viewer, appPublicID string, in GoalInput) (*Goal, error) {
	return inApp(ctx, db, v, appPublicID, RoleEditor, func(app *App) (*Goal, error) { return CreateGoal(ctx, db, app, in) })
}

// UpdateGoalFor is UpdateGoal for editors of the app.
func UpdateGoalFor(ctx context.Context, db *gorm.DB, v Viewer, appPublicID, id string, in GoalInput) (*Goal, error) {
	return inApp(ctx, db, v, appPublicID, RoleEditor, func(app *App) (*Goal, error) { return UpdateGoal(ctx, db, app, id, in) })
}

// DeleteGoalFor is DeleteGoal for editors of the app.
func DeleteGoalFor(ctx context.Context, db *gorm.DB, v Viewer, appPublicID, id string) (*Goal, error) {
	return inApp(ctx, db, v, appPublicID, RoleEditor, func(app *App) (*Goal, error) { return DeleteGoal(ctx, db, app, id) })
}

// LiveCursorFor takes a LivePosition for a viewer of the app, as the cursor
// that LiveEventsFor streams after.
func LiveCursorFor(ctx context.Context, db *gorm.DB, v Viewer, appPublicID string) (string, error) {
	return inApp(ctx, db, v, appPublicID, RoleViewer, func(*App) (string, error) {
		pos, err := LivePosition(ctx, db)
		return FormatID(pos), err
	})
}

// LiveEventsFor streams the app's events to a viewer of the app (StreamEvents),
// from the cursor after (LiveCursorFor) if given, else from a position taken
// now. Each event is checked again before delivery, with the subscriber's
// credential verified anew every second (graph/websocket.go asks
// Authorize), so a removed member, a rotated key or an expired token ends
// the stream.
func LiveEventsFor(ctx context.Context, db *gorm.DB, v Viewer, appPublicID string, after *string, log *slog.Logger) (<-chan *Event, error) {
	return inApp(ctx, db, v, appPublicID, RoleViewer, func(app *App) (<-chan *Event, error) {
		var pos uint64
		var err error
		if after != nil {
			pos, err = ParseID("after", *after)
		} else {
			pos, err = LivePosition(ctx, db)
		}
		if err != nil {
			return nil, err
		}
		return StreamEvents(ctx, db, app.ID, pos, log), nil
	})
}
