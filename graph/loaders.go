package graph

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/crumbs-dev/crumbs/models"
	"github.com/vikstrous/dataloadgen"
	"gorm.io/gorm"
)

// loaders batch the nested lookups of one request into one query per kind.
type loaders struct {
	apps        *dataloadgen.Loader[uint64, *models.App]
	definitions *dataloadgen.Loader[uint64, *models.EventDefinition]
	leads       *dataloadgen.Loader[uint64, *models.Lead]
	leadStats   *dataloadgen.Loader[uint64, *models.LeadStats]
	leadDevices *dataloadgen.Loader[uint64, []*models.Device]
	leadMoves   *dataloadgen.Loader[uint64, []*models.DeviceMove]
	devices     *dataloadgen.Loader[models.DeviceKey, *models.Device]
	users       *dataloadgen.Loader[uint64, *models.User]
	matchers    *dataloadgen.Loader[uint64, *models.EventMatcher]
}

func newLoaders(db *gorm.DB) *loaders {
	wait := dataloadgen.WithWait(time.Millisecond)
	return &loaders{
		apps:        dataloadgen.NewMappedLoader(bind(db, models.AppsByID), wait),
		definitions: dataloadgen.NewMappedLoader(bind(db, models.EventDefinitionsByID), wait),
		leads:       dataloadgen.NewMappedLoader(bind(db, models.LeadsByID), wait),
		leadStats:   dataloadgen.NewMappedLoader(bind(db, models.LeadStatsByID), wait),
		leadDevices: dataloadgen.NewMappedLoader(bind(db, models.DevicesByLead), wait),
		leadMoves:   dataloadgen.NewMappedLoader(bind(db, models.DeviceMovesByLead), wait),
		devices:     dataloadgen.NewMappedLoader(bind(db, models.DevicesByKey), wait),
		users:       dataloadgen.NewMappedLoader(bind(db, models.UsersByID), wait),
		matchers:    dataloadgen.NewMappedLoader(bind(db, models.EventMatchersByID), wait),
	}
}

func bind[K comparable, V any](db *gorm.DB, fetch func(context.Context, *gorm.DB, []K) (map[K]V, error)) func(context.Context, []K) (map[K]V, error) {
	return func(ctx context.Context, keys []K) (map[K]V, error) { return fetch(ctx, db, keys) }
}

type loadersKey struct{}

// LoaderMiddleware gives each request its own dataloaders.
func LoaderMiddleware(db *gorm.DB, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := context.WithValue(r.Context(), loadersKey{}, newLoaders(db))
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

func loadersFrom(ctx context.Context) *loaders {
	return ctx.Value(loadersKey{}).(*loaders)
}

// load returns the value for key, or nil when it does not exist.
func load[K comparable, V any](ctx context.Context, l *dataloadgen.Loader[K, V], key K) (V, error) {
	v, err := l.Load(ctx, key)
	if errors.Is(err, dataloadgen.ErrNotFound) {
		var zero V
		return zero, nil
	}
	return v, err
}
