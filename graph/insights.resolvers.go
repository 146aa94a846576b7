package graph

import (
	"context"
	"time"

	"github.com/crumbs-dev/crumbs/graph/generated"
	"github.com/crumbs-dev/crumbs/graph/model"
	"github.com/crumbs-dev/crumbs/models"
)

// Definition is the resolver for the definition field.
func (r *definitionCountResolver) Definition(ctx context.Context, obj *models.DefinitionCount) (*models.EventDefinition, error) {
	return loadersFrom(ctx).definitions.Load(ctx, obj.DefinitionID)
}

// Rules is the resolver for the rules field.
func (r *eventMatcherResolver) Rules(ctx context.Context, obj *models.EventMatcher) ([]*models.Rule, error) {
	return rulesOut(obj.Rules), nil
}

// StartMatcher is the resolver for the startMatcher field.
func (r *goalResolver) StartMatcher(ctx context.Context, obj *models.Goal) (*models.EventMatcher, error) {
	return loadersFrom(ctx).matchers.Load(ctx, obj.StartMatcherID)
}

// CompletionMatcher is the resolver for the completionMatcher field.
func (r *goalResolver) CompletionMatcher(ctx context.Context, obj *models.Goal) (*models.EventMatcher, error) {
	return loadersFrom(ctx).matchers.Load(ctx, obj.CompletionMatcherID)
}

// CreateEventMatcher is the resolver for the createEventMatcher field.
func (r *mutationResolver) CreateEventMatcher(ctx context.Context, appID string, input model.EventMatcherInput) (*models.EventMatcher, error) {
	return models.CreateEventMatcherFor(ctx, r.DB, viewer(ctx), appID, models.EventMatcherInput{Name: &input.Name, Code: &input.Code, Rules: rulesIn(input.Rules)})
}

// UpdateEventMatcher is the resolver for the updateEventMatcher field.
func (r *mutationResolver) UpdateEventMatcher(ctx context.Context, appID string, id string, input model.UpdateEventMatcherInput) (*models.EventMatcher, error) {
	return models.UpdateEventMatcherFor(ctx, r.DB, viewer(ctx), appID, id, models.EventMatcherInput{Name: input.Name, Code: input.Code, Rules: rulesIn(input.Rules)})
}

// DeleteEventMatcher is the resolver for the deleteEventMatcher field.
func (r *mutationResolver) DeleteEventMatcher(ctx context.Context, appID string, id string) (*model.DeletePayload, error) {
	m, err := models.DeleteEventMatcherFor(ctx, r.DB, viewer(ctx), appID, id)
	if err != nil {
		return nil, err
	}
	return &model.DeletePayload{ID: models.FormatID(m.ID)}, nil
}

// CreateGoal is the resolver for the createGoal field.
func (r *mutationResolver) CreateGoal(ctx context.Context, appID string, input model.GoalInput) (*models.Goal, error) {
	return models.CreateGoalFor(ctx, r.DB, viewer(ctx), appID, models.GoalInput{Name: &input.Name, StartMatcher: &input.StartMatcher, CompletionMatcher: &input.CompletionMatcher, Window: seconds(input.WindowSeconds)})
}

// UpdateGoal is the resolver for the updateGoal field.
func (r *mutationResolver) UpdateGoal(ctx context.Context, appID string, id string, input model.UpdateGoalInput) (*models.Goal, error) {
	return models.UpdateGoalFor(ctx, r.DB, viewer(ctx), appID, id, models.GoalInput{Name: input.Name, StartMatcher: input.StartMatcher, CompletionMatcher: input.CompletionMatcher, Window: seconds(input.WindowSeconds)})
}

// DeleteGoal is the resolver for the deleteGoal field.
func (r *mutationResolver) DeleteGoal(ctx context.Context, appID string, id string) (*model.DeletePayload, error) {
	g, err := models.DeleteGoalFor(ctx, r.DB, viewer(ctx), appID, id)
	if err != nil {
		return nil, err
	}
	return &model.DeletePayload{ID: models.FormatID(g.ID)}, nil
}

// Interval is the resolver for the interval field.
func (r *overviewResolver) Interval(ctx context.Context, obj *models.Overview) (model.Interval, error) {
	return model.Interval(obj.Interval), nil
}

// Overview is the resolver for the overview field.
func (r *queryResolver) Overview(ctx context.Context, appID string, rangeArg model.RangeInput, exactUniques *bool) (*models.Overview, error) {
	return models.OverviewFor(ctx, r.DB, viewer(ctx), appID, rangeIn(&rangeArg), deref(exactUniques, false))
}

// Breakdown is the resolver for the breakdown field.
func (r *queryResolver) Breakdown(ctx context.Context, appID string, rangeArg model.RangeInput, by model.BreakdownBy, first *int) ([]*models.DimStat, error) {
	return models.BreakdownFor(ctx, r.DB, viewer(ctx), appID, rangeIn(&rangeArg), string(by), deref(first, 20))
}

// Funnel is the resolver for the funnel field.
func (r *queryResolver) Funnel(ctx context.Context, input model.FunnelInput) (*model.FunnelReport, error) {
	steps := make([]models.Matcher, len(input.Steps))
	for i, st := range input.Steps {
		steps[i] = models.Matcher{Code: st.Code, Rules: rulesIn(st.Rules)}
	}
	rep, err := models.FunnelFor(ctx, r.DB, viewer(ctx), input.AppID, models.FunnelInput{
		Range: rangeIn(input.Range), Steps: steps, Window: time.Duration(input.WindowSeconds) * time.Second, Strict: deref(input.Strict, false),
	})
	if err != nil {
		return nil, err
	}
	return funnelOut(rep), nil
}

// Events is the resolver for the events field.
func (r *queryResolver) Events(ctx context.Context, appID string, rules []*model.RuleInput, match *model.RuleCombination, from *time.Time, to *time.Time, first *int, after *string) (*model.EventConnection, error) {
	page, err := models.EventsFor(ctx, r.DB, viewer(ctx), appID, models.BrowseInput{
		Rules: rulesIn(rules), Any: deref(match, model.RuleCombinationAll) == model.RuleCombinationAny,
		From: from, To: to, First: deref(first, 50), After: deref(after, ""),
	})
	if err != nil {
		return nil, err
	}
	return eventConnection(page), nil
}

// EventMatchers is the resolver for the eventMatchers field.
func (r *queryResolver) EventMatchers(ctx context.Context, appID string) ([]*models.EventMatcher, error) {
	return models.EventMatchersFor(ctx, r.DB, viewer(ctx), appID)
}

// Goals is the resolver for the goals field.
func (r *queryResolver) Goals(ctx context.Context, appID string) ([]*models.Goal, error) {
	return models.GoalsFor(ctx, r.DB, viewer(ctx), appID)
}

// GoalReport is the resolver for the goalReport field.
func (r *queryResolver) GoalReport(ctx context.Context, appID string, goalID string, rangeArg model.RangeInput) (*model.GoalReport, error) {
	rep, err := models.GoalReportFor(ctx, r.DB, viewer(ctx), appID, goalID, rangeIn(&rangeArg))
	if err != nil {
		return nil, err
	}
	return goalReportOut(rep), nil
}

// LiveCursor is the resolver for the liveCursor field.
func (r *queryResolver) LiveCursor(ctx context.Context, appID string) (string, error) {
	return models.LiveCursorFor(ctx, r.DB, viewer(ctx), appID)
}

// Operator is the resolver for the operator field.
func (r *ruleResolver) Operator(ctx context.Context, obj *models.Rule) (model.RuleOperator, error) {
	return model.RuleOperator(obj.Operator), nil
}

// EventStored is the resolver for the eventStored field.
func (r *subscriptionResolver) EventStored(ctx context.Context, appID string, after *string) (<-chan *models.Event, error) {
	return models.LiveEventsFor(ctx, r.DB, viewer(ctx), appID, after, r.Log)
}

// DefinitionCount returns generated.DefinitionCountResolver implementation.
func (r *Resolver) DefinitionCount() generated.DefinitionCountResolver {
	return &definitionCountResolver{r}
}

// EventMatcher returns generated.EventMatcherResolver implementation.
func (r *Resolver) EventMatcher() generated.EventMatcherResolver { return &eventMatcherResolver{r} }

// Goal returns generated.GoalResolver implementation.
func (r *Resolver) Goal() generated.GoalResolver { return &goalResolver{r} }

// Overview returns generated.OverviewResolver implementation.
func (r *Resolver) Overview() generated.OverviewResolver { return &overviewResolver{r} }

// Rule returns generated.RuleResolver implementation.
func (r *Resolver) Rule() generated.RuleResolver { return &ruleResolver{r} }

// Subscription returns generated.SubscriptionResolver implementation.
func (r *Resolver) Subscription() generated.SubscriptionResolver { return &subscriptionResolver{r} }

type (
	definitionCountResolver struct{ *Resolver }
	eventMatcherResolver    struct{ *Resolver }
	goalResolver            struct{ *Resolver }
	overviewResolver        struct{ *Resolver }
	ruleResolver            struct{ *Resolver }
	subscriptionResolver    struct{ *Resolver }
)
