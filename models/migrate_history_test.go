package models

import (
	"context"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-gormigrate/gormigrate/v2"
	"gorm.io/gorm"
)

// A database created by an early release and upgraded by every later one, a
// release at a time, must end up with the same schema as one created by the
// latest release: the same tables, columns, types, defaults, collations and
// indexes. The upgraded one holds data from the first release, so data
// migrations (the rollups backfill) run over real rows.
func TestUpgradeEqualsFresh(t *testing.T) {
	eachEmptyStore(t, func(t *testing.T, newURL func() string) {
		ctx := context.Background()
		fresh := openTestDB(t, newURL())
		if err := Migrate(ctx, fresh); err != nil {
			t.Fatal(err)
		}

		upgraded := openTestDB(t, newURL())
		collation := ""
		if isMySQL(upgraded) {
			var err error
			if collation, _, err = ExactCollation(ctx, upgraded); err != nil {
				t.Fatal(err)
			}
		}
		nopad := slices.IndexFunc(migrations, func(m *gormigrate.Migration) bool { return m.ID == "2026120201_nopad_collation" })
		for i, m := range migrations {
			// The binary of release i knows the migrations up to its own,
			// and releases before the NO PAD migration made utf8mb4_bin tables.
			c := collation
			if i < nopad && isMySQL(upgraded) {
				c = padSpaceCollation
			}
			if err := newMigrator(upgraded.WithContext(ctx), c, migrations[:i+1]).Migrate(); err != nil {
				t.Fatalf("upgrade to %s: %v", m.ID, err)
			}
			if i == 0 {
				seedFirstRelease(t, upgraded)
			}
		}
		if err := Migrate(ctx, upgraded); err != nil { // nothing left to do
			t.Fatal(err)
		}

		want, err := dumpSchema(ctx, fresh)
		if err != nil {
			t.Fatal(err)
		}
		got, err := dumpSchema(ctx, upgraded)
		if err != nil {
			t.Fatal(err)
		}
		if len(want) == 0 {
			t.Fatal("the fresh database has no schema")
		}
		if got != want {
			t.Fatalf("upgraded schema (+) differs from a fresh one (-):\n%s", diffLines(want, got))
		}

		var applied []string
		if err := upgraded.Table("migrations").Order("id").Pluck("id", &applied).Error; err != nil {
			t.Fatal(err)
		}
		if len(applied) != len(migrations) {
			t.Fatalf("applied %v, want the %d migrations", applied, len(migrations))
		}
		// The rollups backfill ran over the first release's events.
		var total int64
		if err := upgraded.Table("rollups").Where("kind = ? AND grain = ? AND definition_id = 0", kindDef, grainDay).
			Select("COALESCE(SUM(count), 0)").Scan(&total).Error; err != nil {
			t.Fatal(err)
		}
		if total != 5 {
			t.Fatalf("daily rollups count %d events, want the 5 stored before the upgrade", total)
		}
	})
}

// seedFirstRelease writes an app, a definition, a device and events in the
// schema of the first migration, with SQL of that time.
func seedFirstRelease(t *testing.T, db *gorm.DB) {
	t.Helper()
	at := time.Date(2026, 11, 1, 9, 0, 0, 0, time.UTC)
	exec := func(query string, args ...any) {
		t.Helper()
		if err := db.Exec(query, args...).Error; err != nil {
			t.Fatalf("%s: %v", query, err)
		}
	}
	exec(`INSERT INTO apps (id, public_id, name, allowed_origins, timezone, secret_hash, secret_hint, secret_rotated_at, created_at, updated_at)
		VALUES (1, 'app_first', 'First', '[]', 'UTC', 'hash', 'sk_…abcd', ?, ?, ?)`, at, at, at)
	exec(`INSERT INTO event_definitions (id, app_id, code, name, color, description, enabled, built_in, trigger_count, created_at, updated_at)
		VALUES (1, 1, 'view', 'View', '#000000', '', ?, ?, 5, ?, ?)`, true, true, at, at)
	exec(`INSERT INTO devices (app_id, device_id, user_agent, first_seen_at, last_seen_at) VALUES (1, 'd1', 'test', ?, ?)`, at, at)
	for i := range 5 {
		ts := at.Add(time.Duration(i) * 7 * time.Hour)
		exec(`INSERT INTO events (id, app_id, definition_id, device_id, message_id, url, referrer, title, properties, source, occurred_at, received_at)
			VALUES (?, 1, 1, 'd1', ?, 'https://x.example/p', '', '', '{}', 'js', ?, ?)`, 1000+i, fmt.Sprintf("m%d", i), ts, ts)
	}
}

// Migrations must not use the live model structs: those change with the
// code, and a migration that creates tables from them creates a different
// schema in every release. This reads the package's source and fails on any
// gorm model type named inside a migration.
func TestMigrationsUseSnapshots(t *testing.T) {
	fset := token.NewFileSet()
	names, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	var files []*ast.File
	for _, name := range names {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, f)
	}
	// The live models: package-level structs with gorm tags.
	models := map[string]bool{}
	for _, f := range files {
		for _, d := range f.Decls {
			gd, ok := d.(*ast.GenDecl)
			if !ok || gd.Tok != token.TYPE {
				continue
			}
			for _, spec := range gd.Specs {
				ts := spec.(*ast.TypeSpec)
				if st, ok := ts.Type.(*ast.StructType); ok && hasGormTag(st) {
					models[ts.Name.Name] = true
				}
			}
		}
	}
	if !models["Event"] || !models["App"] {
		t.Fatalf("found models %v; the test no longer recognises them", models)
	}
	found := 0
	for _, f := range files {
		ast.Inspect(f, func(n ast.Node) bool {
			lit, ok := n.(*ast.CompositeLit)
			if !ok || !isMigrationLit(lit) {
				return true
			}
			found++
			local := map[string]bool{}
			ast.Inspect(lit, func(n ast.Node) bool {
				if ts, ok := n.(*ast.TypeSpec); ok {
					local[ts.Name.Name] = true
				}
				return true
			})
			ast.Inspect(lit, func(n ast.Node) bool {
				if sel, ok := n.(*ast.SelectorExpr); ok {
					ast.Inspect(sel.X, func(n ast.Node) bool { return checkIdent(t, fset, n, models, local) })
					return false
				}
				return checkIdent(t, fset, n, models, local)
			})
			return false
		})
	}
	if found < len(migrations) {
		t.Fatalf("inspected %d migrations, the package has %d", found, len(migrations))
	}
}

func checkIdent(t *testing.T, fset *token.FileSet, n ast.Node, models, local map[string]bool) bool {
	if id, ok := n.(*ast.Ident); ok && models[id.Name] && !local[id.Name] {
		t.Errorf("%s: a migration uses the live model %s; give it a snapshot struct or SQL of its own", fset.Position(id.Pos()), id.Name)
	}
	return true
}

func hasGormTag(st *ast.StructType) bool {
	for _, f := range st.Fields.List {
		if f.Tag != nil && strings.Contains(f.Tag.Value, `gorm:"`) {
			return true
		}
	}
	return false
}

// isMigrationLit reports whether lit is a gormigrate.Migration, written out
// (&gormigrate.Migration{…}) or as an element of a []*gormigrate.Migration.
func isMigrationLit(lit *ast.CompositeLit) bool {
	for _, kv := range lit.Elts {
		if kv, ok := kv.(*ast.KeyValueExpr); ok {
			if k, ok := kv.Key.(*ast.Ident); ok && k.Name == "Migrate" {
				if _, ok := kv.Value.(*ast.FuncLit); ok {
					return true
				}
			}
		}
	}
	return false
}

// Three replicas starting together on an empty database: every one starts,
// each migration runs once, and the schema is the fresh one.
func TestReplicasMigrateTogether(t *testing.T) {
	for _, tc := range []struct {
		name string
		kind lockKind
	}{{"lock", lockAuto}, {"lockrow", lockRow}} {
		t.Run(tc.name, func(t *testing.T) {
			eachEmptyStore(t, func(t *testing.T, newURL func() string) {
				ctx := context.Background()
				fresh := openTestDB(t, newURL())
				if err := Migrate(ctx, fresh); err != nil {
					t.Fatal(err)
				}
				url := newURL()
				var replicas []*gorm.DB
				for range 3 {
					replicas = append(replicas, openTestDB(t, url)) // a pool each, like separate processes
				}
				errs := make(chan error, len(replicas))
				start := make(chan struct{})
				for _, db := range replicas {
					go func() {
						<-start
						errs <- migrate(ctx, db, tc.kind)
					}()
				}
				close(start)
				for range replicas {
					if err := <-errs; err != nil {
						t.Errorf("a replica failed to start: %v", err)
					}
				}
				if t.Failed() {
					return
				}
				var applied []string
				if err := replicas[0].Table("migrations").Order("id").Pluck("id", &applied).Error; err != nil {
					t.Fatal(err)
				}
				if len(applied) != len(migrations) {
					t.Fatalf("migrations table lists %v, want each of the %d migrations once", applied, len(migrations))
				}
				want, err := dumpSchema(ctx, fresh)
				if err != nil {
					t.Fatal(err)
				}
				got, err := dumpSchema(ctx, replicas[0])
				if err != nil {
					t.Fatal(err)
				}
				// The lock row's table is the lock, not the schema.
				got = strings.Join(slices.DeleteFunc(strings.Split(got, "\n"), func(l string) bool {
					return strings.Contains(l, "| migration_lock |") || strings.HasSuffix(l, "| migration_lock")
				}), "\n")
				if got != want {
					t.Fatalf("schema after a concurrent start (+) differs from a fresh one (-):\n%s", diffLines(want, got))
				}
			})
		})
	}
}
