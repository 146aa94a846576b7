package models

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-gormigrate/gormigrate/v2"
	"gorm.io/gorm"
)

// Stored entries become what normalizeOrigin saves, each once; entries it
// would refuse are set aside as stored, each once.
func TestSplitAllowedOrigins(t *testing.T) {
	for _, c := range []struct {
		stored, allowed, setAside []string
	}{
		{nil, []string{}, []string{}},
		{[]string{"https://example.com"}, []string{"https://example.com"}, []string{}},
		{
			[]string{"https://example.com:443", "https://example.com", "http://shop.example.com:80", "https://blog.example.com.", "https://blog.example.com"},
			[]string{"https://example.com", "http://shop.example.com", "https://blog.example.com"}, []string{},
		},
		{
			[]string{"https://*.example.com", "https://a.example", "https://bücher.example", "https://*.example.com", "https://a.example:443"},
			[]string{"https://a.example"}, []string{"https://*.example.com", "https://bücher.example"},
		},
		{[]string{"*", "https://example.com:0"}, []string{}, []string{"*", "https://example.com:0"}},
	} {
		allowed, setAside := splitAllowedOrigins(c.stored)
		if !slices.Equal(allowed, c.allowed) || !slices.Equal(setAside, c.setAside) {
			t.Errorf("splitAllowedOrigins(%q) = %q, %q; want %q, %q", c.stored, allowed, setAside, c.allowed, c.setAside)
		}
	}
}

// Migration 2026120410_allowed_origins over apps saved by releases that
// stored entries as given: lists rewritten as browsers send Origin, entries
// no browser sends set aside and shown with why, an app left with only such
// entries still refusing every browser; lists already in form untouched.
func TestMigrateAllowedOrigins(t *testing.T) {
	eachEmptyStore(t, func(t *testing.T, newURL func() string) {
		ctx := context.Background()
		db := migratedUpTo(t, newURL(), "2026120410_allowed_origins")
		at := time.Date(2026, 11, 1, 9, 0, 0, 0, time.UTC)
		for i, origins := range []string{
			`["https://example.com:443","https://example.com","http://shop.example.com:80","https://blog.example.com.","https://*.example.com","https://*.example.com","https://bücher.example"]`,
			`["https://*.example.com"]`,
			`["https://example.com"]`,
			`[]`,
			`not a list`,
		} {
			insertOldApp(t, db, uint64(i+1), origins, at)
		}
		if err := Migrate(ctx, db); err != nil {
			t.Fatal(err)
		}

		mixed := appRow(t, db, "app_1")
		if want := []string{"https://example.com", "http://shop.example.com", "https://blog.example.com"}; !slices.Equal(mixed.AllowedOrigins, want) {
			t.Fatalf("app 1 allows %q, want %q", mixed.AllowedOrigins, want)
		}
		setAside := mixed.SetAside()
		if len(setAside) != 2 || setAside[0].Entry != "https://*.example.com" || !strings.Contains(setAside[0].Reason, "no wildcard") ||
			setAside[1].Entry != "https://bücher.example" || !strings.Contains(setAside[1].Reason, "punycode") {
			t.Fatalf("app 1 set aside %+v %+v", setAside[0], setAside[1:])
		}
		for origin, want := range map[string]bool{"https://example.com": true, "https://EXAMPLE.com": true, "http://shop.example.com": true,
			"https://blog.example.com": true, "https://shop.example.com": false, "": true} {
			if got := mixed.OriginAllowed(origin); got != want {
				t.Errorf("app 1 OriginAllowed(%q) = %v, want %v", origin, got, want)
			}
		}
		if !mixed.UpdatedAt.Equal(at) {
			t.Errorf("app 1 updated_at %s: the migration is no edit", mixed.UpdatedAt)
		}

		// Only entries no browser sends: it refused every browser and still does.
		wildcard := appRow(t, db, "app_2")
		if len(wildcard.AllowedOrigins) != 0 || !slices.Equal(wildcard.SetAsideOrigins, StringList{"https://*.example.com"}) {
			t.Fatalf("app 2: %q, set aside %q", wildcard.AllowedOrigins, wildcard.SetAsideOrigins)
		}
		if wildcard.OriginAllowed("https://shop.example.com") || wildcard.OriginAllowed("https://evil.example") || !wildcard.OriginAllowed("") {
			t.Fatal("app 2 must refuse every browser origin, as before the migration")
		}
		var raw []struct {
			AllowedOrigins  string
			SetAsideOrigins *string
		}
		if err := db.Table("apps").Select("allowed_origins, set_aside_origins").Order("id").Scan(&raw).Error; err != nil {
			t.Fatal(err)
		}
		for i, want := range []string{`["https://example.com"]`, `[]`, `not a list`} {
			if r := raw[i+2]; r.AllowedOrigins != want || r.SetAsideOrigins != nil {
				t.Errorf("app %d: %q, set aside %v; want it untouched", i+3, r.AllowedOrigins, r.SetAsideOrigins)
			}
		}

		// Run again (as after a run cut short on MySQL, whose DDL is not
		// rolled back): it finds the column and changes nothing.
		again := migrations[slices.IndexFunc(migrations, func(m *gormigrate.Migration) bool { return m.ID == "2026120410_allowed_origins" })]
		if err := again.Migrate(db); err != nil {
			t.Fatal(err)
		}
		if app := appRow(t, db, "app_1"); !slices.Equal(app.AllowedOrigins, mixed.AllowedOrigins) || !slices.Equal(app.SetAsideOrigins, mixed.SetAsideOrigins) {
			t.Fatalf("app 1 after running again: %q, set aside %q", app.AllowedOrigins, app.SetAsideOrigins)
		}

		// The owner's list replaces the set-aside entries; other edits keep them.
		owner, err := CreateUser(ctx, db, "owner@example.com", "", "correct horse battery")
		if err != nil {
			t.Fatal(err)
		}
		if err := db.Create(&Membership{AppID: 2, UserID: owner.ID, Role: RoleOwner}).Error; err != nil {
			t.Fatal(err)
		}
		v := Viewer{UserID: owner.ID}
		name := "Renamed"
		if app, err := UpdateApp(ctx, db, v, "app_2", AppInput{Name: &name}); err != nil || len(app.SetAsideOrigins) != 1 || app.OriginAllowed("https://x.example") {
			t.Fatalf("rename: %+v, %v", app, err)
		}
		app, err := UpdateApp(ctx, db, v, "app_2", AppInput{AllowedOrigins: []string{"https://shop.example.com"}})
		if err != nil || len(app.SetAside()) != 0 || !app.OriginAllowed("https://shop.example.com") {
			t.Fatalf("set the list: %+v, %v", app, err)
		}
		if app := appRow(t, db, "app_2"); len(app.SetAsideOrigins) != 0 || !slices.Equal(app.AllowedOrigins, StringList{"https://shop.example.com"}) {
			t.Fatalf("stored after setting the list: %q, set aside %q", app.AllowedOrigins, app.SetAsideOrigins)
		}

		// A replica of the previous release creates apps without the column.
		insertOldApp(t, db, 9, `["https://old.example"]`, at)
		if old := appRow(t, db, "app_9"); len(old.SetAside()) != 0 || !old.OriginAllowed("https://old.example") || old.OriginAllowed("https://x.example") {
			t.Fatalf("app of the previous release: %+v", old)
		}
	})
}

// A list saved by another replica while the migration runs is the newer
// one, normalised on save: the migration leaves it as it is.
func TestMigrateAllowedOriginsKeepsConcurrentSave(t *testing.T) {
	eachEmptyStore(t, func(t *testing.T, newURL func() string) {
		url := newURL()
		db := migratedUpTo(t, url, "2026120410_allowed_origins")
		if err := db.Table("apps").Migrator().AddColumn(&struct {
			SetAsideOrigins *string `gorm:"type:text"`
		}{}, "SetAsideOrigins"); err != nil {
			t.Fatal(err)
		}
		insertOldApp(t, db, 1, `["https://example.com:443","https://*.example.com"]`, time.Now())
		other := openTestDB(t, url)
		var once sync.Once
		err := db.Callback().Update().Before("gorm:update").Register("test:concurrent_save", func(tx *gorm.DB) {
			once.Do(func() {
				if err := other.Exec(`UPDATE apps SET allowed_origins = '["https://saved.example"]' WHERE id = 1`).Error; err != nil {
					t.Error(err)
				}
			})
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := rewriteAllowedOrigins(db); err != nil {
			t.Fatal(err)
		}
		if app := appRow(t, other, "app_1"); !slices.Equal(app.AllowedOrigins, StringList{"https://saved.example"}) || len(app.SetAsideOrigins) != 0 {
			t.Fatalf("after a concurrent save: %q, set aside %q", app.AllowedOrigins, app.SetAsideOrigins)
		}
	})
}

// migratedUpTo opens an empty database and runs the migrations before id.
func migratedUpTo(t *testing.T, url, id string) *gorm.DB {
	t.Helper()
	db := openTestDB(t, url)
	collation := ""
	if isMySQL(db) {
		var err error
		if collation, _, err = ExactCollation(context.Background(), db); err != nil {
			t.Fatal(err)
		}
	}
	i := slices.IndexFunc(migrations, func(m *gormigrate.Migration) bool { return m.ID == id })
	if i < 0 {
		t.Fatalf("no migration %s", id)
	}
	if err := newMigrator(db, collation, migrations[:i]).Migrate(); err != nil {
		t.Fatal(err)
	}
	return db
}

// insertOldApp writes an app as releases before 2026120409 did, named app_<id>.
func insertOldApp(t *testing.T, db *gorm.DB, id uint64, origins string, at time.Time) {
	t.Helper()
	err := db.Exec(`INSERT INTO apps (id, public_id, name, allowed_origins, timezone, secret_hash, secret_hint, secret_rotated_at, created_at, updated_at)
		VALUES (?, ?, 'Old', ?, 'UTC', 'hash', 'sk_…abcd', ?, ?, ?)`, id, "app_"+FormatID(id), origins, at, at, at).Error
	if err != nil {
		t.Fatal(err)
	}
}

func appRow(t *testing.T, db *gorm.DB, publicID string) *App {
	t.Helper()
	// Read as stored, not through AppByPublicID: these stores are migrated
	// only up to the origins' migrations, before apps had deleted_at.
	var app App
	if err := db.Where("public_id = ?", publicID).Take(&app).Error; err != nil {
		t.Fatal(err)
	}
	return &app
}
