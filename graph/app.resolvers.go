package graph

import (
	"context"
	"time"

	"github.com/crumbs-dev/crumbs/graph/generated"
	"github.com/crumbs-dev/crumbs/graph/model"
	"github.com/crumbs-dev/crumbs/models"
)

// AllowedOrigins is the resolver for the allowedOrigins field.
func (r *appResolver) AllowedOrigins(ctx context.Context, obj *models.App) ([]string, error) {
	return obj.AllowedOrigins, nil
}

// SetAsideOrigins is the resolver for the setAsideOrigins field.
func (r *appResolver) SetAsideOrigins(ctx context.Context, obj *models.App) ([]*models.SetAsideOrigin, error) {
	return obj.SetAside(), nil
}

// SecretKeyRotatedAt is the resolver for the secretKeyRotatedAt field.
func (r *appResolver) SecretKeyRotatedAt(ctx context.Context, obj *models.App) (*time.Time, error) {
	return &obj.SecretRotatedAt, nil
}

// ViewerRole is the resolver for the viewerRole field.
func (r *appResolver) ViewerRole(ctx context.Context, obj *models.App) (*model.Role, error) {
	role, err := viewer(ctx).RoleIn(ctx, r.DB, obj)
	if role == nil || err != nil {
		return nil, err
	}
	out := model.Role(*role)
	return &out, nil
}

// EventDefinitions is the resolver for the eventDefinitions field.
func (r *appResolver) EventDefinitions(ctx context.Context, obj *models.App, enabled *bool) ([]*models.EventDefinition, error) {
	return models.EventDefinitions(ctx, r.DB, obj.ID, enabled)
}

// UnknownCodes is the resolver for the unknownCodes field.
func (r *appResolver) UnknownCodes(ctx context.Context, obj *models.App, first *int) ([]*models.UnknownCode, error) {
	return models.UnknownCodes(ctx, r.DB, obj.ID, deref(first, 50))
}

// RefusedOrigins is the resolver for the refusedOrigins field.
func (r *appResolver) RefusedOrigins(ctx context.Context, obj *models.App, first *int) ([]*models.RefusedOrigin, error) {
	return models.RefusedOrigins(ctx, r.DB, obj.ID, deref(first, 50))
}

// CreateApp is the resolver for the createApp field.
func (r *mutationResolver) CreateApp(ctx context.Context, input model.CreateAppInput) (*model.AppWithSecret, error) {
	app, secret, err := models.CreateApp(ctx, r.DB, viewer(ctx), models.AppInput{
		Name: &input.Name, AllowedOrigins: input.AllowedOrigins, Timezone: input.Timezone,
	})
	if err != nil {
		return nil, err
	}
	return &model.AppWithSecret{App: app, SecretKey: secret}, nil
}

// UpdateApp is the resolver for the updateApp field.
func (r *mutationResolver) UpdateApp(ctx context.Context, id string, input model.UpdateAppInput) (*models.App, error) {
	return models.UpdateApp(ctx, r.DB, viewer(ctx), id, models.AppInput{
		Name: input.Name, AllowedOrigins: input.AllowedOrigins, Timezone: input.Timezone, RetentionDays: input.RetentionDays,
	})
}

// RotateAppSecret is the resolver for the rotateAppSecret field.
func (r *mutationResolver) RotateAppSecret(ctx context.Context, id string) (*model.AppWithSecret, error) {
	app, secret, err := models.RotateAppSecret(ctx, r.DB, viewer(ctx), id)
	if err != nil {
		return nil, err
	}
	return &model.AppWithSecret{App: app, SecretKey: secret}, nil
}

// MarkUnknownCodeTypo is the resolver for the markUnknownCodeTypo field.
func (r *mutationResolver) MarkUnknownCodeTypo(ctx context.Context, appID string, code string, typoOf *string) (*models.UnknownCode, error) {
	return models.MarkUnknownCodeTypo(ctx, r.DB, viewer(ctx), appID, code, typoOf)
}

// DeleteApp is the resolver for the deleteApp field.
func (r *mutationResolver) DeleteApp(ctx context.Context, appID string, password string) (bool, error) {
	v := viewer(ctx)
	app, err := r.Tokens.DeleteApp(ctx, r.DB, v, RequestInfoFrom(ctx).ClientIP, appID, password)
	noteRateLimit(ctx, err)
	if err != nil {
		return false, err
	}
	// The app's audit records go with it: the log keeps who deleted it.
	if r.Log != nil {
		r.Log.Info("app deleted", "app", app.PublicID, "app_id", app.ID, "by_user", v.UserID)
	}
	if r.AppDeletions != nil {
		r.AppDeletions.Kick()
	}
	return true, nil
}

// Apps is the resolver for the apps field.
func (r *queryResolver) Apps(ctx context.Context) ([]*models.App, error) {
	return models.Apps(ctx, r.DB, viewer(ctx))
}

// App is the resolver for the app field.
func (r *queryResolver) App(ctx context.Context, id string) (*models.App, error) {
	return viewer(ctx).App(ctx, r.DB, id, models.RoleViewer)
}

// CheckAppKey is the resolver for the checkAppKey field.
func (r *queryResolver) CheckAppKey(ctx context.Context, appID string) (*model.AppKeyCheck, error) {
	app, err := models.CheckAppKey(ctx, r.DB, viewer(ctx), appID)
	if err != nil {
		return nil, err
	}
	return &model.AppKeyCheck{AppID: app.PublicID, AppName: app.Name, KeyValid: true}, nil
}

// App returns generated.AppResolver implementation.
func (r *Resolver) App() generated.AppResolver { return &appResolver{r} }

type appResolver struct{ *Resolver }
