package graph

import (
	"context"

	"github.com/crumbs-dev/crumbs/models"
)

// appFor returns the app with this public id if the current viewer has at
// least role need in it. App-scoped resolvers that hand an app to models
// resolve it here, so the rule of who may do what lives in models.Viewer.
func (r *Resolver) appFor(ctx context.Context, publicID string, need models.Role) (*models.App, error) {
	return viewer(ctx).App(ctx, r.DB, publicID, need)
}

// viewer is who is asking, as the request middleware found out.
func viewer(ctx context.Context) models.Viewer { return models.ViewerFrom(ctx) }
