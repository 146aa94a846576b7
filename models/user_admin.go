package models

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

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

// AppSummary is an app as crumbs admin list-apps shows it.
type AppSummary struct {
	ID        uint64
	PublicID  string
	Name      string
	CreatedAt time.Time
	DeletedAt *time.Time
	// Owners are the emails of the app's owners, comma-separated.
	Owners string
	// Members counts every member, owners included.
	Members int64
}

// ListApps returns every app, oldest first, with those being deleted (whose
// data the servers are still removing).
func ListApps(ctx context.Context, db *gorm.DB) ([]AppSummary, error) {
	var apps []AppSummary
	err := db.WithContext(ctx).Model(&App{}).Select("id, public_id, name, created_at, deleted_at, " +
		"(SELECT COUNT(*) FROM memberships m WHERE m.app_id = apps.id) AS members").
		Order("id").Scan(&apps).Error
	if err != nil {
		return nil, fmt.Errorf("models.ListApps: %w", err)
	}
	var owners []struct {
		AppID uint64
		Email string
	}
	err = db.WithContext(ctx).Model(&Membership{}).Select("memberships.app_id, users.email").
		Joins("JOIN users ON users.id = memberships.user_id").Where("memberships.role = ?", RoleOwner).
		Order("memberships.app_id, users.id").Scan(&owners).Error
	if err != nil {
		return nil, fmt.Errorf("models.ListApps: %w", err)
	}
	byApp := map[uint64][]string{}
	for _, o := range owners {
		byApp[o.AppID] = append(byApp[o.AppID], o.Email)
	}
	for i := range apps {
		apps[i].Owners = strings.Join(byApp[apps[i].ID], ",")
	}
	return apps, nil
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

// DeletedUser is what DeleteUser did.
type DeletedUser struct {
	User
	// HandedOver holds the apps the user was the only owner of, now owned by
	// the heir.
	HandedOver []App
	// Invitations counts the pending invitations to the user's address that
	// were withdrawn with the account.
	Invitations int
}

// DeleteUser deletes a dashboard user: the account, its memberships and its
// sign-ins (refresh tokens stop at once; access tokens already issued as soon
// as the servers' sign-in caches notice, CRUMBS_CACHE_TTL, and they reach no
// app meanwhile, since the memberships are gone). An app the user is the only
// owner of would be left without one: it goes to heirEmail, an existing user,
// who becomes its owner (a member already, or added); without an heir such a
// user is refused with CONFLICT naming those apps. Pending invitations to the
// user's address are withdrawn too: whoever holds one would otherwise join
// its app with a new account of that address, and the operator deleting
// someone who left expects them out of every app. Receipts of erasures and
// exports keep the user's id, which is no personal data.
func DeleteUser(ctx context.Context, db *gorm.DB, email, heirEmail string) (*DeletedUser, error) {
	_, key, err := lookupEmail(email)
	if err != nil {
		return nil, err
	}
	heirKey := ""
	if heirEmail != "" {
		if _, heirKey, err = lookupEmail(heirEmail); err != nil {
			return nil, Invalid("heir", "is not a valid email address")
		}
		if heirKey == key {
			return nil, Invalid("heir", "is the user being deleted")
		}
	}
	out, err := deleteUser(ctx, db, key, heirKey, func(u *User, apps []App) error {
		return newError(ErrConflict, "%s is the only owner of %s; name an heir who becomes their owner, make another member owner first, or delete the app (crumbs admin delete-app)", u.Email, appList(apps))
	})
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, newError(ErrNotFound, "no user has the email %s", email)
	}
	if errors.Is(err, errNoHeir) {
		return nil, newError(ErrNotFound, "no user has the email %s (the heir); create it first", heirEmail)
	}
	return out, err
}

var errNoHeir = errors.New("no heir")

// deleteUser deletes the user with this email key, handing the apps they
// alone own to the user with heirKey, or, without one, answering
// soleOwner's error. gorm.ErrRecordNotFound: no such user; errNoHeir: no
// such heir.
func deleteUser(ctx context.Context, db *gorm.DB, key, heirKey string, soleOwner func(*User, []App) error) (*DeletedUser, error) {
	var out *DeletedUser
	err := withRetry(ctx, func() error {
		out = &DeletedUser{}
		return db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
			if err := forUpdate(tx).Where("email_key = ?", key).Take(&out.User).Error; err != nil {
				return err
			}
			orphans, err := soleOwnedApps(tx, out.ID)
			if err != nil || len(orphans) == 0 {
				if err == nil {
					err = deleteUserRows(tx, out)
				}
				return err
			}
			if heirKey == "" {
				return soleOwner(&out.User, orphans)
			}
			var heir User
			if err := tx.Where("email_key = ?", heirKey).Take(&heir).Error; errors.Is(err, gorm.ErrRecordNotFound) {
				return errNoHeir
			} else if err != nil {
				return err
			}
			for _, app := range orphans {
				res := tx.Model(&Membership{}).Where("app_id = ? AND user_id = ?", app.ID, heir.ID).Update("role", RoleOwner)
				if res.Error != nil {
					return res.Error
				}
				if res.RowsAffected == 0 {
					if err := tx.Create(&Membership{AppID: app.ID, UserID: heir.ID, Role: RoleOwner}).Error; err != nil {
						return err
					}
				}
			}
			out.HandedOver = orphans
			return deleteUserRows(tx, out)
		})
	})
	if err != nil {
		if errors.Is(err, ErrConflict) || errors.Is(err, gorm.ErrRecordNotFound) || errors.Is(err, errNoHeir) {
			return nil, err
		}
		return nil, fmt.Errorf("delete user: %w", err)
	}
	return out, nil
}

// soleOwnedApps returns, oldest first, the apps whose only owner is the user,
// with the owners' memberships of those apps locked (as changeMember locks
// them), so an owner demoted at the same moment cannot leave one without.
func soleOwnedApps(tx *gorm.DB, userID uint64) ([]App, error) {
	var owned []uint64
	if err := tx.Model(&Membership{}).Where("user_id = ? AND role = ?", userID, RoleOwner).Pluck("app_id", &owned).Error; err != nil || len(owned) == 0 {
		return nil, err
	}
	var owners []Membership
	if err := forUpdate(tx).Where("app_id IN ? AND role = ?", owned, RoleOwner).Find(&owners).Error; err != nil {
		return nil, err
	}
	count := map[uint64]int{}
	for _, m := range owners {
		count[m.AppID]++
	}
	var sole []uint64
	for _, id := range owned {
		if count[id] == 1 {
			sole = append(sole, id)
		}
	}
	if len(sole) == 0 {
		return nil, nil
	}
	var apps []App
	err := tx.Where("id IN ?", sole).Order("id").Find(&apps).Error
	return apps, err
}

// deleteUserRows deletes the user's rows and the pending invitations to
// their address, counting those in out.Invitations.
func deleteUserRows(tx *gorm.DB, out *DeletedUser) error {
	for _, model := range []any{&RefreshToken{}, &SignIn{}, &Membership{}} {
		if err := tx.Where("user_id = ?", out.ID).Delete(model).Error; err != nil {
			return err
		}
	}
	// The address in any case, folded in Go as invite folds it (SQLite's
	// LOWER folds ASCII only); invitations are few, expiring in a week.
	var pending []*Invitation
	if err := tx.Select("id", "email", "expires_at").Find(&pending).Error; err != nil {
		return err
	}
	var withdrawn []uint64
	now := Now()
	for _, p := range pending {
		if strings.ToLower(p.Email) == out.EmailKey {
			withdrawn = append(withdrawn, p.ID)
			if !p.ExpiresAt.Before(now) {
				out.Invitations++
			}
		}
	}
	if len(withdrawn) > 0 {
		if err := tx.Where("id IN ?", withdrawn).Delete(&Invitation{}).Error; err != nil {
			return err
		}
	}
	return tx.Delete(&User{}, out.ID).Error
}

// appList names apps for a message: "Shop (app_k3x…) and Blog (app_9f…)".
func appList(apps []App) string {
	names := make([]string, len(apps))
	for i, a := range apps {
		names[i] = fmt.Sprintf("%q (%s)", a.Name, a.PublicID)
	}
	if len(names) == 1 {
		return "the app " + names[0]
	}
	return "the apps " + strings.Join(names[:len(names)-1], ", ") + " and " + names[len(names)-1]
}
