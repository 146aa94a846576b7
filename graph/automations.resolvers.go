package graph

import (
	"context"
	"fmt"
	"time"

	"github.com/crumbs-dev/crumbs/graph/generated"
	"github.com/crumbs-dev/crumbs/graph/model"
	"github.com/crumbs-dev/crumbs/models"
)

// SigningSecret is the resolver for the signingSecret field.
func (r *actionSecretPayloadResolver) SigningSecret(ctx context.Context, obj *models.ActionSecret) (*string, error) {
	if obj.Secret == "" {
		return nil, nil
	}
	return &obj.Secret, nil
}

// Kind is the resolver for the kind field.
func (r *automationActionResolver) Kind(ctx context.Context, obj *models.AutomationAction) (model.ActionKind, error) {
	return model.ActionKind(obj.Kind), nil
}

// PreviousSecretExpiresAt is the resolver for the previousSecretExpiresAt field.
func (r *automationActionResolver) PreviousSecretExpiresAt(ctx context.Context, obj *models.AutomationAction) (*time.Time, error) {
	expiries := obj.RetiredSecretExpiries()
	if len(expiries) == 0 {
		return nil, nil
	}
	return &expiries[len(expiries)-1], nil
}

// Matcher is the resolver for the matcher field.
func (r *automationRuleResolver) Matcher(ctx context.Context, obj *models.AutomationRule) (*models.EventMatcher, error) {
	return loadersFrom(ctx).matchers.Load(ctx, obj.MatcherID)
}

// Actions is the resolver for the actions field.
func (r *automationRuleResolver) Actions(ctx context.Context, obj *models.AutomationRule) ([]*models.AutomationAction, error) {
	return load(ctx, loadersFrom(ctx).ruleActions, obj.ID)
}

// Rule is the resolver for the rule field.
func (r *deliveryResolver) Rule(ctx context.Context, obj *models.Delivery) (*models.AutomationRule, error) {
	rule, err := load(ctx, loadersFrom(ctx).rules, obj.RuleID)
	if err == nil && rule == nil {
		err = fmt.Errorf("delivery %d: its rule was deleted: %w", obj.ID, models.ErrNotFound)
	}
	return rule, err
}

// Action is the resolver for the action field.
func (r *deliveryResolver) Action(ctx context.Context, obj *models.Delivery) (*models.AutomationAction, error) {
	a, err := load(ctx, loadersFrom(ctx).actions, obj.ActionID)
	if err == nil && a == nil {
		err = fmt.Errorf("delivery %d: its action was deleted: %w", obj.ID, models.ErrNotFound)
	}
	return a, err
}

// Status is the resolver for the status field.
func (r *deliveryResolver) Status(ctx context.Context, obj *models.Delivery) (model.DeliveryStatus, error) {
	return model.DeliveryStatus(obj.Status), nil
}

// AttemptLog is the resolver for the attemptLog field.
func (r *deliveryResolver) AttemptLog(ctx context.Context, obj *models.Delivery) ([]*models.DeliveryAttempt, error) {
	return load(ctx, loadersFrom(ctx).attempts, obj.ID)
}

// CreateAutomationRule is the resolver for the createAutomationRule field.
func (r *mutationResolver) CreateAutomationRule(ctx context.Context, appID string, input model.AutomationRuleInput) (*models.CreatedRule, error) {
	actions := make([]models.AutomationActionInput, len(input.Actions))
	for i, a := range input.Actions {
		actions[i] = actionIn(a.Kind, &a.URL, a.Headers, a.Template, nil)
	}
	return models.CreateAutomationRuleFor(ctx, r.DB, viewer(ctx), r.guard(), appID, models.AutomationRuleInput{
		Name: &input.Name, Matcher: &input.Matcher, IdentifiedOnly: input.IdentifiedOnly, Enabled: input.Enabled,
	}, actions)
}

// UpdateAutomationRule is the resolver for the updateAutomationRule field.
func (r *mutationResolver) UpdateAutomationRule(ctx context.Context, appID string, id string, input model.UpdateAutomationRuleInput) (*models.AutomationRule, error) {
	return models.UpdateAutomationRuleFor(ctx, r.DB, viewer(ctx), appID, id, models.AutomationRuleInput{
		Name: input.Name, Matcher: input.Matcher, IdentifiedOnly: input.IdentifiedOnly, Enabled: input.Enabled,
	})
}

// DeleteAutomationRule is the resolver for the deleteAutomationRule field.
func (r *mutationResolver) DeleteAutomationRule(ctx context.Context, appID string, id string) (*model.DeletePayload, error) {
	rule, err := models.DeleteAutomationRuleFor(ctx, r.DB, viewer(ctx), appID, id)
	if err != nil {
		return nil, err
	}
	return &model.DeletePayload{ID: models.FormatID(rule.ID)}, nil
}

// AddAutomationAction is the resolver for the addAutomationAction field.
func (r *mutationResolver) AddAutomationAction(ctx context.Context, appID string, ruleID string, input model.AutomationActionInput) (*models.ActionSecret, error) {
	return models.AddAutomationActionFor(ctx, r.DB, viewer(ctx), r.guard(), appID, ruleID, actionIn(input.Kind, &input.URL, input.Headers, input.Template, nil))
}

// UpdateAutomationAction is the resolver for the updateAutomationAction field.
func (r *mutationResolver) UpdateAutomationAction(ctx context.Context, appID string, id string, input model.UpdateAutomationActionInput) (*models.AutomationAction, error) {
	in := actionIn("", input.URL, input.Headers, input.Template, input.Enabled)
	in.HeadersOrigin = input.HeadersOrigin
	return models.UpdateAutomationActionFor(ctx, r.DB, viewer(ctx), r.guard(), appID, id, in)
}

// DeleteAutomationAction is the resolver for the deleteAutomationAction field.
func (r *mutationResolver) DeleteAutomationAction(ctx context.Context, appID string, id string) (*model.DeletePayload, error) {
	a, err := models.DeleteAutomationActionFor(ctx, r.DB, viewer(ctx), appID, id)
	if err != nil {
		return nil, err
	}
	return &model.DeletePayload{ID: models.FormatID(a.ID)}, nil
}

// RotateActionSecret is the resolver for the rotateActionSecret field.
func (r *mutationResolver) RotateActionSecret(ctx context.Context, appID string, id string) (*models.ActionSecret, error) {
	return models.RotateActionSecretFor(ctx, r.DB, viewer(ctx), appID, id)
}

// ReplayDelivery is the resolver for the replayDelivery field.
func (r *mutationResolver) ReplayDelivery(ctx context.Context, appID string, id string) (*models.Delivery, error) {
	return models.ReplayDeliveryFor(ctx, r.DB, viewer(ctx), appID, id)
}

// ReplayRule is the resolver for the replayRule field.
func (r *mutationResolver) ReplayRule(ctx context.Context, appID string, ruleID string, rangeArg model.RangeInput) (*model.ReplayRulePayload, error) {
	n, err := models.ReplayRuleFor(ctx, r.DB, viewer(ctx), appID, ruleID, rangeArg.From, rangeArg.To)
	if err != nil {
		return nil, err
	}
	return &model.ReplayRulePayload{Events: n}, nil
}

// SendTestDelivery is the resolver for the sendTestDelivery field.
func (r *mutationResolver) SendTestDelivery(ctx context.Context, appID string, actionID string) (*models.TestDelivery, error) {
	if r.Automations == nil {
		return nil, models.ErrAutomationsOff
	}
	return r.Automations.SendTestDeliveryFor(ctx, viewer(ctx), appID, actionID)
}

// AutomationRules is the resolver for the automationRules field.
func (r *queryResolver) AutomationRules(ctx context.Context, appID string) ([]*models.AutomationRule, error) {
	return models.AutomationRulesFor(ctx, r.DB, viewer(ctx), appID)
}

// AutomationRule is the resolver for the automationRule field.
func (r *queryResolver) AutomationRule(ctx context.Context, appID string, id string) (*models.AutomationRule, error) {
	return models.AutomationRuleFor(ctx, r.DB, viewer(ctx), appID, id)
}

// Deliveries is the resolver for the deliveries field.
func (r *queryResolver) Deliveries(ctx context.Context, appID string, ruleID *string, status *model.DeliveryStatus, first *int, after *string) (*model.DeliveryConnection, error) {
	in := models.DeliveriesInput{RuleID: deref(ruleID, ""), First: deref(first, 50), After: deref(after, "")}
	if status != nil {
		in.Status = string(*status)
	}
	page, err := models.DeliveriesFor(ctx, r.DB, viewer(ctx), appID, in)
	if err != nil {
		return nil, err
	}
	return deliveryConnection(page), nil
}

// TestRule is the resolver for the testRule field.
func (r *queryResolver) TestRule(ctx context.Context, appID string, input model.TestRuleInput, rangeArg model.RangeInput) (*models.TestRuleResult, error) {
	return models.TestRuleFor(ctx, r.DB, viewer(ctx), appID, models.TestRuleInput{
		Matcher: input.Matcher, IdentifiedOnly: deref(input.IdentifiedOnly, false), From: rangeArg.From, To: rangeArg.To,
	})
}

// Samples is the resolver for the samples field.
func (r *testRuleResultResolver) Samples(ctx context.Context, obj *models.TestRuleResult) ([]any, error) {
	out := make([]any, len(obj.Samples))
	for i, s := range obj.Samples {
		out[i] = map[string]any(s)
	}
	return out, nil
}

// ActionSecretPayload returns generated.ActionSecretPayloadResolver implementation.
func (r *Resolver) ActionSecretPayload() generated.ActionSecretPayloadResolver {
	return &actionSecretPayloadResolver{r}
}

// AutomationAction returns generated.AutomationActionResolver implementation.
func (r *Resolver) AutomationAction() generated.AutomationActionResolver {
	return &automationActionResolver{r}
}

// AutomationRule returns generated.AutomationRuleResolver implementation.
func (r *Resolver) AutomationRule() generated.AutomationRuleResolver {
	return &automationRuleResolver{r}
}

// Delivery returns generated.DeliveryResolver implementation.
func (r *Resolver) Delivery() generated.DeliveryResolver { return &deliveryResolver{r} }

// TestRuleResult returns generated.TestRuleResultResolver implementation.
func (r *Resolver) TestRuleResult() generated.TestRuleResultResolver {
	return &testRuleResultResolver{r}
}

type (
	actionSecretPayloadResolver struct{ *Resolver }
	automationActionResolver    struct{ *Resolver }
	automationRuleResolver      struct{ *Resolver }
	deliveryResolver            struct{ *Resolver }
	testRuleResultResolver      struct{ *Resolver }
)
