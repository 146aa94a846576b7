package models

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"gorm.io/gorm"
)

// Membership gives a user a role in an app.
type Membership struct {
	AppID     uint64    `gorm:"primaryKey;autoIncrement:false"`
	UserID    uint64    `gorm:"primaryKey;autoIncrement:false;index"`
	Role      Role      `gorm:"size:16;not null"`
	CreatedAt time.Time `gorm:"not null"`
}

// Invitation lets someone without an account join an app: the owner shares
// the token, the invitee accepts it with a password of their own.
type Invitation struct {
	ID        uint64    `gorm:"primaryKey"`
	AppID     uint64    `gorm:"not null;index"`
	Email     string    `gorm:"size:254;not null"`
	Role      Role      `gorm:"size:16;not null"`
	TokenHash string    `gorm:"size:64;not null;uniqueIndex"`
	ExpiresAt time.Time `gorm:"not null"`
	CreatedAt time.Time `gorm:"not null"`
}

const invitationTTL = 7 * 24 * time.Hour

func memberRole(ctx context.Context, db *gorm.DB, appID, userID uint64) (Role, error) {
	var roles []Role
	err := db.WithContext(ctx).Model(&Membership{}).Where("app_id = ? AND user_id = ?", appID, userID).Pluck("role", &roles).Error
	if err != nil || len(roles) == 0 {
		return "", err
	}
	return roles[0], nil
}

// Members lists an app's members, oldest first. Owners only.
func Members(ctx context.Context, db *gorm.DB, v Viewer, appPublicID string) ([]*Membership, error) {
	app, err := v.App(ctx, db, appPublicID, RoleOwner)
	if err != nil {
		return nil, err
	}
	var members []*Membership
	err = db.WithContext(ctx).Where("app_id = ?", app.ID).Order("created_at, user_id").Find(&members).Error
	return members, err
}

// AddMemberResult is the invitation addMember made and its token, shown once.
type AddMemberResult struct {
	Invitation *Invitation
	Token      string
}

// AddMember invites the email to the app with a role. Owners only. It always
// invites, whether or not the email has an account, so the answer reveals
// nothing about who has one and nobody joins an app without accepting.
// Inviting an email again replaces its pending invitation (the old token
// stops working); inviting a member is CONFLICT, as owners see members.
func AddMember(ctx context.Context, db *gorm.DB, v Viewer, appPublicID, email string, role Role) (*AddMemberResult, error) {
	app, err := v.App(ctx, db, appPublicID, RoleOwner)
	if err != nil {
		return nil, err
	}
	var bad validation
	bad.check("role", role.Valid(), "must be owner, editor or viewer")
	email, key, err := NormalizeEmail(email)
	bad.add(err)
	if err := bad.err(); err != nil {
		return nil, err
	}
	token := "inv_" + randomToken(32)
	inv := &Invitation{AppID: app.ID, Email: email, Role: role, TokenHash: hashSecret(token), ExpiresAt: Now().Add(invitationTTL)}
	// Invitations of one app take turns on its row: on MySQL, two
	// invitations of one address at once each found no pending one to
	// replace and both stayed, or deadlocked on the deletes. (Not on its
	// memberships, as role changes do: an acceptance, which locks its
	// invitation and then adds a membership, would deadlock with that.)
	err = withRetry(ctx, func() error {
		inv.ID = 0
		return db.WithContext(ctx).Transaction(func(tx *gorm.DB) error { return invite(tx, app, inv, key) })
	})
	if errors.Is(err, ErrNotFound) {
		return nil, err
	}
	if err != nil {
		return nil, fmt.Errorf("models.AddMember: %w", err)
	}
	return &AddMemberResult{Invitation: inv, Token: token}, nil
}

// invite stores inv, replacing the app's pending invitations of the email
// key, unless the key is a member's.
func invite(tx *gorm.DB, app *App, inv *Invitation, key string) error {
	// A deleted app (deleteApp may commit after the inviter's access
	// check) takes no invitation.
	var live []uint64
	if err := forUpdate(tx.Model(&App{})).Where("id = ? AND deleted_at IS NULL", app.ID).Pluck("id", &live).Error; err != nil {
		return err
	}
	if len(live) == 0 {
		return newError(ErrNotFound, "app not found")
	}
	var members int64
	err := tx.Model(&Membership{}).Joins("JOIN users ON users.id = memberships.user_id").
		Where("memberships.app_id = ? AND users.email_key = ?", app.ID, key).Count(&members).Error
	if err != nil {
		return err
	}
	if members > 0 {
		return ConflictOn("email", "%s is already a member; change the role instead", inv.Email)
	}
	if err := tx.Where("app_id = ? AND expires_at < ?", app.ID, Now()).Delete(&Invitation{}).Error; err != nil {
		return err
	}
	// The same address in any case, folded in Go: SQLite's LOWER
	// folds ASCII only, so ÉMILE@ and émile@ were two invitations.
	var pending []*Invitation
	if err := tx.Select("id", "email").Where("app_id = ?", app.ID).Find(&pending).Error; err != nil {
		return err
	}
	var replaced []uint64
	for _, p := range pending {
		if strings.ToLower(p.Email) == key {
			replaced = append(replaced, p.ID)
		}
	}
	if len(replaced) > 0 {
		if err := tx.Where("app_id = ? AND id IN ?", app.ID, replaced).Delete(&Invitation{}).Error; err != nil {
			return err
		}
	}
	return tx.Create(inv).Error
}

// Invitations lists an app's pending invitations, newest first. Owners only.
func Invitations(ctx context.Context, db *gorm.DB, v Viewer, appPublicID string) ([]*Invitation, error) {
	app, err := v.App(ctx, db, appPublicID, RoleOwner)
	if err != nil {
		return nil, err
	}
	var out []*Invitation
	err = db.WithContext(ctx).Where("app_id = ? AND expires_at >= ?", app.ID, Now()).Order("id DESC").Find(&out).Error
	if err != nil {
		return nil, fmt.Errorf("models.Invitations: %w", err)
	}
	return out, nil
}

// RevokeInvitation withdraws a pending invitation of the app. Owners only.
func RevokeInvitation(ctx context.Context, db *gorm.DB, v Viewer, appPublicID, id string) (*Invitation, error) {
	app, err := v.App(ctx, db, appPublicID, RoleOwner)
	if err != nil {
		return nil, err
	}
	n, err := ParseID("id", id)
	if err != nil {
		return nil, err
	}
	var inv Invitation
	err = db.WithContext(ctx).Where("app_id = ? AND id = ? AND expires_at >= ?", app.ID, n, Now()).Take(&inv).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, newError(ErrNotFound, "invitation %s not found", id)
	}
	if err == nil {
		err = db.WithContext(ctx).Delete(&inv).Error
	}
	if err != nil {
		return nil, fmt.Errorf("models.RevokeInvitation: %w", err)
	}
	return &inv, nil
}

// AcceptInvitation creates the invitee's account (or uses the existing one,
// if the password matches) and the membership. The token works once.
func AcceptInvitation(ctx context.Context, db *gorm.DB, token, name, password string) (*User, error) {
	invalid := newError(ErrUnauthenticated, "the invitation is invalid or has expired")
	var user *User
	// An invitation of the same address at once may deadlock with this.
	err := withRetry(ctx, func() error {
		return db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
			var inv Invitation
			err := forUpdate(tx).Where("token_hash = ?", hashSecret(token)).Take(&inv).Error
			if errors.Is(err, gorm.ErrRecordNotFound) || err == nil && inv.ExpiresAt.Before(Now()) {
				return invalid
			}
			if err != nil {
				return err
			}
			// An invitation stored as its app was deleted lets no one in.
			var live []uint64
			if err := forUpdate(tx.Model(&App{})).Where("id = ? AND deleted_at IS NULL", inv.AppID).Pluck("id", &live).Error; err != nil {
				return err
			}
			if len(live) == 0 {
				return invalid
			}
			if user, err = Authenticate(ctx, tx, inv.Email, password); errors.Is(err, ErrUnauthenticated) {
				user, err = CreateUser(ctx, tx, inv.Email, name, password)
				if errors.Is(err, ErrConflict) {
					return newError(ErrUnauthenticated, "%s already has an account: accept with its password", inv.Email)
				}
			}
			if err != nil {
				return err
			}
			m := &Membership{AppID: inv.AppID, UserID: user.ID, Role: inv.Role}
			if err := tx.Create(m).Error; err != nil && !errors.Is(err, gorm.ErrDuplicatedKey) {
				return err
			}
			return tx.Delete(&inv).Error
		})
	})
	return user, err
}

// SetMemberRole changes a member's role. Owners only; the last owner stays.
func SetMemberRole(ctx context.Context, db *gorm.DB, v Viewer, appPublicID string, userID string, role Role) (*Membership, error) {
	if !role.Valid() {
		return nil, Invalid("role", "must be owner, editor or viewer")
	}
	var m *Membership
	err := changeMember(ctx, db, v, appPublicID, userID, func(tx *gorm.DB, member *Membership) error {
		member.Role = role
		m = member
		return tx.Model(member).Where("app_id = ? AND user_id = ?", member.AppID, member.UserID).Update("role", role).Error
	})
	return m, err
}

// RemoveMember ends a membership. Owners only; the last owner cannot go.
func RemoveMember(ctx context.Context, db *gorm.DB, v Viewer, appPublicID string, userID string) error {
	return changeMember(ctx, db, v, appPublicID, userID, func(tx *gorm.DB, member *Membership) error {
		return tx.Where("app_id = ? AND user_id = ?", member.AppID, member.UserID).Delete(&Membership{}).Error
	})
}

// changeMember applies change to a membership, then checks under lock that the
// app still has an owner, so two owners demoting each other at once cannot
// leave it with none.
func changeMember(ctx context.Context, db *gorm.DB, v Viewer, appPublicID, userID string, change func(*gorm.DB, *Membership) error) error {
	app, err := v.App(ctx, db, appPublicID, RoleOwner)
	if err != nil {
		return err
	}
	uid, err := ParseID("userId", userID)
	if err != nil {
		return err
	}
	return withRetry(ctx, func() error {
		return db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
			var members []*Membership
			if err := forUpdate(tx).Where("app_id = ?", app.ID).Find(&members).Error; err != nil {
				return err
			}
			var target *Membership
			for _, m := range members {
				if m.UserID == uid {
					target = m
				}
			}
			if target == nil {
				return newError(ErrNotFound, "no such member")
			}
			if err := change(tx, target); err != nil {
				return err
			}
			var owners int64
			if err := tx.Model(&Membership{}).Where("app_id = ? AND role = ?", app.ID, RoleOwner).Count(&owners).Error; err != nil {
				return err
			}
			if owners == 0 {
				return newError(ErrConflict, "an app needs at least one owner")
			}
			return nil
		})
	})
}
