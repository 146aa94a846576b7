package models

import (
	"context"
	"errors"

	"gorm.io/gorm"
)

// Role is what a member may do in an app.
type Role string

// Roles, from least to most.
const (
	RoleViewer Role = "viewer" // reads everything of the app
	RoleEditor Role = "editor" // also changes definitions and rules
	RoleOwner  Role = "owner"  // also settings, members and the secret key
)

var roleRank = map[Role]int{RoleViewer: 1, RoleEditor: 2, RoleOwner: 3}

// Valid reports whether r is a known role.
func (r Role) Valid() bool { return roleRank[r] > 0 }

// Viewer is who is asking: a dashboard user (from an access token), a server
// holding an app's secret key, or nobody.
type Viewer struct {
	// UserID is the signed-in dashboard user, 0 when none.
	UserID uint64
	// SignInID is the sign-in the user's access token belongs to.
	SignInID string
	// Secret is the bearer secret key a server presented, if any.
	Secret string
	// Err says why presented credentials were rejected (a bad or expired
	// token), so that operations needing them answer with that reason.
	Err error
	// access caches the viewer's access decisions (access.go).
	access *accessCache
}

// secretKeyRole is what a valid secret key may do in its own app: what an
// editor may, but not settings, members or rotating the key itself.
const secretKeyRole = RoleEditor

func (v Viewer) unauthenticated() error {
	if v.Err != nil {
		return v.Err
	}
	return newError(ErrUnauthenticated, "sign in first")
}

// RequireUser returns the signed-in user's id.
func (v Viewer) RequireUser() (uint64, error) {
	if v.UserID == 0 {
		return 0, v.unauthenticated()
	}
	return v.UserID, nil
}

// App returns the app with this public id if the viewer may act on it with at
// least role need. Apps the viewer is not a member of are NOT_FOUND, exactly
// like apps that do not exist, so ids of other tenants reveal nothing.
func (v Viewer) App(ctx context.Context, db *gorm.DB, publicID string, need Role) (*App, error) {
	if v.UserID == 0 && v.Secret == "" {
		return nil, v.unauthenticated()
	}
	app, err := AppByPublicID(ctx, db, publicID)
	if err != nil {
		if v.UserID == 0 && errors.Is(err, ErrNotFound) {
			return nil, newError(ErrUnauthenticated, "the secret key is not this app's current key")
		}
		return nil, err
	}
	role, err := v.role(ctx, db, app.ID, app)
	if err != nil {
		return nil, err
	}
	return app, v.require(role, need, "app")
}

// RoleIn returns the signed-in viewer's role in the app, nil for a secret
// key; no role at all is NOT_FOUND.
func (v Viewer) RoleIn(ctx context.Context, db *gorm.DB, app *App) (*Role, error) {
	role, err := v.role(ctx, db, app.ID, app)
	if err != nil {
		return nil, err
	}
	if err := v.require(role, RoleViewer, "app"); err != nil {
		return nil, err
	}
	if v.UserID == 0 {
		return nil, nil
	}
	return &role, nil
}

// AppByID is App for an app known by its internal id (from a definition, a
// lead, ...).
func (v Viewer) AppByID(ctx context.Context, db *gorm.DB, appID uint64, need Role) (*App, error) {
	if v.UserID == 0 && v.Secret == "" {
		return nil, v.unauthenticated()
	}
	var app App
	// A deleted app is not found, whatever rows of it are left.
	if err := db.WithContext(ctx).Where("deleted_at IS NULL").Take(&app, appID).Error; err != nil {
		if errors.Is(err, gorm.ErrRecordNotFound) {
			return nil, newError(ErrNotFound, "app not found")
		}
		return nil, err
	}
	role, err := v.role(ctx, db, app.ID, &app)
	if err != nil {
		return nil, err
	}
	return &app, v.require(role, need, "app")
}

type viewerKey struct{}

// WithViewer stores v in ctx, with a cache of its access decisions that
// lives as long as v does (a fresh one, unless v already has one).
func WithViewer(ctx context.Context, v Viewer) context.Context {
	if v.access == nil {
		v = v.Fresh()
	}
	return context.WithValue(ctx, viewerKey{}, v)
}

// ViewerFrom returns the viewer stored in ctx (nobody, if none).
func ViewerFrom(ctx context.Context) Viewer {
	v, _ := ctx.Value(viewerKey{}).(Viewer)
	return v
}
