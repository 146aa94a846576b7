package models

import (
	"context"
	"errors"
	"fmt"

	"gorm.io/gorm"
)

// Deleting an app happens in two steps. DeleteApp marks it deleted in one
// transaction, and from its commit on the app is gone for everyone: its
// memberships and invitations go (so no user reaches it: every field is
// NOT_FOUND and live streams end at their next check), its secret key
// stops matching (secret_hash is emptied), its ingest tokens are revoked,
// AppByPublicID no longer finds it (triggers and identify by public id are
// refused as for an unknown app), its definitions, rules and actions are
// disabled (so a replica whose catalog still holds it, for at most
// CRUMBS_CACHE_TTL, records no event: the writer's counter update finds no enabled
// definition), and the dispatcher sends none of its deliveries. The
// AppDeleter (appdelete_job.go) then removes its rows in the background
// and finally the app row itself.

// DeleteApp marks the app with this public id deleted and answers it, once
// the signed-in user, an owner of the app, gives their password (checked
// and throttled as sign-ins are; client is the caller's IP address). Its
// data is removed afterwards by the AppDeleter.
func (t *Tokens) DeleteApp(ctx context.Context, db *gorm.DB, v Viewer, client, appPublicID, password string) (*App, error) {
	if _, err := v.RequireUser(); err != nil {
		return nil, err
	}
	app, err := v.App(ctx, db, appPublicID, RoleOwner)
	if err != nil {
		return nil, err
	}
	if _, err := t.checkOwnPassword(ctx, db, v, client, password, Invalid("password", "is not your password")); err != nil {
		return nil, err
	}
	err = withRetry(ctx, func() error {
		return db.WithContext(ctx).Transaction(func(tx *gorm.DB) error { return markAppDeleted(tx, v.UserID, app) })
	})
	if err != nil {
		if errors.Is(err, ErrNotFound) || errors.Is(err, ErrForbidden) {
			return nil, err
		}
		return nil, fmt.Errorf("models.DeleteApp: %w", err)
	}
	clearCatalogs(db)
	return app, nil
}

// DeleteAppByOperator is DeleteApp for the operator (crumbs admin
// delete-app): the app with this public id is marked deleted whoever owns
// it, and the running servers remove its data in the background.
func DeleteAppByOperator(ctx context.Context, db *gorm.DB, appPublicID string) (*App, error) {
	if err := checkAppID(appPublicID); err != nil {
		return nil, err
	}
	var app App
	err := withRetry(ctx, func() error {
		return db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
			if err := tx.Where("public_id = ? AND deleted_at IS NULL", appPublicID).Limit(1).Find(&app).Error; err != nil {
				return err
			}
			if app.ID == 0 {
				return newError(ErrNotFound, "no app has the id %s", appPublicID)
			}
			return markAppDeleted(tx, 0, &app)
		})
	})
	if err != nil {
		if errors.Is(err, ErrNotFound) {
			return nil, err
		}
		return nil, fmt.Errorf("models.DeleteAppByOperator: %w", err)
	}
	clearCatalogs(db)
	return &app, nil
}

// markAppDeleted marks the app deleted in tx if userID still owns it (0:
// the operator, whoever owns it): the app's row and the user's membership
// are locked first, so a demotion or another deletion at the same moment
// either comes before (and this one is refused) or waits for it.
func markAppDeleted(tx *gorm.DB, userID uint64, app *App) error {
	var row App
	if err := forUpdate(tx).Where("id = ? AND deleted_at IS NULL", app.ID).Limit(1).Find(&row).Error; err != nil {
		return err
	}
	if row.ID == 0 {
		return newError(ErrNotFound, "app not found")
	}
	if userID != 0 {
		var roles []Role
		if err := forUpdate(tx.Model(&Membership{})).Where("app_id = ? AND user_id = ?", app.ID, userID).Pluck("role", &roles).Error; err != nil {
			return err
		}
		if len(roles) == 0 {
			return newError(ErrNotFound, "app not found")
		}
		if roles[0] != RoleOwner {
			return newError(ErrForbidden, "this needs the %s role in the app; you are %s", RoleOwner, roles[0])
		}
	}
	now := Now()
	if err := tx.Model(&App{}).Where("id = ?", app.ID).Updates(map[string]any{"deleted_at": now, "secret_hash": "", "updated_at": now}).Error; err != nil {
		return err
	}
	for _, model := range []any{&Membership{}, &Invitation{}} {
		if err := tx.Where("app_id = ?", app.ID).Delete(model).Error; err != nil {
			return err
		}
	}
	if err := tx.Model(&IngestToken{}).Where("app_id = ? AND revoked_at IS NULL", app.ID).Update("revoked_at", now).Error; err != nil {
		return err
	}
	for _, model := range []any{&EventDefinition{}, &AutomationRule{}} {
		if err := tx.Model(model).Where("app_id = ?", app.ID).Updates(map[string]any{"enabled": false, "updated_at": now}).Error; err != nil {
			return err
		}
	}
	// Its actions too: a replica of a release before app deletion (during
	// a rolling upgrade) claims the deliveries of any action not disabled.
	// By a list of rule ids, on automation_actions' index of rule_id (MariaDB
	// answers "rule_id IN (subquery)" in an UPDATE by a scan of every row).
	var rules []uint64
	if err := tx.Model(&AutomationRule{}).Where("app_id = ?", app.ID).Order("id").Pluck("id", &rules).Error; err != nil {
		return err
	}
	for chunk := range inChunks(rules, 500) {
		err := tx.Model(&AutomationAction{}).Where("rule_id IN ? AND disabled_at IS NULL", chunk).
			Updates(map[string]any{"disabled_at": now, "disabled_reason": "the app was deleted", "updated_at": now}).Error
		if err != nil {
			return err
		}
	}
	app.DeletedAt = &now
	return nil
}
