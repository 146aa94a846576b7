package models

import (
	"context"
	"errors"
	"fmt"

	"golang.org/x/crypto/bcrypt"
	"gorm.io/gorm"
)

// Operator functions, for the admin command line. They take no viewer: whoever
// runs them holds the database credentials, which grant more than any role.

// UserSummary is a user as the admin command lists it.
type UserSummary struct {
	User
	// Apps is the number of apps the user is a member of.
	Apps int64
	// Sessions is the number of sign-ins whose refresh token is still valid.
	Sessions int64
}

// ListUsers returns every dashboard user, oldest first.
func ListUsers(ctx context.Context, db *gorm.DB) ([]UserSummary, error) {
	var users []UserSummary
	err := db.WithContext(ctx).Model(&User{}).
		Select("users.*, "+
			"(SELECT COUNT(*) FROM memberships m WHERE m.user_id = users.id) AS apps, "+
			"(SELECT COUNT(DISTINCT r.family_id) FROM refresh_tokens r WHERE r.user_id = users.id AND r.revoked_at IS NULL AND r.expires_at > ?) AS sessions", Now()).
		Order("users.id").Scan(&users).Error
	if err != nil {
		return nil, fmt.Errorf("models.ListUsers: %w", err)
	}
	return users, nil
}

// ResetPassword sets a user's password and ends every sign-in of the user:
// refresh tokens stop working at once, and access tokens already issued as
// soon as the servers' sign-in caches notice (CRUMBS_CACHE_TTL).
func ResetPassword(ctx context.Context, db *gorm.DB, email, password string) (*User, error) {
	_, key, err := lookupEmail(email)
	if err != nil {
		return nil, err
	}
	if err := validatePassword("password", password, email); err != nil {
		return nil, err
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(password), PasswordCost)
	if err != nil {
		return nil, err
	}
	var user User
	err = db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := tx.Where("email_key = ?", key).Take(&user).Error; err != nil {
			return err
		}
		now := Now()
		if err := tx.Model(&user).Updates(map[string]any{"password_hash": string(hash), "updated_at": now}).Error; err != nil {
			return err
		}
		return endUserSignIns(tx, user.ID, "")
	})
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, newError(ErrNotFound, "no user has the email %s", email)
	}
	if err != nil {
		return nil, fmt.Errorf("models.ResetPassword: %w", err)
	}
	user.PasswordHash = string(hash)
	return &user, nil
}
