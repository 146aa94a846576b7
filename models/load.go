package models

import (
	"context"
	"errors"

	"gorm.io/gorm"
)

// loadByID loads rows by primary key into a map, for dataloaders.
func loadByID[T any](ctx context.Context, db *gorm.DB, ids []uint64, id func(*T) uint64) (map[uint64]*T, error) {
	var rows []*T
	if err := db.WithContext(ctx).Where("id IN ?", ids).Find(&rows).Error; err != nil {
		return nil, err
	}
	out := make(map[uint64]*T, len(rows))
	for _, r := range rows {
		out[id(r)] = r
	}
	return out, nil
}

// viewByID loads one row of an app-scoped entity by its API id, if the viewer
// has at least role need in its app. A row of an app the viewer is not in
// (or whose key it does not hold) is NOT_FOUND, like one that does not
// exist; a secret key that is no app's key is UNAUTHENTICATED whatever the
// id, so ids of other tenants reveal nothing.
func viewByID[T any](ctx context.Context, db *gorm.DB, v Viewer, id string, need Role, what string, appID func(*T) uint64) (*T, error) {
	n, err := ParseID("id", id)
	if err != nil {
		return nil, err
	}
	if v.UserID == 0 && v.Secret == "" {
		return nil, v.unauthenticated()
	}
	if v.UserID == 0 {
		// A wrong key is refused before the row is read, and a key of
		// another app is told NOT_FOUND: either way the answer does not
		// depend on whether the id exists.
		if err := v.holdsAKey(ctx, db); err != nil {
			return nil, err
		}
	}
	notFound := newError(ErrNotFound, "%s %s not found", what, id)
	var row T
	err = db.WithContext(ctx).Take(&row, n).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, notFound
	}
	if err != nil {
		return nil, err
	}
	if _, err := v.AppByID(ctx, db, appID(&row), need); err != nil {
		if errors.Is(err, ErrNotFound) || v.UserID == 0 && errors.Is(err, ErrUnauthenticated) {
			return nil, notFound
		}
		return nil, err
	}
	return &row, nil
}
