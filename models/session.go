package models

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"gorm.io/gorm"
)

// RefreshToken is one link of a sign-in's refresh chain. Each use replaces it
// with a new one of the same family; using a replaced one again means it was
// stolen, and revokes the whole family.
type RefreshToken struct {
	ID        uint64     `gorm:"primaryKey"`
	UserID    uint64     `gorm:"not null;index"`
	FamilyID  string     `gorm:"size:32;not null;index"`
	TokenHash string     `gorm:"size:64;not null;uniqueIndex"`
	ExpiresAt time.Time  `gorm:"not null"`
	RevokedAt *time.Time `gorm:"index"`
	CreatedAt time.Time  `gorm:"not null"`
}

// MinSigningKeyBytes is the shortest accepted token signing secret (256 bits).
const MinSigningKeyBytes = 32

// Tokens issues and verifies access tokens: HS256 JWTs with a kid header, so
// signing keys rotate without signing everyone out (new tokens use the first
// key; the others still verify until they are removed).
type Tokens struct {
	keys       []signingKey
	Issuer     string
	Audience   string
	AccessTTL  time.Duration
	RefreshTTL time.Duration
	parser     *jwt.Parser
}

type signingKey struct {
	id     string
	secret []byte
}

// NewTokens returns a token service signing with secrets[0] and verifying
// with all of them. Each secret must be at least 256 bits.
func NewTokens(secrets [][]byte, issuer, audience string) (*Tokens, error) {
	if len(secrets) == 0 {
		return nil, errors.New("no token signing secret")
	}
	t := &Tokens{Issuer: issuer, Audience: audience, AccessTTL: 15 * time.Minute, RefreshTTL: 30 * 24 * time.Hour}
	for i, s := range secrets {
		if len(s) < MinSigningKeyBytes {
			return nil, fmt.Errorf("token signing secret %d has %d bits; at least 256 are needed", i+1, len(s)*8)
		}
		sum := sha256.Sum256(s)
		t.keys = append(t.keys, signingKey{id: hex.EncodeToString(sum[:6]), secret: s})
	}
	t.parser = jwt.NewParser(
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
		jwt.WithExpirationRequired(),
		jwt.WithIssuer(issuer),
		jwt.WithAudience(audience),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(5*time.Second),
	)
	return t, nil
}

// Session is what a sign-in or a refresh hands out.
type Session struct {
	User             *User
	AccessToken      string
	AccessExpiresAt  time.Time
	RefreshToken     string
	RefreshExpiresAt time.Time
}

// SignAccessToken returns a signed access token for the user.
func (t *Tokens) SignAccessToken(userID uint64, now time.Time) (string, time.Time, error) {
	exp := now.Add(t.AccessTTL)
	claims := jwt.RegisteredClaims{
		Issuer: t.Issuer, Subject: strconv.FormatUint(userID, 10), Audience: jwt.ClaimStrings{t.Audience},
		ExpiresAt: jwt.NewNumericDate(exp), NotBefore: jwt.NewNumericDate(now), IssuedAt: jwt.NewNumericDate(now),
		ID: randomToken(16),
	}
	tok := jwt.NewWithClaims(jwt.SigningMethodHS256, claims)
	tok.Header["kid"] = t.keys[0].id
	signed, err := tok.SignedString(t.keys[0].secret)
	return signed, exp, err
}

// VerifyAccessToken checks an access token and returns its user id. Any
// defect (algorithm, signature, kid, exp, nbf, iss, aud) is UNAUTHENTICATED.
func (t *Tokens) VerifyAccessToken(token string) (uint64, error) {
	var claims jwt.RegisteredClaims
	_, err := t.parser.ParseWithClaims(token, &claims, func(tok *jwt.Token) (any, error) {
		kid, _ := tok.Header["kid"].(string)
		for _, k := range t.keys {
			if k.id == kid {
				return k.secret, nil
			}
		}
		return nil, fmt.Errorf("unknown signing key %q", truncate(kid, 32))
	})
	if err != nil {
		return 0, newError(ErrUnauthenticated, "invalid access token: %v", err)
	}
	id, err := strconv.ParseUint(claims.Subject, 10, 64)
	if err != nil || id == 0 {
		return 0, newError(ErrUnauthenticated, "invalid access token subject")
	}
	return id, nil
}

// Login checks email and password and starts a session.
func (t *Tokens) Login(ctx context.Context, db *gorm.DB, email, password string) (*Session, error) {
	user, err := Authenticate(ctx, db, email, password)
	if err != nil {
		return nil, err
	}
	return t.StartSession(ctx, db, user, "")
}

// StartSession signs the user in: a new access token and a new refresh family.
// An empty family starts a new one.
func (t *Tokens) StartSession(ctx context.Context, db *gorm.DB, user *User, family string) (*Session, error) {
	if family == "" {
		family = randomToken(24)
	}
	now := Now()
	access, accessExp, err := t.SignAccessToken(user.ID, now)
	if err != nil {
		return nil, err
	}
	refresh := "rt_" + randomToken(40)
	row := &RefreshToken{UserID: user.ID, FamilyID: family, TokenHash: hashSecret(refresh), ExpiresAt: now.Add(t.RefreshTTL)}
	if err := db.WithContext(ctx).Create(row).Error; err != nil {
		return nil, err
	}
	return &Session{User: user, AccessToken: access, AccessExpiresAt: accessExp, RefreshToken: refresh, RefreshExpiresAt: row.ExpiresAt}, nil
}

var errRefreshInvalid = newError(ErrUnauthenticated, "the refresh token is invalid, expired or revoked")

// Refresh trades a refresh token for a new session of the same family. A
// token that was already used or revoked is refused, and its family revoked.
func (t *Tokens) Refresh(ctx context.Context, db *gorm.DB, refresh string) (*Session, error) {
	var row RefreshToken
	var reused bool
	err := db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		err := forUpdate(tx).Where("token_hash = ?", hashSecret(refresh)).Take(&row).Error
		if errors.Is(err, gorm.ErrRecordNotFound) {
			return errRefreshInvalid
		}
		if err != nil {
			return err
		}
		if row.RevokedAt != nil {
			reused = true
			return errRefreshInvalid
		}
		if row.ExpiresAt.Before(Now()) {
			return errRefreshInvalid
		}
		return tx.Model(&row).Update("revoked_at", Now()).Error
	})
	if reused {
		revokeFamily(ctx, db, row.FamilyID)
	}
	if err != nil {
		return nil, err
	}
	user, err := UserByID(ctx, db, row.UserID)
	if err != nil {
		return nil, err
	}
	return t.StartSession(ctx, db, user, row.FamilyID)
}

// Logout revokes the refresh token's whole family: that sign-in ends on
// every device that shares it. Unknown tokens are ignored.
func Logout(ctx context.Context, db *gorm.DB, refresh string) error {
	var row RefreshToken
	err := db.WithContext(ctx).Where("token_hash = ?", hashSecret(refresh)).Take(&row).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	return revokeFamily(ctx, db, row.FamilyID)
}

func revokeFamily(ctx context.Context, db *gorm.DB, family string) error {
	return db.WithContext(ctx).Model(&RefreshToken{}).Where("family_id = ? AND revoked_at IS NULL", family).Update("revoked_at", Now()).Error
}
