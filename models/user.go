package models

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"golang.org/x/crypto/bcrypt"
	"gorm.io/gorm"
)

// User is a dashboard user. Users sign in with email and password; what they
// may see is decided by their memberships.
type User struct {
	ID           uint64    `gorm:"primaryKey"`
	Email        string    `gorm:"size:254;not null"`
	EmailKey     string    `gorm:"size:254;not null;uniqueIndex"`
	Name         string    `gorm:"size:200;not null"`
	PasswordHash string    `gorm:"size:100;not null"`
	CreatedAt    time.Time `gorm:"not null"`
	UpdatedAt    time.Time `gorm:"not null"`
}

const (
	minPasswordLen = 10
	maxPasswordLen = 72 // bcrypt ignores bytes past 72
)

// PasswordCost is the bcrypt cost of new password hashes. Tests lower it;
// nothing else should.
var PasswordCost = 12

// dummyHashes keep a sign-in for an unknown email as slow as one for a known
// email: it is compared against a hash of PasswordCost (bcrypt reads the
// cost from the hash), made once per cost.
var dummyHashes sync.Map

func dummyHash() []byte {
	cost := PasswordCost
	if h, ok := dummyHashes.Load(cost); ok {
		return h.([]byte)
	}
	h, _ := bcrypt.GenerateFromPassword([]byte("crumbs-timing-equalizer"), cost)
	dummyHashes.Store(cost, h)
	return h
}

// validatePassword applies the password rules: 10 to 72 bytes of UTF-8
// without control characters, at least 10 characters besides leading and
// trailing spaces, not one character repeated, and not the email address.
func validatePassword(field, password, email string) error {
	trimmed := strings.TrimSpace(password)
	switch {
	case !utf8.ValidString(password):
		return Invalid(field, "must be valid UTF-8")
	case len(password) > maxPasswordLen:
		return Invalid(field, "must be at most %d bytes long", maxPasswordLen)
	case strings.IndexFunc(password, unicode.IsControl) >= 0:
		return Invalid(field, "must not contain control characters")
	case trimmed == "":
		return Invalid(field, "must not be only spaces")
	case utf8.RuneCountInString(trimmed) < minPasswordLen:
		return Invalid(field, "must be at least %d characters long, not counting leading and trailing spaces", minPasswordLen)
	case strings.Trim(trimmed, firstRune(trimmed)) == "":
		return Invalid(field, "must not be one character repeated")
	case email != "" && strings.EqualFold(trimmed, strings.TrimSpace(email)):
		return Invalid(field, "must not be your email address")
	}
	return nil
}

func firstRune(s string) string {
	_, size := utf8.DecodeRuneInString(s)
	return s[:size]
}

// CreateUser adds a dashboard user; the email must not be taken.
func CreateUser(ctx context.Context, db *gorm.DB, email, name, password string) (*User, error) {
	email, key, err := NormalizeEmail(email)
	if err != nil {
		return nil, err
	}
	name = strings.TrimSpace(name)
	// The admin command passes its argument as the terminal encoded it:
	// bytes that are not UTF-8 were stored on SQLite and refused by MySQL
	// (Incorrect string value), so they are refused here on both.
	if utf8.RuneCountInString(name) > 200 || !utf8.ValidString(name) {
		return nil, Invalid("name", "must be at most 200 characters of UTF-8")
	}
	if err := validatePassword("password", password, email); err != nil {
		return nil, err
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(password), PasswordCost)
	if err != nil {
		return nil, err
	}
	user := &User{Email: email, EmailKey: key, Name: name, PasswordHash: string(hash)}
	err = db.WithContext(ctx).Create(user).Error
	if errors.Is(err, gorm.ErrDuplicatedKey) {
		return nil, ConflictOn("email", "a user with this email exists")
	}
	return user, err
}

// Authenticate returns the user with this email and password. Every failure
// is the same UNAUTHENTICATED, so sign-in does not reveal which emails exist.
func Authenticate(ctx context.Context, db *gorm.DB, email, password string) (*User, error) {
	failed := newError(ErrUnauthenticated, "wrong email or password")
	var user User
	err := db.WithContext(ctx).Where("email_key = ?", strings.ToLower(strings.TrimSpace(email))).Take(&user).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		bcrypt.CompareHashAndPassword(dummyHash(), []byte(password))
		return nil, failed
	}
	if err != nil {
		return nil, err
	}
	if bcrypt.CompareHashAndPassword([]byte(user.PasswordHash), []byte(password)) != nil {
		return nil, failed
	}
	return &user, nil
}

// UserByID returns one user.
func UserByID(ctx context.Context, db *gorm.DB, id uint64) (*User, error) {
	var user User
	err := db.WithContext(ctx).Take(&user, id).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, newError(ErrUnauthenticated, "the user no longer exists")
	}
	return &user, err
}

// UsersByID loads users by id, for dataloaders.
func UsersByID(ctx context.Context, db *gorm.DB, ids []uint64) (map[uint64]*User, error) {
	return loadByID(ctx, db, ids, func(u *User) uint64 { return u.ID })
}

// Me returns the signed-in user.
func Me(ctx context.Context, db *gorm.DB, v Viewer) (*User, error) {
	id, err := v.RequireUser()
	if err != nil {
		return nil, err
	}
	return UserByID(ctx, db, id)
}

// checkOwnPassword returns the signed-in user once password is theirs, and
// wrong otherwise; a check is throttled and counted as a sign-in is
// (client is the caller's IP address).
func (t *Tokens) checkOwnPassword(ctx context.Context, db *gorm.DB, v Viewer, client, password string, wrong error) (*User, error) {
	user, err := Me(ctx, db, v)
	if err != nil {
		return nil, err
	}
	attempt, err := t.Limits.begin(client, user.EmailKey, Now())
	if err != nil {
		return nil, err
	}
	if bcrypt.CompareHashAndPassword([]byte(user.PasswordHash), []byte(password)) != nil {
		return nil, wrong
	}
	attempt.succeeded()
	return user, nil
}

// ChangePassword changes the signed-in user's password and ends every other
// sign-in of theirs; this one stays. The current password is checked first,
// throttled like sign-in (client is the caller's IP address).
func (t *Tokens) ChangePassword(ctx context.Context, db *gorm.DB, v Viewer, client, current, next string) error {
	user, err := t.checkOwnPassword(ctx, db, v, client, current, Invalid("currentPassword", "is not your current password"))
	if err != nil {
		return err
	}
	if err := validatePassword("newPassword", next, user.Email); err != nil {
		return err
	}
	if next == current {
		return Invalid("newPassword", "must differ from the current password")
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(next), PasswordCost)
	if err != nil {
		return fmt.Errorf("models.ChangePassword: %w", err)
	}
	err = db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := tx.Model(user).Update("password_hash", string(hash)).Error; err != nil {
			return err
		}
		return endUserSignIns(tx, user.ID, v.SignInID)
	})
	if err != nil {
		return fmt.Errorf("models.ChangePassword: %w", err)
	}
	t.sessions.endUser(user.ID, v.SignInID)
	return nil
}

// DeleteAccount deletes the signed-in user's account once they give their
// password (throttled as sign-ins are): the user, their memberships, every
// sign-in and refresh token (DeleteUser). An app they alone own would be
// left without an owner: CONFLICT names those apps, to hand over first
// (another member made owner; an operator's DeleteUser can name an heir).
func (t *Tokens) DeleteAccount(ctx context.Context, db *gorm.DB, v Viewer, client, password string) error {
	user, err := t.checkOwnPassword(ctx, db, v, client, password, Invalid("password", "is not your password"))
	if err != nil {
		return err
	}
	_, err = deleteUser(ctx, db, user.EmailKey, "", func(_ *User, apps []App) error {
		return newError(ErrConflict, "you are the only owner of %s: delete it (deleteApp) or make another member its owner first, or ask the operator, who can hand it to another user as they delete your account", appList(apps))
	})
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return newError(ErrUnauthenticated, "the user no longer exists")
	}
	if err != nil {
		return err
	}
	t.sessions.endUser(user.ID, "")
	return nil
}
