package graph

import (
	"context"

	"github.com/crumbs-dev/crumbs/graph/model"
	"github.com/crumbs-dev/crumbs/models"
)

// Integration is the resolver for the integration field.
func (r *eventResolver) Integration(ctx context.Context, obj *models.Event) (*string, error) {
	if obj.Integration == "" {
		return nil, nil
	}
	return &obj.Integration, nil
}

// CreateIngestToken is the resolver for the createIngestToken field.
func (r *mutationResolver) CreateIngestToken(ctx context.Context, appID string, name string) (*model.CreatedIngestToken, error) {
	t, token, err := models.CreateIngestToken(ctx, r.DB, viewer(ctx), appID, name)
	if err != nil {
		return nil, err
	}
	url := RequestInfoFrom(ctx).BaseURL + "/webhooks/" + token + "/generic/track"
	return &model.CreatedIngestToken{IngestToken: t, Token: token, URL: url}, nil
}

// RevokeIngestToken is the resolver for the revokeIngestToken field.
func (r *mutationResolver) RevokeIngestToken(ctx context.Context, id string) (*models.IngestToken, error) {
	return models.RevokeIngestToken(ctx, r.DB, viewer(ctx), id)
}

// IngestTokens is the resolver for the ingestTokens field.
func (r *queryResolver) IngestTokens(ctx context.Context, appID string) ([]*models.IngestToken, error) {
	return models.IngestTokens(ctx, r.DB, viewer(ctx), appID)
}
