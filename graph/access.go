package graph

import (
	"context"

	"github.com/crumbs-dev/crumbs/models"
)

// viewer is who is asking, as the request middleware found out. Resolvers
// hand it to the models function they call; authorizeFields checks every
// object a field returns against it.
func viewer(ctx context.Context) models.Viewer { return models.ViewerFrom(ctx) }
