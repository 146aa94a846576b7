package models

import (
	"context"
	"fmt"

	"github.com/go-gormigrate/gormigrate/v2"
	"gorm.io/gorm"
)

// Migrate brings the schema up to date with versioned migrations; each runs
// once and is recorded in the migrations table.
//
// Migrations after the first must not use the live model structs: they
// describe the schema at their own point in time.
func Migrate(ctx context.Context, db *gorm.DB) error {
	db = db.WithContext(ctx)
	if isMySQL(db) {
		db = db.Set("gorm:table_options", "ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin").Session(&gorm.Session{})
	}
	m := gormigrate.New(db, &gormigrate.Options{
		TableName:                 "migrations",
		IDColumnName:              "id",
		IDColumnSize:              64,
		UseTransaction:            !isMySQL(db), // MySQL DDL commits implicitly
		ValidateUnknownMigrations: false,        // older replicas keep running during a rolling upgrade
	}, migrations)
	if err := m.Migrate(); err != nil {
		return fmt.Errorf("migrate database: %w", err)
	}
	return nil
}

var migrations = []*gormigrate.Migration{
	{
		ID: "2026112301_initial",
		Migrate: func(tx *gorm.DB) error {
			return tx.Migrator().CreateTable(
				&App{}, &EventDefinition{}, &Device{}, &DeviceMove{},
				&Lead{}, &Event{}, &UnknownCode{},
			)
		},
		Rollback: func(tx *gorm.DB) error {
			return tx.Migrator().DropTable("unknown_codes", "events", "leads", "device_moves", "devices", "event_definitions", "apps")
		},
	},
}
