package graph

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"time"

	"github.com/crumbs-dev/crumbs/models"
	"github.com/vikstrous/dataloadgen"
	"gorm.io/gorm"
)

// loaders batch the nested lookups of one request into one query per kind.
// Each is made on first use: most requests (a trigger) need none.
type loaders struct {
	apps        *lazyLoader[uint64, *models.App]
	definitions *lazyLoader[uint64, *models.EventDefinition]
	leads       *lazyLoader[uint64, *models.Lead]
	leadStats   *lazyLoader[uint64, *models.LeadStats]
	leadDevices *lazyLoader[uint64, []*models.Device]
	leadMoves   *lazyLoader[uint64, []*models.DeviceMove]
	devices     *lazyLoader[models.DeviceKey, *models.Device]
	users       *lazyLoader[uint64, *models.User]
	matchers    *lazyLoader[uint64, *models.EventMatcher]
	rules       *lazyLoader[uint64, *models.AutomationRule]
	ruleActions *lazyLoader[uint64, []*models.AutomationAction]
	actions     *lazyLoader[uint64, *models.AutomationAction]
	attempts    *lazyLoader[uint64, []*models.DeliveryAttempt]
}

func newLoaders(db *gorm.DB) *loaders {
	return &loaders{
		apps:        lazy(db, models.AppsByID),
		definitions: lazy(db, models.EventDefinitionsByID),
		leads:       lazy(db, models.LeadsByID),
		leadStats:   lazy(db, models.LeadStatsByID),
		leadDevices: lazy(db, models.DevicesByLead),
		leadMoves:   lazy(db, models.DeviceMovesByLead),
		devices:     lazy(db, models.DevicesByKey),
		users:       lazy(db, models.UsersByID),
		matchers:    lazy(db, models.EventMatchersByID),
		rules:       lazy(db, models.AutomationRulesByID),
		ruleActions: lazy(db, models.ActionsOfRules),
		actions:     lazy(db, models.ActionsByID),
		attempts:    lazy(db, models.AttemptsOfDeliveries),
	}
}

// lazyLoader makes its dataloader on first use.
type lazyLoader[K comparable, V any] struct {
	db    *gorm.DB
	fetch func(context.Context, *gorm.DB, []K) (map[K]V, error)
	once  sync.Once
	l     *dataloadgen.Loader[K, V]
}

func lazy[K comparable, V any](db *gorm.DB, fetch func(context.Context, *gorm.DB, []K) (map[K]V, error)) *lazyLoader[K, V] {
	return &lazyLoader[K, V]{db: db, fetch: fetch}
}

func (z *lazyLoader[K, V]) loader() *dataloadgen.Loader[K, V] {
	z.once.Do(func() { z.l = dataloadgen.NewMappedLoader(bind(z.db, z.fetch), dataloadgen.WithWait(time.Millisecond)) })
	return z.l
}

// Load returns the value for key through the request's batch.
func (z *lazyLoader[K, V]) Load(ctx context.Context, key K) (V, error) {
	return z.loader().Load(ctx, key)
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
func load[K comparable, V any](ctx context.Context, l *lazyLoader[K, V], key K) (V, error) {
	v, err := l.Load(ctx, key)
	if errors.Is(err, dataloadgen.ErrNotFound) {
		var zero V
		return zero, nil
	}
	return v, err
}
