package graph

import (
	"context"

	"github.com/crumbs-dev/crumbs/models"
)

// appFor returns the app with this public id for the current viewer. Every
// app-scoped query and mutation resolves its app through here, so the rule of
// who may see which app lives in one place.
func (r *Resolver) appFor(ctx context.Context, publicID string) (*models.App, error) {
	return viewer(ctx).App(ctx, r.DB, publicID, models.RoleViewer)
}

// viewer is who is asking, as the request middleware found out.
func viewer(ctx context.Context) models.Viewer { return models.ViewerFrom(ctx) }
