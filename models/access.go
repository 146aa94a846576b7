package models

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sync"

	"gorm.io/gorm"
)

// Every question of who may see or change what is answered by one function,
// Viewer.role, the way Gitea routes every repository permission through
// GetUserRepoPermission. It is asked through two doors:
//   - the models function behind a root field or a mutation takes the viewer
//     and checks the app it acts on (Viewer.App, viewByID);
//   - Authorize, which the GraphQL layer calls on every object any field
//     returns: a root field, a nested field, a mutation's payload or a
//     subscription's event. So no object is trusted because of where it
//     came from, and identify's answer to a browser holds only what the
//     browser sent.

// accessCache remembers a viewer's access decisions for as long as the
// viewer lives: one request, or at most a second of a subscription (the
// websocket layer makes a fresh viewer every second). Errors of the store
// are not remembered.
type accessCache struct {
	mu sync.Mutex
	// roles holds the viewer's role per app id; "" with a nil error means
	// no access (not a member, or a key of another app). Concurrent fields
	// asking about the same app wait for one lookup.
	roles map[uint64]*roleAnswer
	// team is the users of the apps the viewer owns, read once.
	teamOnce sync.Once
	team     map[uint64]bool
	teamErr  error
	// sessions are the users whose fresh session this request was handed
	// (login, refreshToken, acceptInvitation): the holder reads that user.
	sessions map[uint64]bool
}

type roleAnswer struct {
	ready chan struct{}
	role  Role
	err   error
}

// Fresh returns v with an empty cache of access decisions.
func (v Viewer) Fresh() Viewer {
	v.access = &accessCache{roles: map[uint64]*roleAnswer{}, sessions: map[uint64]bool{}}
	return v
}

// role returns what v may do in the app: its membership role, the secret
// key's role, or "" for no access. app may be nil when only its id is known.
func (v Viewer) role(ctx context.Context, db *gorm.DB, appID uint64, app *App) (Role, error) {
	if v.UserID == 0 && v.Secret == "" {
		return "", v.unauthenticated()
	}
	c := v.access
	if c == nil {
		return v.lookupRole(ctx, db, appID, app)
	}
	c.mu.Lock()
	a, ok := c.roles[appID]
	if !ok {
		a = &roleAnswer{ready: make(chan struct{})}
		c.roles[appID] = a
	}
	c.mu.Unlock()
	if ok {
		select {
		case <-a.ready:
			return a.role, a.err
		case <-ctx.Done():
			return "", ctx.Err()
		}
	}
	a.role, a.err = v.lookupRole(ctx, db, appID, app)
	if a.err != nil && !isAccessError(a.err) {
		// A store error is not an answer: the next question asks again.
		c.mu.Lock()
		delete(c.roles, appID)
		c.mu.Unlock()
	}
	close(a.ready)
	return a.role, a.err
}

func (v Viewer) lookupRole(ctx context.Context, db *gorm.DB, appID uint64, app *App) (Role, error) {
	if v.UserID != 0 {
		return memberRole(ctx, db, appID, v.UserID)
	}
	if app == nil {
		var row App
		err := db.WithContext(ctx).Select("id", "secret_hash").Take(&row, appID).Error
		if errors.Is(err, gorm.ErrRecordNotFound) {
			return "", newError(ErrUnauthenticated, "the secret key is not this app's current key")
		}
		if err != nil {
			return "", fmt.Errorf("models.Viewer.role: %w", err)
		}
		app = &row
	}
	if !app.SecretMatches(v.Secret) {
		return "", newError(ErrUnauthenticated, "the secret key is not this app's current key")
	}
	return secretKeyRole, nil
}

// holdsAKey answers UNAUTHENTICATED unless v's secret key is some app's
// current key.
func (v Viewer) holdsAKey(ctx context.Context, db *gorm.DB) error {
	var ids []uint64
	err := db.WithContext(ctx).Model(&App{}).Where("secret_hash = ?", hashSecret(v.Secret)).Limit(1).Pluck("id", &ids).Error
	if err != nil {
		return fmt.Errorf("models.Viewer.holdsAKey: %w", err)
	}
	if len(ids) == 0 {
		return newError(ErrUnauthenticated, "the secret key is not an app's current key")
	}
	return nil
}

// require turns a role into the answer for an operation that needs role
// need on what (e.g. "app", "lead").
func (v Viewer) require(role Role, need Role, what string) error {
	if role == "" {
		return newError(ErrNotFound, "%s not found", what)
	}
	if roleRank[role] >= roleRank[need] {
		return nil
	}
	if v.UserID == 0 {
		return newError(ErrForbidden, "a secret key may not do this; sign in as an owner")
	}
	return newError(ErrForbidden, "this needs the %s role in the app; you are %s", need, role)
}

// may answers whether v has at least role need in the app, for an object
// called what.
func (v Viewer) may(ctx context.Context, db *gorm.DB, appID uint64, need Role, what string) error {
	role, err := v.role(ctx, db, appID, nil)
	if err != nil {
		return err
	}
	return v.require(role, need, what)
}

func isAccessError(err error) bool {
	return errors.Is(err, ErrUnauthenticated) || errors.Is(err, ErrNotFound) || errors.Is(err, ErrForbidden)
}

// ownFields are the fields of an object that anyone who reached it may read,
// because the caller sent them itself: the device id and app id a browser
// passes to identify. Fields are named as in the GraphQL schema.
var ownFields = map[string][]string{
	"Device": {"id", "appId"},
}

// Authorize answers whether v may read obj, an object (or a slice of them)
// of models that the API is about to show, wherever it was reached from.
// fields lists the GraphQL fields asked of it; it is consulted only when v
// may not read the whole object. Aggregates without an identity of their
// own (overview numbers, breakdown rows, rules) are guarded by the root
// field that computed them; a type with no rule here is refused, so a new
// type cannot reach the API unchecked.
func Authorize(ctx context.Context, db *gorm.DB, v Viewer, obj any, fields func() []string) error {
	rv := reflect.ValueOf(obj)
	if !rv.IsValid() || rv.Kind() == reflect.Pointer && rv.IsNil() {
		return nil
	}
	switch o := obj.(type) {
	case *App:
		return v.mayRead(ctx, db, o.ID, RoleViewer, "App", fields)
	case *EventDefinition:
		return v.mayRead(ctx, db, o.AppID, RoleViewer, "EventDefinition", fields)
	case *UnknownCode:
		return v.mayRead(ctx, db, o.AppID, RoleViewer, "UnknownCode", fields)
	case *RefusedOrigin:
		return v.mayRead(ctx, db, o.AppID, RoleViewer, "RefusedOrigin", fields)
	case *IngestToken:
		return v.mayRead(ctx, db, o.AppID, RoleEditor, "IngestToken", fields)
	case *Lead:
		return v.mayRead(ctx, db, o.AppID, RoleViewer, "Lead", fields)
	case *Device:
		return v.mayRead(ctx, db, o.AppID, RoleViewer, "Device", fields)
	case *DeviceMove:
		return v.mayRead(ctx, db, o.AppID, RoleViewer, "DeviceMove", fields)
	case *Event:
		// An event is read whole or not at all: even its __typename tells
		// that the app's visitors just did something (a live stream asking
		// only that kept streaming to a removed member).
		return v.mayRead(ctx, db, o.AppID, RoleViewer, "Event", nil)
	case *EventMatcher:
		return v.mayRead(ctx, db, o.AppID, RoleViewer, "EventMatcher", fields)
	case *Goal:
		return v.mayRead(ctx, db, o.AppID, RoleViewer, "Goal", fields)
	case *Membership:
		return v.mayRead(ctx, db, o.AppID, RoleOwner, "Member", fields)
	case *Invitation:
		return v.mayRead(ctx, db, o.AppID, RoleOwner, "Invitation", fields)
	case *AutomationRule:
		return v.mayRead(ctx, db, o.AppID, RoleViewer, "AutomationRule", fields)
	case *AutomationAction:
		return v.mayRead(ctx, db, o.AppID, RoleViewer, "AutomationAction", fields)
	case *Delivery:
		return v.mayRead(ctx, db, o.AppID, RoleViewer, "Delivery", fields)
	case *DeliveryAttempt:
		return v.mayRead(ctx, db, o.AppID, RoleViewer, "DeliveryAttempt", fields)
	case *AuditRecord:
		return v.mayRead(ctx, db, o.AppID, RoleOwner, "AuditRecord", fields)
	case *User:
		return v.mayReadUser(ctx, db, o)
	case *Session:
		// A session is the credential just handed to whoever signed in; its
		// holder reads its user as that user.
		if v.access != nil && o.User != nil {
			v.access.mu.Lock()
			v.access.sessions[o.User.ID] = true
			v.access.mu.Unlock()
		}
		return nil
	case *Overview, *DefinitionStats, Bucket, *Bucket, *DimStat, *DefinitionCount, *Rule, *EraseResult,
		HeaderHint, *TestRuleResult, *TestDelivery, *CreatedRule, *ActionSecret, ActionSecret,
		Role, Interval, JSONObject, StringList, *SetAsideOrigin:
		return nil
	}
	if rv.Kind() == reflect.Slice {
		for i := range rv.Len() {
			if err := Authorize(ctx, db, v, rv.Index(i).Interface(), fields); err != nil {
				return err
			}
		}
		return nil
	}
	return fmt.Errorf("models.Authorize: no access rule for %T", obj)
}

// mayRead checks that v may read an object of app appID with role need,
// or only the fields of it that it sent itself.
func (v Viewer) mayRead(ctx context.Context, db *gorm.DB, appID uint64, need Role, typ string, fields func() []string) error {
	err := v.may(ctx, db, appID, need, typ)
	if err == nil || !isAccessError(err) {
		return err
	}
	if fields != nil && onlyOwnFields(typ, fields()) {
		return nil
	}
	if v.UserID == 0 && v.Secret == "" && v.Err == nil {
		return newError(ErrUnauthenticated, "sign in to read this %s (a browser may read only what it sent)", typ)
	}
	return err
}

func onlyOwnFields(typ string, fields []string) bool {
	for _, f := range fields {
		if f != "__typename" && !slices.Contains(ownFields[typ], f) {
			return false
		}
	}
	return true
}

// mayReadUser lets a user be read by themself, by the holder of a session
// of theirs, and by the owners of an app they are a member of.
func (v Viewer) mayReadUser(ctx context.Context, db *gorm.DB, u *User) error {
	if v.UserID != 0 && v.UserID == u.ID {
		return nil
	}
	c := v.access
	if c != nil {
		c.mu.Lock()
		held := c.sessions[u.ID]
		c.mu.Unlock()
		if held {
			return nil
		}
	}
	if v.UserID == 0 {
		return v.unauthenticated()
	}
	var team map[uint64]bool
	var err error
	if c == nil {
		team, err = v.lookupTeam(ctx, db)
	} else {
		c.teamOnce.Do(func() { c.team, c.teamErr = v.lookupTeam(ctx, db) })
		team, err = c.team, c.teamErr
	}
	if err != nil {
		return err
	}
	if !team[u.ID] {
		return newError(ErrNotFound, "user not found")
	}
	return nil
}

// lookupTeam returns the users of the apps v owns, in one query however
// many members a page shows.
func (v Viewer) lookupTeam(ctx context.Context, db *gorm.DB) (map[uint64]bool, error) {
	var ids []uint64
	err := db.WithContext(ctx).Table("memberships AS m").Distinct("m.user_id").
		Joins("JOIN memberships AS o ON o.app_id = m.app_id AND o.user_id = ? AND o.role = ?", v.UserID, RoleOwner).
		Pluck("m.user_id", &ids).Error
	if err != nil {
		return nil, fmt.Errorf("models.Viewer.lookupTeam: %w", err)
	}
	team := make(map[uint64]bool, len(ids))
	for _, id := range ids {
		team[id] = true
	}
	return team, nil
}
