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

// SignIn is one sign-in of a user: the family of refresh tokens that a login
// starts, and the access tokens issued with them, which carry its id (claim
// `sid`). Ending it — logout, a reused refresh token, logoutEverywhere,
// changePassword — stops its refresh tokens and its access tokens alike.
type SignIn struct {
	ID        string    `gorm:"primaryKey;size:32"`
	UserID    uint64    `gorm:"not null;index"`
	CreatedAt time.Time `gorm:"not null"`
	RevokedAt *time.Time
}

// RefreshToken is one link of a sign-in's refresh chain. Each use replaces it
// with a new one of the same family; using a replaced one again means it was
// stolen, and ends the whole sign-in.
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

// Tokens signs users in and out: it issues and verifies access tokens (HS256
// JWTs with a kid header, so signing keys rotate without signing everyone
// out: new tokens use the first key, the others still verify until they are
// removed), keeps the refresh chains, throttles password guessing and
// remembers which sign-ins have ended.
type Tokens struct {
	keys       []signingKey
	Issuer     string
	Audience   string
	AccessTTL  time.Duration
	RefreshTTL time.Duration
	// Limits throttle attempts that check a password or a token.
	Limits   *SignInLimits
	parser   *jwt.Parser
	sessions *signInCache
}

type signingKey struct {
	id     string
	secret []byte
}

// NewTokens returns a token service signing with secrets[0] and verifying
// with all of them. Each secret must be at least 256 bits. A sign-in ended
// on another replica is noticed within sessionTTL (0: every request asks the
// store).
func NewTokens(secrets [][]byte, issuer, audience string, sessionTTL time.Duration) (*Tokens, error) {
	if len(secrets) == 0 {
		return nil, errors.New("no token signing secret")
	}
	t := &Tokens{
		Issuer: issuer, Audience: audience, AccessTTL: 15 * time.Minute, RefreshTTL: 30 * 24 * time.Hour,
		Limits: NewSignInLimits(),
	}
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
	t.sessions = newSignInCache(sessionTTL, t.AccessTTL)
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

// accessClaims are the claims of an access token: the registered ones and
// the sign-in it belongs to.
type accessClaims struct {
	jwt.RegisteredClaims
	SignIn string `json:"sid"`
}

// SignAccessToken returns a signed access token for the user in a sign-in.
func (t *Tokens) SignAccessToken(userID uint64, signIn string, now time.Time) (string, time.Time, error) {
	exp := now.Add(t.AccessTTL)
	claims := accessClaims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer: t.Issuer, Subject: strconv.FormatUint(userID, 10), Audience: jwt.ClaimStrings{t.Audience},
			ExpiresAt: jwt.NewNumericDate(exp), NotBefore: jwt.NewNumericDate(now), IssuedAt: jwt.NewNumericDate(now),
			ID: randomToken(16),
		},
		SignIn: signIn,
	}
	tok := jwt.NewWithClaims(jwt.SigningMethodHS256, claims)
	tok.Header["kid"] = t.keys[0].id
	signed, err := tok.SignedString(t.keys[0].secret)
	return signed, exp, err
}

// AccessGrant is who a valid access token speaks for.
type AccessGrant struct {
	UserID   uint64
	SignInID string
}

// VerifyAccessToken checks an access token: any defect (algorithm,
// signature, kid, exp, nbf, iss, aud, sid) or a sign-in that has ended is
// UNAUTHENTICATED.
func (t *Tokens) VerifyAccessToken(ctx context.Context, db *gorm.DB, token string) (AccessGrant, error) {
	var claims accessClaims
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
		return AccessGrant{}, newError(ErrUnauthenticated, "invalid access token: %v", err)
	}
	id, err := strconv.ParseUint(claims.Subject, 10, 64)
	if err != nil || id == 0 {
		return AccessGrant{}, newError(ErrUnauthenticated, "invalid access token subject")
	}
	if claims.SignIn == "" || len(claims.SignIn) > 32 {
		return AccessGrant{}, newError(ErrUnauthenticated, "the access token belongs to no sign-in; refresh it or sign in again")
	}
	live, err := t.sessions.live(ctx, db, claims.SignIn, id)
	if err != nil {
		return AccessGrant{}, fmt.Errorf("models.VerifyAccessToken: %w", err)
	}
	if !live {
		return AccessGrant{}, newError(ErrUnauthenticated, "this sign-in has ended; sign in again")
	}
	return AccessGrant{UserID: id, SignInID: claims.SignIn}, nil
}

// CheckSignIn answers UNAUTHENTICATED once the sign-in of a signed-in
// viewer has ended, through the same cache as VerifyAccessToken. A
// connection that outlives its request (a subscription) calls it again
// before it delivers. Viewers that are not a signed-in user pass.
func (t *Tokens) CheckSignIn(ctx context.Context, db *gorm.DB, v Viewer) error {
	if v.UserID == 0 {
		return nil
	}
	live, err := t.sessions.live(ctx, db, v.SignInID, v.UserID)
	if err != nil {
		return fmt.Errorf("models.CheckSignIn: %w", err)
	}
	if !live {
		return newError(ErrUnauthenticated, "this sign-in has ended; sign in again")
	}
	return nil
}

// Login checks email and password and starts a sign-in. client is the
// caller's IP address, for throttling: past a few failures, the client and
// the email must wait (RATE_LIMITED), whether or not the email has an
// account, so neither the answer nor its timing tells which emails exist.
func (t *Tokens) Login(ctx context.Context, db *gorm.DB, client, email, password string) (*Session, error) {
	attempt, err := t.Limits.begin(client, email, Now())
	if err != nil {
		return nil, err
	}
	user, err := Authenticate(ctx, db, email, password)
	if err != nil {
		attempt.unjudged(err)
		return nil, err
	}
	attempt.succeeded()
	return t.StartSession(ctx, db, user)
}

// AcceptInvitation joins the app an invitation is for (see
// AcceptInvitation) and starts a sign-in; failures are throttled per client.
func (t *Tokens) AcceptInvitation(ctx context.Context, db *gorm.DB, client, token, name, password string) (*Session, error) {
	attempt, err := t.Limits.begin(client, "", Now())
	if err != nil {
		return nil, err
	}
	user, err := AcceptInvitation(ctx, db, token, name, password)
	if err != nil {
		attempt.unjudged(err)
		return nil, err
	}
	attempt.succeeded()
	return t.StartSession(ctx, db, user)
}

// StartSession signs the user in: a new sign-in with its first refresh token,
// and an access token.
func (t *Tokens) StartSession(ctx context.Context, db *gorm.DB, user *User) (*Session, error) {
	signIn := &SignIn{ID: randomToken(24), UserID: user.ID}
	var refresh string
	var row *RefreshToken
	err := db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := tx.Create(signIn).Error; err != nil {
			return err
		}
		var err error
		refresh, row, err = t.addRefreshToken(tx, user.ID, signIn.ID)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("models.StartSession: %w", err)
	}
	return t.session(user, signIn.ID, refresh, row)
}

func (t *Tokens) addRefreshToken(tx *gorm.DB, userID uint64, signIn string) (string, *RefreshToken, error) {
	refresh := "rt_" + randomToken(40)
	row := &RefreshToken{UserID: userID, FamilyID: signIn, TokenHash: hashSecret(refresh), ExpiresAt: Now().Add(t.RefreshTTL)}
	return refresh, row, tx.Create(row).Error
}

func (t *Tokens) session(user *User, signIn, refresh string, row *RefreshToken) (*Session, error) {
	access, accessExp, err := t.SignAccessToken(user.ID, signIn, Now())
	if err != nil {
		return nil, err
	}
	return &Session{User: user, AccessToken: access, AccessExpiresAt: accessExp, RefreshToken: refresh, RefreshExpiresAt: row.ExpiresAt}, nil
}

var errRefreshInvalid = newError(ErrUnauthenticated, "the refresh token is invalid, expired or revoked")

// Refresh trades a refresh token for a new one of the same sign-in and a new
// access token, in one transaction. A token that was already used is
// refused and its whole sign-in ended: someone else has it. Failures are
// throttled per client.
func (t *Tokens) Refresh(ctx context.Context, db *gorm.DB, client, refresh string) (*Session, error) {
	attempt, err := t.Limits.begin(client, "", Now())
	if err != nil {
		return nil, err
	}
	var row RefreshToken
	var reused bool
	var next string
	var nextRow *RefreshToken
	err = db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
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
		// A chain begun before sign-ins were recorded gets its row now.
		signIn := SignIn{ID: row.FamilyID, UserID: row.UserID}
		if err := forUpdate(tx).Where(SignIn{ID: row.FamilyID}).FirstOrCreate(&signIn).Error; err != nil {
			return err
		}
		if signIn.RevokedAt != nil {
			return errRefreshInvalid
		}
		if err := tx.Model(&row).Update("revoked_at", Now()).Error; err != nil {
			return err
		}
		next, nextRow, err = t.addRefreshToken(tx, row.UserID, row.FamilyID)
		return err
	})
	if reused {
		if rerr := t.endSignIn(ctx, db, row.FamilyID); rerr != nil {
			return nil, fmt.Errorf("models.Refresh: end the sign-in of a reused token: %w", rerr)
		}
	}
	if err != nil {
		if errors.Is(err, ErrUnauthenticated) {
			return nil, err
		}
		attempt.unjudged(err)
		return nil, fmt.Errorf("models.Refresh: %w", err)
	}
	user, err := UserByID(ctx, db, row.UserID)
	if err != nil {
		attempt.unjudged(err)
		return nil, err
	}
	attempt.succeeded()
	return t.session(user, row.FamilyID, next, nextRow)
}

// Logout ends the sign-in the refresh token belongs to: its refresh tokens
// and access tokens stop working. Unknown tokens are ignored.
func (t *Tokens) Logout(ctx context.Context, db *gorm.DB, refresh string) error {
	var row RefreshToken
	err := db.WithContext(ctx).Where("token_hash = ?", hashSecret(refresh)).Take(&row).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("models.Logout: %w", err)
	}
	if err := t.endSignIn(ctx, db, row.FamilyID); err != nil {
		return fmt.Errorf("models.Logout: %w", err)
	}
	return nil
}

// LogoutEverywhere ends every sign-in of the signed-in user, this one
// included.
func (t *Tokens) LogoutEverywhere(ctx context.Context, db *gorm.DB, v Viewer) error {
	uid, err := v.RequireUser()
	if err != nil {
		return err
	}
	err = db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		return endUserSignIns(tx, uid, "")
	})
	if err != nil {
		return fmt.Errorf("models.LogoutEverywhere: %w", err)
	}
	t.sessions.endUser(uid, "")
	return nil
}

// endSignIn ends one sign-in.
func (t *Tokens) endSignIn(ctx context.Context, db *gorm.DB, id string) error {
	err := db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		now := Now()
		if err := tx.Model(&SignIn{}).Where("id = ? AND revoked_at IS NULL", id).Update("revoked_at", now).Error; err != nil {
			return err
		}
		return tx.Model(&RefreshToken{}).Where("family_id = ? AND revoked_at IS NULL", id).Update("revoked_at", now).Error
	})
	if err != nil {
		return err
	}
	t.sessions.end(id)
	return nil
}

// endUserSignIns ends every sign-in of a user but except ("" for none), in
// tx. The caller tells the cache after the commit.
func endUserSignIns(tx *gorm.DB, userID uint64, except string) error {
	now := Now()
	if err := tx.Model(&SignIn{}).Where("user_id = ? AND id <> ? AND revoked_at IS NULL", userID, except).Update("revoked_at", now).Error; err != nil {
		return err
	}
	return tx.Model(&RefreshToken{}).Where("user_id = ? AND family_id <> ? AND revoked_at IS NULL", userID, except).Update("revoked_at", now).Error
}
