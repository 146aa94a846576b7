package models

import (
	"context"
	"fmt"
	"time"

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
	{
		ID: "2026112302_users",
		Migrate: func(tx *gorm.DB) error {
			type User struct {
				ID           uint64    `gorm:"primaryKey"`
				Email        string    `gorm:"size:254;not null"`
				EmailKey     string    `gorm:"size:254;not null;uniqueIndex"`
				Name         string    `gorm:"size:200;not null"`
				PasswordHash string    `gorm:"size:100;not null"`
				CreatedAt    time.Time `gorm:"not null"`
				UpdatedAt    time.Time `gorm:"not null"`
			}
			type Membership struct {
				AppID     uint64    `gorm:"primaryKey;autoIncrement:false"`
				UserID    uint64    `gorm:"primaryKey;autoIncrement:false;index"`
				Role      string    `gorm:"size:16;not null"`
				CreatedAt time.Time `gorm:"not null"`
			}
			type Invitation struct {
				ID        uint64    `gorm:"primaryKey"`
				AppID     uint64    `gorm:"not null;index"`
				Email     string    `gorm:"size:254;not null"`
				Role      string    `gorm:"size:16;not null"`
				TokenHash string    `gorm:"size:64;not null;uniqueIndex"`
				ExpiresAt time.Time `gorm:"not null"`
				CreatedAt time.Time `gorm:"not null"`
			}
			type RefreshToken struct {
				ID        uint64     `gorm:"primaryKey"`
				UserID    uint64     `gorm:"not null;index"`
				FamilyID  string     `gorm:"size:32;not null;index"`
				TokenHash string     `gorm:"size:64;not null;uniqueIndex"`
				ExpiresAt time.Time  `gorm:"not null"`
				RevokedAt *time.Time `gorm:"index"`
				CreatedAt time.Time  `gorm:"not null"`
			}
			return tx.Migrator().CreateTable(&User{}, &Membership{}, &Invitation{}, &RefreshToken{})
		},
		Rollback: func(tx *gorm.DB) error {
			return tx.Migrator().DropTable("refresh_tokens", "invitations", "memberships", "users")
		},
	},
}
