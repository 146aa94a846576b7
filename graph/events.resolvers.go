package graph

import (
	"context"
	"errors"

	"github.com/crumbs-dev/crumbs/graph/generated"
	"github.com/crumbs-dev/crumbs/graph/model"
	"github.com/crumbs-dev/crumbs/models"
)

// Code is the resolver for the code field.
func (r *eventResolver) Code(ctx context.Context, obj *models.Event) (string, error) {
	def, err := r.Definition(ctx, obj)
	if err != nil {
		return "", err
	}
	return def.Code, nil
}

// Definition is the resolver for the definition field.
func (r *eventResolver) Definition(ctx context.Context, obj *models.Event) (*models.EventDefinition, error) {
	return loadersFrom(ctx).definitions.Load(ctx, obj.DefinitionID)
}

// Device is the resolver for the device field.
func (r *eventResolver) Device(ctx context.Context, obj *models.Event) (*models.Device, error) {
	return load(ctx, loadersFrom(ctx).devices, models.DeviceKey{AppID: obj.AppID, DeviceID: obj.DeviceID})
}

// Lead is the resolver for the lead field.
func (r *eventResolver) Lead(ctx context.Context, obj *models.Event) (*models.Lead, error) {
	device, err := r.Device(ctx, obj)
	if err != nil || device == nil || device.LeadID == nil {
		return nil, err
	}
	return load(ctx, loadersFrom(ctx).leads, *device.LeadID)
}

// Properties is the resolver for the properties field.
func (r *eventResolver) Properties(ctx context.Context, obj *models.Event) (map[string]any, error) {
	return obj.Properties, nil
}

// Source is the resolver for the source field.
func (r *eventResolver) Source(ctx context.Context, obj *models.Event) (model.EventSource, error) {
	return model.EventSource(obj.Source), nil
}

// AppID is the resolver for the appId field.
func (r *eventDefinitionResolver) AppID(ctx context.Context, obj *models.EventDefinition) (string, error) {
	return appPublicID(ctx, obj.AppID)
}

// CreateEventDefinition is the resolver for the createEventDefinition field.
func (r *mutationResolver) CreateEventDefinition(ctx context.Context, input model.CreateEventDefinitionInput) (*models.EventDefinition, error) {
	return models.CreateEventDefinition(ctx, r.DB, viewer(ctx), input.AppID, models.EventDefinitionInput{
		Code: &input.Code, Name: &input.Name, Color: input.Color, Description: input.Description, Enabled: input.Enabled,
	})
}

// UpdateEventDefinition is the resolver for the updateEventDefinition field.
func (r *mutationResolver) UpdateEventDefinition(ctx context.Context, id string, input model.UpdateEventDefinitionInput) (*models.EventDefinition, error) {
	return models.UpdateEventDefinition(ctx, r.DB, viewer(ctx), id, models.EventDefinitionInput{
		Code: input.Code, Name: input.Name, Color: input.Color, Description: input.Description, Enabled: input.Enabled,
	})
}

// DeleteEventDefinition is the resolver for the deleteEventDefinition field.
func (r *mutationResolver) DeleteEventDefinition(ctx context.Context, id string) (*model.DeletePayload, error) {
	def, err := models.DeleteEventDefinition(ctx, r.DB, viewer(ctx), id)
	if err != nil {
		return nil, err
	}
	return &model.DeletePayload{ID: models.FormatID(def.ID)}, nil
}

// Trigger is the resolver for the trigger field.
func (r *mutationResolver) Trigger(ctx context.Context, input model.TriggerInput) (*model.TriggerResult, error) {
	res := r.Writer.Trigger(ctx, []models.TriggerInput{triggerInput(ctx, &input)})[0]
	if res.Err != nil {
		noteRateLimit(ctx, res.Err)
		return nil, res.Err
	}
	return triggerResult(ctx, nil, res), nil
}

// TriggerBatch is the resolver for the triggerBatch field.
func (r *mutationResolver) TriggerBatch(ctx context.Context, inputs []*model.TriggerInput) ([]*model.TriggerResult, error) {
	if len(inputs) > models.MaxBatch {
		return nil, models.Invalid("inputs", "at most %d triggers per batch", models.MaxBatch)
	}
	in := make([]models.TriggerInput, len(inputs))
	for i, input := range inputs {
		in[i] = triggerInput(ctx, input)
	}
	results := r.Writer.Trigger(ctx, in)
	out := make([]*model.TriggerResult, len(results))
	allLimited := len(results) > 0
	for i, res := range results {
		out[i] = triggerResult(ctx, r.Log, res)
		allLimited = allLimited && errors.Is(res.Err, models.ErrRateLimited)
	}
	if allLimited {
		noteRateLimit(ctx, results[0].Err)
	}
	return out, nil
}

// EventDefinition is the resolver for the eventDefinition field.
func (r *queryResolver) EventDefinition(ctx context.Context, id string) (*models.EventDefinition, error) {
	return models.EventDefinitionByID(ctx, r.DB, viewer(ctx), id, models.RoleViewer)
}

// Event returns generated.EventResolver implementation.
func (r *Resolver) Event() generated.EventResolver { return &eventResolver{r} }

// EventDefinition returns generated.EventDefinitionResolver implementation.
func (r *Resolver) EventDefinition() generated.EventDefinitionResolver {
	return &eventDefinitionResolver{r}
}

type (
	eventResolver           struct{ *Resolver }
	eventDefinitionResolver struct{ *Resolver }
)
