package models

import (
	"context"
	"errors"
	"net/mail"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// Lead is an identified person, by email, in one app. It owns one or more devices.
type Lead struct {
	ID        uint64     `gorm:"primaryKey"`
	AppID     uint64     `gorm:"not null;uniqueIndex:idx_leads_app_email,priority:1"`
	Email     string     `gorm:"size:254;not null"`
	EmailKey  string     `gorm:"size:254;not null;uniqueIndex:idx_leads_app_email,priority:2"`
	Name      *string    `gorm:"size:200"`
	Fields    JSONObject `gorm:"type:text;not null"`
	CreatedAt time.Time  `gorm:"not null"`
	UpdatedAt time.Time  `gorm:"not null"`
}

// IdentifyInput attaches a device to the lead with Email.
type IdentifyInput struct {
	AppPublicID string
	DeviceID    string
	Email       string
	Name        *string
	Fields      map[string]any
	UserAgent   string
	// Secret and Origin: identifying by email needs the app's secret key,
	// or a browser (an Origin header) on one of the app's allowed origins.
	Secret string
	Origin string
	// Credential is why a credential the request presented other than a
	// secret key was refused, as in TriggerInput.
	Credential error
	// ClientIP is the sender's address, for per-IP rate limits.
	ClientIP string
	// Verified says the caller proved another way that it acts for the app
	// (an ingest token): it is treated as holding the secret key.
	Verified bool
	// Limits are the per-IP and per-device limits the request is under
	// (the writer's, shared with triggers); nil means none.
	Limits *RateLimits
}

// IdentifyResult is what Identify did.
type IdentifyResult struct {
	Lead   *Lead
	Device *Device
	Moved  bool
}

// maxFieldsBytes bounds a lead's fields as JSON, after merging.
const maxFieldsBytes = 8 << 10

// maxKeylessFieldsBytes bounds how far an identify without the secret key
// (a browser's) may grow a lead's fields, so that half the room always
// stays for the app's servers.
const maxKeylessFieldsBytes = 4 << 10

// NormalizeEmail validates an email address to store and returns it with
// its lookup key.
func NormalizeEmail(raw string) (email, key string, err error) {
	email, key, err = lookupEmail(raw)
	if err == nil && holdsInvisible(email) {
		return "", "", Invalid("email", "is not a valid email address: it holds an invisible or formatting character")
	}
	return email, key, err
}

// lookupEmail is NormalizeEmail for finding what is stored: it takes the
// addresses with invisible characters that were stored before those were
// refused, so that their leads stay found, exported and erased.
func lookupEmail(raw string) (email, key string, err error) {
	email = strings.TrimSpace(raw)
	addr, perr := mail.ParseAddress(email)
	if perr != nil || addr.Address != email || len(email) > 254 || strings.IndexFunc(email, asciiInDisguise) >= 0 {
		return "", "", Invalid("email", "is not a valid email address")
	}
	return email, strings.ToLower(email), nil
}

// holdsInvisible reports whether an address holds a character that shows
// nothing or reorders the text around it (format characters such as U+200B
// ZERO WIDTH SPACE, the soft hyphen and U+202E; private-use, unassigned and
// non-ASCII space characters): an address holding one shows as another
// address while having its own key, so a look-alike lead would hide from
// look-ups and erasure of the address it shows. The one exception is a
// joiner after a virama (RFC 5892's CONTEXTJ rule for internationalised
// domain names): in Devanagari and the other Indic scripts U+200C and
// U+200D choose how the consonants around them are drawn, a visible
// difference that addresses in those scripts need.
func holdsInvisible(email string) bool {
	prev := rune(-1)
	for _, r := range email {
		if !unicode.IsPrint(r) && !(isJoiner(r) && prev >= 0 && norm.NFD.PropertiesString(string(prev)).CCC() == viramaClass) {
			return true
		}
		prev = r
	}
	return false
}

// viramaClass is the canonical combining class of the virama signs.
const viramaClass = 9

// isJoiner reports U+200C ZERO WIDTH NON-JOINER and U+200D ZERO WIDTH JOINER.
func isJoiner(r rune) bool { return r == '\u200c' || r == '\u200d' }

// asciiInDisguise reports a letter outside ASCII whose lowercase is ASCII
// (the Kelvin sign K, the dotted capital İ): an address holding one has
// the key of an ASCII address, and a lead made with it first would show
// that look-alike spelling as the real address's email.
func asciiInDisguise(r rune) bool {
	return r >= utf8.RuneSelf && unicode.ToLower(r) < utf8.RuneSelf
}

// forUpdate locks the selected rows on MySQL; SQLite's write transactions
// are already exclusive.
func forUpdate(tx *gorm.DB) *gorm.DB {
	if isMySQL(tx) {
		return tx.Clauses(clause.Locking{Strength: "UPDATE"})
	}
	return tx
}

// LeadByID returns one lead, if the viewer may see its app.
func LeadByID(ctx context.Context, db *gorm.DB, v Viewer, id string) (*Lead, error) {
	return viewByID(ctx, db, v, id, RoleViewer, "lead", func(l *Lead) uint64 { return l.AppID })
}

// LeadByEmail returns the lead of the app with this email, case-insensitively,
// or nil when there is none.
func LeadByEmail(ctx context.Context, db *gorm.DB, v Viewer, appPublicID, email string) (*Lead, error) {
	app, err := v.App(ctx, db, appPublicID, RoleViewer)
	if err != nil {
		return nil, err
	}
	_, key, err := lookupEmail(email)
	if err != nil {
		return nil, err
	}
	var lead Lead
	err = db.WithContext(ctx).Where("app_id = ? AND email_key = ?", app.ID, key).Take(&lead).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, nil
	}
	return &lead, err
}

// LeadsByID loads leads by id, for dataloaders.
func LeadsByID(ctx context.Context, db *gorm.DB, ids []uint64) (map[uint64]*Lead, error) {
	return loadByID(ctx, db, ids, func(l *Lead) uint64 { return l.ID })
}

// LeadPage is one page of leads, newest first.
type LeadPage struct {
	Leads       []*Lead
	HasNextPage bool
}

// Leads lists an app's leads, newest first; search matches email or name.
func Leads(ctx context.Context, db *gorm.DB, v Viewer, appPublicID, search string, first int, after string) (*LeadPage, error) {
	app, err := v.App(ctx, db, appPublicID, RoleViewer)
	if err != nil {
		return nil, err
	}
	if err := checkFirst(first); err != nil {
		return nil, err
	}
	q := db.WithContext(ctx).Where("app_id = ?", app.ID)
	if after != "" {
		id, err := ParseID("after", after)
		if err != nil {
			return nil, err
		}
		q = q.Where("id < ?", id)
	}
	if s := strings.TrimSpace(search); s != "" {
		// Characters, not bytes: a name holds 200 characters, up to 800
		// bytes, and a search for the whole of one must be taken.
		if utf8.RuneCountInString(s) > 254 {
			return nil, Invalid("search", "must be at most 254 characters")
		}
		pattern := "%" + escapeLike(strings.ToLower(s)) + "%"
		d, err := dialectOf(db.WithContext(ctx))
		if err != nil {
			return nil, err
		}
		if d.mysql {
			q = q.Where("(email_key LIKE ? ESCAPE '!' OR "+d.lower("name")+" LIKE ? ESCAPE '!')", pattern, pattern)
		} else {
			// SQLite's LOWER folds ASCII only: "émile" missed Émile
			// (email keys are folded already).
			q = q.Where("(email_key LIKE ? ESCAPE '!' OR crumbs_text_match(?, name, ?))", pattern, OpContains, s)
		}
	}
	var leads []*Lead
	if err := q.Order("id DESC").Limit(first + 1).Find(&leads).Error; err != nil {
		return nil, err
	}
	page := &LeadPage{Leads: leads}
	if len(leads) > first {
		page.Leads, page.HasNextPage = leads[:first], true
	}
	return page, nil
}

func escapeLike(s string) string {
	return strings.NewReplacer("!", "!!", "%", "!%", "_", "!_").Replace(s)
}

// MaxPageSize is the largest first that timelines, leads, the event
// browser, unknown codes and refused origins accept.
const MaxPageSize = 500

func checkFirst(first int) error {
	if first < 1 || first > MaxPageSize {
		return Invalid("first", "must be between 1 and %d", MaxPageSize)
	}
	return nil
}

// LeadStats summarizes a lead's activity over all its devices.
type LeadStats struct {
	EventCount  int64
	FirstSeenAt *time.Time
	LastSeenAt  *time.Time
}

// LeadStatsByID computes the stats of each lead, for dataloaders.
func LeadStatsByID(ctx context.Context, db *gorm.DB, ids []uint64) (map[uint64]*LeadStats, error) {
	rows, err := db.WithContext(ctx).Table("devices AS d").
		Select("d.lead_id, COUNT(e.id), MIN(e.occurred_at), MAX(e.occurred_at)").
		Joins("JOIN events AS e ON e.app_id = d.app_id AND e.device_id = d.device_id").
		Where("d.lead_id IN ?", ids).Group("d.lead_id").Rows()
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := make(map[uint64]*LeadStats, len(ids))
	for rows.Next() {
		var id uint64
		var s LeadStats
		var first, last dbTime
		if err := rows.Scan(&id, &s.EventCount, &first, &last); err != nil {
			return nil, err
		}
		s.FirstSeenAt, s.LastSeenAt = first.ptr(), last.ptr()
		out[id] = &s
	}
	return out, rows.Err()
}
