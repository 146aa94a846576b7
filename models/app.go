package models

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base32"
	"encoding/hex"
	"errors"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"gorm.io/gorm"
)

// App is one tracked site or workspace.
type App struct {
	ID              uint64     `gorm:"primaryKey"`
	PublicID        string     `gorm:"size:32;not null;uniqueIndex"`
	Name            string     `gorm:"size:200;not null"`
	AllowedOrigins  StringList `gorm:"type:text;not null"`
	Timezone        string     `gorm:"size:64;not null"`
	SecretHash      string     `gorm:"size:64;not null;index:idx_apps_secret_hash"`
	SecretHint      string     `gorm:"size:16;not null"`
	SecretRotatedAt time.Time  `gorm:"not null"`
	// SetAsideOrigins are entries saved before allowed origins were checked
	// that no browser can send (see normalizeOrigin): migration
	// 2026120410_allowed_origins moved them out of AllowedOrigins, where
	// they matched nothing. Setting AllowedOrigins clears them.
	SetAsideOrigins StringList `gorm:"type:text"`
	// RetentionDays is how long raw events are kept; nil keeps them forever.
	RetentionDays *int
	// ExpiredBefore is the latest cutoff retention has applied: hours
	// before it may have lost raw events (nil: retention never ran). Only
	// the lifecycle job sets it.
	ExpiredBefore *time.Time
	// DeletedAt is when an owner deleted the app (appdelete.go): from then
	// on no one reaches it, and the AppDeleter removes its rows, then it.
	DeletedAt *time.Time `gorm:"index:idx_apps_deleted_at"`
	CreatedAt time.Time  `gorm:"not null"`
	UpdatedAt time.Time  `gorm:"not null"`
}

// AppInput holds the editable fields of an app; nil means unchanged.
type AppInput struct {
	Name           *string
	AllowedOrigins []string
	Timezone       *string
	// RetentionDays sets how many days raw events are kept; 0 keeps them
	// forever.
	RetentionDays *int
}

const maxOrigins = 50

// apply validates in and copies it onto a; the error names every bad field.
func (a *App) apply(in AppInput) error {
	var bad validation
	if in.Name != nil {
		if name, err := checkName(*in.Name); bad.add(err) {
			a.Name = name
		}
	}
	if in.AllowedOrigins != nil && bad.check("allowedOrigins", len(in.AllowedOrigins) <= maxOrigins, "at most %d origins", maxOrigins) {
		origins, refused := StringList{}, []string{}
		for _, o := range in.AllowedOrigins {
			norm, err := normalizeOrigin(o)
			var one *InvalidError
			if errors.As(err, &one) {
				refused = append(refused, one.Message) // each names its origin
				continue
			}
			origins = append(origins, norm)
		}
		// One field, one message naming every bad origin.
		bad.check("allowedOrigins", len(refused) == 0, "%s", strings.Join(refused, "; "))
		a.AllowedOrigins = origins
		a.SetAsideOrigins = StringList{}
	}
	if in.Timezone != nil {
		tz := strings.TrimSpace(*in.Timezone)
		_, err := time.LoadLocation(tz)
		if bad.check("timezone", err == nil && tz != "" && tz != "Local", "unknown IANA timezone %q", tz) {
			a.Timezone = tz
		}
	}
	if in.RetentionDays != nil {
		days := *in.RetentionDays
		if bad.check("retentionDays", days >= 0 && days <= 36500, "must be 1 to 36500 days, or 0 to keep events forever") {
			a.RetentionDays = nil
			if days > 0 {
				a.RetentionDays = &days
			}
		}
	}
	return bad.err()
}

// normalizeOrigin turns an allowed origin into the form browsers send in
// their Origin header, or refuses one that could never match it (a
// browser's Origin has no wildcard, no path, no default port, no trailing
// dot), since such an entry would silently refuse a whole site.
func normalizeOrigin(raw string) (string, error) {
	u, err := url.Parse(strings.TrimSpace(raw))
	shown := truncate(raw, 100)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Opaque != "" ||
		(u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || u.User != nil || len(raw) > 255 {
		return "", Invalid("allowedOrigins", "%q is not an origin such as https://example.com", shown)
	}
	host, port := strings.ToLower(strings.TrimSuffix(u.Hostname(), ".")), u.Port()
	if strings.Contains(host, "*") {
		return "", Invalid("allowedOrigins", "%q: browsers send no wildcard in their Origin header; list each origin, e.g. https://shop.example.com", shown)
	}
	if ip := net.ParseIP(host); ip == nil && (host == "" || strings.Trim(host, "abcdefghijklmnopqrstuvwxyz0123456789-.") != "" ||
		strings.Contains(host, "..") || strings.HasPrefix(host, ".") || strings.HasPrefix(host, "-")) {
		return "", Invalid("allowedOrigins", "%q: %q is not a host name browsers send (internationalised names go in punycode, xn--…)", shown, host)
	}
	if port != "" {
		n, err := strconv.Atoi(port)
		if err != nil || n < 1 || n > 65535 {
			return "", Invalid("allowedOrigins", "%q: the port must be 1 to 65535", shown)
		}
		// Browsers leave out the scheme's default port.
		if u.Scheme == "https" && n == 443 || u.Scheme == "http" && n == 80 {
			port = ""
		}
	}
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	if port != "" {
		host += ":" + port
	}
	return u.Scheme + "://" + host, nil
}

// CreateApp creates an app with a fresh secret key and the built-in
// definitions, owned by the signed-in user. The plain secret is returned once
// and never stored.
func CreateApp(ctx context.Context, db *gorm.DB, v Viewer, in AppInput) (*App, string, error) {
	userID, err := v.RequireUser()
	if err != nil {
		return nil, "", err
	}
	var bad validation
	bad.check("name", in.Name != nil, "is required")
	if in.Timezone == nil {
		utc := "UTC"
		in.Timezone = &utc
	}
	app := &App{AllowedOrigins: StringList{}}
	bad.add(app.apply(in))
	if err := bad.err(); err != nil {
		return nil, "", err
	}
	app.PublicID = "app_" + randomToken(10)
	secret := app.setSecret()
	err = db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		// The user is locked, so an app is never made for a user deleted
		// meanwhile (DeleteUser), whose access token may live on in a
		// server's cache for CRUMBS_CACHE_TTL.
		if err := forUpdate(tx).Select("id").Take(&User{}, userID).Error; errors.Is(err, gorm.ErrRecordNotFound) {
			return newError(ErrUnauthenticated, "the user no longer exists")
		} else if err != nil {
			return err
		}
		if err := tx.Create(app).Error; err != nil {
			return err
		}
		if err := tx.Create(&Membership{AppID: app.ID, UserID: userID, Role: RoleOwner}).Error; err != nil {
			return err
		}
		defs := builtInDefinitions(app.ID)
		return tx.Create(&defs).Error
	})
	if err != nil {
		return nil, "", err
	}
	clearCatalogs(db)
	return app, secret, nil
}

// UpdateApp changes the given fields of the app with this public id, and
// only those, so concurrent edits of different fields do not undo each
// other. Owners only. Writing through gorm refreshes the catalog.
func UpdateApp(ctx context.Context, db *gorm.DB, v Viewer, publicID string, in AppInput) (*App, error) {
	app, err := v.App(ctx, db, publicID, RoleOwner)
	if err != nil {
		return nil, err
	}
	if err := app.apply(in); err != nil {
		return nil, err
	}
	changes := map[string]any{"updated_at": Now()}
	if in.Name != nil {
		changes["name"] = app.Name
	}
	if in.AllowedOrigins != nil {
		changes["allowed_origins"] = app.AllowedOrigins
		changes["set_aside_origins"] = app.SetAsideOrigins
	}
	if in.Timezone != nil {
		changes["timezone"] = app.Timezone
	}
	if in.RetentionDays != nil {
		changes["retention_days"] = app.RetentionDays
	}
	db = db.WithContext(ctx)
	if err := db.Model(&App{}).Where("id = ?", app.ID).Updates(changes).Error; err != nil {
		return nil, err
	}
	if err := db.Take(app, app.ID).Error; err != nil {
		return nil, err
	}
	clearCatalogs(db)
	return app, nil
}

// RotateAppSecret replaces the app's secret key and returns the new one; the
// old key stops working at once. Owners only (a key cannot rotate itself).
func RotateAppSecret(ctx context.Context, db *gorm.DB, v Viewer, publicID string) (*App, string, error) {
	if _, err := v.RequireUser(); err != nil {
		return nil, "", err
	}
	app, err := v.App(ctx, db, publicID, RoleOwner)
	if err != nil {
		return nil, "", err
	}
	secret := app.setSecret()
	err = db.WithContext(ctx).Select("SecretHash", "SecretHint", "SecretRotatedAt", "UpdatedAt").Save(app).Error
	if err != nil {
		return nil, "", err
	}
	clearCatalogs(db)
	return app, secret, nil
}

func (a *App) setSecret() string {
	secret := "sk_" + randomToken(32)
	a.SecretHash = hashSecret(secret)
	a.SecretHint = secret[:9]
	a.SecretRotatedAt = Now()
	return secret
}

// SecretMatches reports in constant time whether secret is the app's current key.
func (a *App) SecretMatches(secret string) bool {
	return subtle.ConstantTimeCompare([]byte(hashSecret(secret)), []byte(a.SecretHash)) == 1
}

// OriginAllowed reports whether a browser at origin may trigger this app's
// events. Requests without an Origin header come from servers or tools, not
// browsers; an app with no allowed origins accepts any, unless entries were
// set aside: those matched no browser before, and an app whose every entry
// was one refused every browser, which it keeps doing until its owner sets
// the list.
func (a *App) OriginAllowed(origin string) bool {
	if origin == "" || len(a.AllowedOrigins) == 0 && len(a.SetAsideOrigins) == 0 {
		return true
	}
	return slices.Contains(a.AllowedOrigins, strings.ToLower(origin))
}

// SetAsideOrigin is an entry of an app's allowed origins that no browser can
// send, with why.
type SetAsideOrigin struct {
	Entry  string
	Reason string
}

// SetAside lists the app's set-aside origin entries with the reason each
// can never match, as the check on save words it.
func (a *App) SetAside() []*SetAsideOrigin {
	out := make([]*SetAsideOrigin, 0, len(a.SetAsideOrigins))
	for _, entry := range a.SetAsideOrigins {
		reason := "no browser sends it in its Origin header"
		var invalid *InvalidError
		if _, err := normalizeOrigin(entry); errors.As(err, &invalid) {
			reason = invalid.Message
		}
		out = append(out, &SetAsideOrigin{Entry: entry, Reason: reason})
	}
	return out
}

// Secrets carry 160 bits of entropy, so a fast hash is enough: it is not a password.
func hashSecret(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

var tokenEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// randomToken returns n crypto-random characters of [a-z2-7].
func randomToken(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return tokenEncoding.EncodeToString(b)[:n]
}

// AppByPublicID returns the app with this public appId; a deleted app is
// not found.
func AppByPublicID(ctx context.Context, db *gorm.DB, publicID string) (*App, error) {
	var app App
	err := db.WithContext(ctx).Where("public_id = ? AND deleted_at IS NULL", publicID).Take(&app).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, newError(ErrNotFound, "app not found")
	}
	return &app, err
}

// Apps lists the apps the signed-in user is a member of, oldest first.
func Apps(ctx context.Context, db *gorm.DB, v Viewer) ([]*App, error) {
	userID, err := v.RequireUser()
	if err != nil {
		return nil, err
	}
	var apps []*App
	err = db.WithContext(ctx).Where("deleted_at IS NULL AND id IN (?)", db.Model(&Membership{}).Select("app_id").Where("user_id = ?", userID)).
		Order("id").Find(&apps).Error
	return apps, err
}

// CheckAppKey returns the app if the request presented its current secret
// key, so a server can test its configuration.
func CheckAppKey(ctx context.Context, db *gorm.DB, v Viewer, publicID string) (*App, error) {
	if v.Secret == "" {
		return nil, newError(ErrUnauthenticated, "send the secret key as Authorization: Bearer <key>")
	}
	return Viewer{Secret: v.Secret}.App(ctx, db, publicID, RoleViewer)
}

// AppsByID loads apps by internal id, for dataloaders.
func AppsByID(ctx context.Context, db *gorm.DB, ids []uint64) (map[uint64]*App, error) {
	return loadByID(ctx, db, ids, func(a *App) uint64 { return a.ID })
}

// truncate cuts s to at most n bytes and marks the cut with "…". It cuts
// between characters: a delivery's error text cut inside one was not
// UTF-8, which MySQL refuses to store.
// checkName trims a name of an app, definition, matcher, goal or rule and
// refuses it empty, over 200 characters or with control characters: names
// are shown in lists and referenced by goals and rules, where "plan\x00"
// would pass for "plan".
func checkName(name string) (string, error) {
	name = strings.TrimSpace(name)
	if name == "" || utf8.RuneCountInString(name) > 200 || strings.IndexFunc(name, unicode.IsControl) >= 0 {
		return "", Invalid("name", "must be 1 to 200 characters, without control characters")
	}
	return name, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
