package models

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/go-gormigrate/gormigrate/v2"
	"gorm.io/gorm"
)

// Migrate brings the schema up to date with versioned migrations; each runs
// once and is recorded in the migrations table.
//
// Every migration describes the schema at its own point in time, with
// snapshot structs or SQL of its own, never the live model structs: a
// database upgraded step by step must equal a fresh one
// (TestUpgradeEqualsFresh).
//
// Replicas starting together are safe: one migrates while the others wait
// for its lock (migrate_lock.go), then find nothing left to do.
func Migrate(ctx context.Context, db *gorm.DB) error {
	return migrate(ctx, db, lockAuto)
}

func migrate(ctx context.Context, db *gorm.DB, kind lockKind) error {
	// Schema changes and backfills may take minutes on a large database, and
	// so may waiting for another replica's migrations.
	db, closeDB, err := unbounded(ctx, db)
	if err != nil {
		return fmt.Errorf("migrate database: %w", err)
	}
	defer closeDB()
	ctx = WithoutDeadline(ctx)
	db = db.WithContext(ctx)
	collation := ""
	if isMySQL(db) {
		var exact bool
		var err error
		if collation, exact, err = ExactCollation(ctx, db); err != nil {
			return fmt.Errorf("migrate database: %w", err)
		}
		if !exact {
			slog.Warn("the database server has no NO PAD binary collation (utf8mb4_nopad_bin or utf8mb4_0900_bin): " +
				"identifiers that differ only in trailing spaces collide")
		}
	}
	unlock, err := lockMigrations(ctx, db, kind)
	if err != nil {
		return fmt.Errorf("migrate database: %w", err)
	}
	defer unlock()
	if err := newMigrator(db, collation, migrations).Migrate(); err != nil {
		return fmt.Errorf("migrate database: %w", err)
	}
	return nil
}

// newMigrator runs the given migrations, in order, on db; on MySQL, tables
// are created with collation.
func newMigrator(db *gorm.DB, collation string, list []*gormigrate.Migration) *gormigrate.Gormigrate {
	if isMySQL(db) {
		db = db.Set("gorm:table_options", "ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE="+collation).
			Set(collationKey, collation).Session(&gorm.Session{})
	}
	return gormigrate.New(db, &gormigrate.Options{
		TableName:                 "migrations",
		IDColumnName:              "id",
		IDColumnSize:              64,
		UseTransaction:            !isMySQL(db), // MySQL DDL commits implicitly
		ValidateUnknownMigrations: false,        // older replicas keep running during a rolling upgrade
	}, list)
}

// collationKey carries the tables' collation to the migrations.
const collationKey = "crumbs:collation"

var migrations = []*gormigrate.Migration{
	{
		ID: "2026112301_initial",
		Migrate: func(tx *gorm.DB) error {
			// Snapshots of the models at this migration: the live structs
			// change, this schema must not.
			type app struct {
				ID              uint64    `gorm:"primaryKey"`
				PublicID        string    `gorm:"size:32;not null;uniqueIndex:idx_apps_public_id"`
				Name            string    `gorm:"size:200;not null"`
				AllowedOrigins  string    `gorm:"type:text;not null"`
				Timezone        string    `gorm:"size:64;not null"`
				SecretHash      string    `gorm:"size:64;not null"`
				SecretHint      string    `gorm:"size:16;not null"`
				SecretRotatedAt time.Time `gorm:"not null"`
				CreatedAt       time.Time `gorm:"not null"`
				UpdatedAt       time.Time `gorm:"not null"`
			}
			type eventDefinition struct {
				ID               uint64 `gorm:"primaryKey"`
				AppID            uint64 `gorm:"not null;uniqueIndex:idx_event_definitions_app_code,priority:1"`
				Code             string `gorm:"size:64;not null;uniqueIndex:idx_event_definitions_app_code,priority:2"`
				Name             string `gorm:"size:200;not null"`
				Color            string `gorm:"size:7;not null"`
				Description      string `gorm:"size:2000;not null"`
				Enabled          bool   `gorm:"not null"`
				BuiltIn          bool   `gorm:"not null"`
				TriggerCount     int64  `gorm:"not null;default:0"`
				FirstTriggeredAt *time.Time
				LastTriggeredAt  *time.Time
				CreatedAt        time.Time `gorm:"not null"`
				UpdatedAt        time.Time `gorm:"not null"`
			}
			type device struct {
				AppID       uint64    `gorm:"primaryKey;autoIncrement:false;index:idx_devices_app_lead,priority:1"`
				DeviceID    string    `gorm:"primaryKey;size:128"`
				LeadID      *uint64   `gorm:"index:idx_devices_app_lead,priority:2"`
				UserAgent   string    `gorm:"size:512;not null"`
				FirstSeenAt time.Time `gorm:"not null"`
				LastSeenAt  time.Time `gorm:"not null"`
			}
			type deviceMove struct {
				ID         uint64    `gorm:"primaryKey"`
				AppID      uint64    `gorm:"not null;index:idx_device_moves_app_device,priority:1"`
				DeviceID   string    `gorm:"size:128;not null;index:idx_device_moves_app_device,priority:2"`
				FromLeadID *uint64   `gorm:"index:idx_device_moves_from_lead_id"`
				ToLeadID   uint64    `gorm:"not null;index:idx_device_moves_to_lead_id"`
				MovedAt    time.Time `gorm:"not null"`
			}
			type lead struct {
				ID        uint64    `gorm:"primaryKey"`
				AppID     uint64    `gorm:"not null;uniqueIndex:idx_leads_app_email,priority:1"`
				Email     string    `gorm:"size:254;not null"`
				EmailKey  string    `gorm:"size:254;not null;uniqueIndex:idx_leads_app_email,priority:2"`
				Name      *string   `gorm:"size:200"`
				Fields    string    `gorm:"type:text;not null"`
				CreatedAt time.Time `gorm:"not null"`
				UpdatedAt time.Time `gorm:"not null"`
			}
			type event struct {
				ID           uint64    `gorm:"primaryKey;autoIncrement:false"`
				AppID        uint64    `gorm:"not null;uniqueIndex:idx_events_app_message,priority:1;index:idx_events_app_device_time,priority:1;index:idx_events_app_time,priority:1"`
				DefinitionID uint64    `gorm:"not null;index:idx_events_definition_time,priority:1"`
				DeviceID     string    `gorm:"size:128;not null;index:idx_events_app_device_time,priority:2"`
				MessageID    *string   `gorm:"size:128;uniqueIndex:idx_events_app_message,priority:2"`
				URL          string    `gorm:"size:2048;not null"`
				Referrer     string    `gorm:"size:2048;not null"`
				Title        string    `gorm:"size:512;not null"`
				Properties   string    `gorm:"type:text;not null"`
				Source       string    `gorm:"size:16;not null"`
				OccurredAt   time.Time `gorm:"not null;index:idx_events_app_device_time,priority:3;index:idx_events_app_time,priority:2;index:idx_events_definition_time,priority:2"`
				ReceivedAt   time.Time `gorm:"not null"`
			}
			type unknownCode struct {
				AppID       uint64    `gorm:"primaryKey;autoIncrement:false"`
				Code        string    `gorm:"primaryKey;size:64"`
				Count       int64     `gorm:"not null"`
				FirstSeenAt time.Time `gorm:"not null"`
				LastSeenAt  time.Time `gorm:"not null;index:idx_unknown_codes_last_seen_at"`
			}
			return createTables(tx, []table{
				{"apps", &app{}}, {"event_definitions", &eventDefinition{}}, {"devices", &device{}},
				{"device_moves", &deviceMove{}}, {"leads", &lead{}}, {"events", &event{}}, {"unknown_codes", &unknownCode{}},
			})
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

	{
		ID: "2026112302_rollups",
		Migrate: func(tx *gorm.DB) error {
			// A snapshot of Rollup at this migration.
			type rollup struct {
				AppID        uint64    `gorm:"primaryKey;autoIncrement:false"`
				Kind         string    `gorm:"primaryKey;size:8"`
				Grain        int8      `gorm:"primaryKey;autoIncrement:false"`
				DefinitionID uint64    `gorm:"primaryKey;autoIncrement:false"`
				Bucket       time.Time `gorm:"primaryKey"`
				Dim          int64     `gorm:"primaryKey;autoIncrement:false"`
				Value        string    `gorm:"size:512;not null"`
				Count        int64     `gorm:"not null"`
				Sketch       []byte    `gorm:"type:blob"`
			}
			if err := tx.Table("rollups").Migrator().CreateTable(&rollup{}); err != nil {
				return err
			}
			return backfillRollups(tx)
		},
		Rollback: func(tx *gorm.DB) error { return tx.Migrator().DropTable("rollups") },
	},
	{
		ID: "2026112303_matchers_goals",
		Migrate: func(tx *gorm.DB) error {
			// Snapshots of EventMatcher and Goal at this migration.
			type eventMatcher struct {
				ID        uint64    `gorm:"primaryKey"`
				AppID     uint64    `gorm:"not null;uniqueIndex:idx_event_matchers_app_name,priority:1"`
				Name      string    `gorm:"size:200;not null;uniqueIndex:idx_event_matchers_app_name,priority:2"`
				Code      string    `gorm:"size:64;not null"`
				Rules     string    `gorm:"type:text;not null"`
				CreatedAt time.Time `gorm:"not null"`
				UpdatedAt time.Time `gorm:"not null"`
			}
			type goal struct {
				ID                  uint64    `gorm:"primaryKey"`
				AppID               uint64    `gorm:"not null;uniqueIndex:idx_goals_app_name,priority:1"`
				Name                string    `gorm:"size:200;not null;uniqueIndex:idx_goals_app_name,priority:2"`
				StartMatcherID      uint64    `gorm:"not null;index:idx_goals_start_matcher_id"`
				CompletionMatcherID uint64    `gorm:"not null;index:idx_goals_completion_matcher_id"`
				WindowSeconds       int64     `gorm:"not null"`
				CreatedAt           time.Time `gorm:"not null"`
				UpdatedAt           time.Time `gorm:"not null"`
			}
			if err := tx.Table("event_matchers").Migrator().CreateTable(&eventMatcher{}); err != nil {
				return err
			}
			return tx.Table("goals").Migrator().CreateTable(&goal{})
		},
		Rollback: func(tx *gorm.DB) error { return tx.Migrator().DropTable("goals", "event_matchers") },
	},
	{
		// Funnels read (device, time) of a few definitions' events; with the
		// device in the index they never touch the rows. Replacing the index
		// keeps the writer at the same number of index entries per event.
		ID: "2026112304_events_definition_covering",
		Migrate: func(tx *gorm.DB) error {
			// Two statements: older TiDB versions take one schema change per ALTER.
			if err := tx.Migrator().DropIndex("events", "idx_events_definition_time"); err != nil {
				return err
			}
			return tx.Exec("CREATE INDEX idx_events_definition_time ON events (definition_id, occurred_at, device_id)").Error
		},
		Rollback: func(tx *gorm.DB) error {
			if err := tx.Migrator().DropIndex("events", "idx_events_definition_time"); err != nil {
				return err
			}
			return tx.Exec("CREATE INDEX idx_events_definition_time ON events (definition_id, occurred_at)").Error
		},
	},
	{
		// The event log's consumers and slots (eventlog.go). The rollups
		// written so far, by the writer in its transactions or by the
		// backfill, cover every stored event: the rollups consumer starts
		// after the newest. Replicas of the previous release still write
		// rollups themselves, so stop them before starting this one. (It
		// comes before the NO PAD migration in this list, which converts
		// its tables too; gormigrate runs whichever has not run, in list
		// order, so databases that have the later ones get it too.)
		ID: "2026112501_event_log",
		Migrate: func(tx *gorm.DB) error {
			type eventLogConsumer struct {
				Name       string `gorm:"primaryKey;size:64"`
				Position   uint64 `gorm:"not null"`
				Generation uint64 `gorm:"not null"`
				LeaseOwner string `gorm:"size:64;not null"`
				LeaseUntil int64  `gorm:"not null"`
			}
			type eventLogSlot struct {
				Slot     int    `gorm:"primaryKey;autoIncrement:false"`
				SealedID uint64 `gorm:"not null"`
				Writes   uint64 `gorm:"not null"`
			}
			if err := tx.Table("event_log_consumers").Migrator().CreateTable(&eventLogConsumer{}); err != nil {
				return err
			}
			if err := tx.Table("event_log_slots").Migrator().CreateTable(&eventLogSlot{}); err != nil {
				return err
			}
			slots := make([]eventLogSlot, 32) // eventLogSlots at this migration
			for i := range slots {
				slots[i].Slot = i
			}
			if err := tx.Table("event_log_slots").Create(&slots).Error; err != nil {
				return err
			}
			var newest uint64
			if err := tx.Raw("SELECT COALESCE(MAX(id), 0) FROM events").Scan(&newest).Error; err != nil {
				return err
			}
			return tx.Table("event_log_consumers").Create(&eventLogConsumer{Name: "rollups", Position: newest}).Error
		},
		Rollback: func(tx *gorm.DB) error { return tx.Migrator().DropTable("event_log_slots", "event_log_consumers") },
	},
	{
		// Identifiers (messageId, deviceId, codes, public ids, email keys)
		// must compare exactly: utf8mb4_bin pads with spaces, so 'a' = 'a '
		// matched another trigger's messageId. Every text column moves to the
		// NO PAD collation; SQLite compares bytes already. This rewrites each
		// table once.
		ID:       "2026120201_nopad_collation",
		Migrate:  func(tx *gorm.DB) error { return convertCollation(tx) },
		Rollback: func(tx *gorm.DB) error { return nil },
	},
	{
		// Sign-ins: access tokens name theirs (claim sid), so ending one
		// stops its access tokens too. Chains still live get their row.
		ID: "2026120301_sign_ins",
		Migrate: func(tx *gorm.DB) error {
			type signIn struct {
				ID        string    `gorm:"primaryKey;size:32"`
				UserID    uint64    `gorm:"not null;index:idx_sign_ins_user_id"`
				CreatedAt time.Time `gorm:"not null"`
				RevokedAt *time.Time
			}
			if err := tx.Table("sign_ins").Migrator().CreateTable(&signIn{}); err != nil {
				return err
			}
			return tx.Exec(`INSERT INTO sign_ins (id, user_id, created_at)
				SELECT family_id, MIN(user_id), MIN(created_at) FROM refresh_tokens
				WHERE revoked_at IS NULL AND expires_at > ? GROUP BY family_id`, Now()).Error
		},
		Rollback: func(tx *gorm.DB) error { return tx.Migrator().DropTable("sign_ins") },
	},
	{
		// Segment's write key is an app's secret key and names no app: the
		// app is found by the key's hash.
		ID: "2026120401_apps_secret_hash",
		Migrate: func(tx *gorm.DB) error {
			return tx.Exec("CREATE INDEX idx_apps_secret_hash ON apps (secret_hash)").Error
		},
		Rollback: func(tx *gorm.DB) error { return tx.Migrator().DropIndex("apps", "idx_apps_secret_hash") },
	},
	{
		// Webhook ingestion: ingest tokens, and the integration an event
		// came through (Bento's URL segment: generic, pos, billing, …).
		// The column has a default, so replicas of the previous release
		// keep inserting events during a rolling upgrade.
		ID: "2026120401_ingest_tokens",
		Migrate: func(tx *gorm.DB) error {
			type ingestToken struct {
				ID        uint64     `gorm:"primaryKey"`
				AppID     uint64     `gorm:"not null;index:idx_ingest_tokens_app"`
				Name      string     `gorm:"size:100;not null"`
				TokenHash string     `gorm:"size:64;not null;uniqueIndex:idx_ingest_tokens_hash"`
				Hint      string     `gorm:"size:16;not null"`
				CreatedAt time.Time  `gorm:"not null"`
				RevokedAt *time.Time `gorm:"index:idx_ingest_tokens_app_revoked"`
			}
			if err := tx.Table("ingest_tokens").Migrator().CreateTable(&ingestToken{}); err != nil {
				return err
			}
			if tx.Migrator().HasColumn("events", "integration") {
				return nil // added ahead of this migration (TestMigrateToNoPadCollation)
			}
			return tx.Exec(addEventsIntegrationSQL).Error
		},
		Rollback: func(tx *gorm.DB) error {
			if err := tx.Migrator().DropColumn("events", "integration"); err != nil {
				return err
			}
			return tx.Migrator().DropTable("ingest_tokens")
		},
	},
	{
		// Automation rules, their actions, the delivery log and its attempts.
		ID: "2026120402_automations",
		Migrate: func(tx *gorm.DB) error {
			type automationRule struct {
				ID             uint64    `gorm:"primaryKey"`
				AppID          uint64    `gorm:"not null;uniqueIndex:idx_automation_rules_app_name,priority:1"`
				Name           string    `gorm:"size:200;not null;uniqueIndex:idx_automation_rules_app_name,priority:2"`
				MatcherID      uint64    `gorm:"not null;index:idx_automation_rules_matcher_id"`
				IdentifiedOnly bool      `gorm:"not null"`
				Enabled        bool      `gorm:"not null"`
				CreatedAt      time.Time `gorm:"not null"`
				UpdatedAt      time.Time `gorm:"not null"`
			}
			type automationAction struct {
				ID             uint64 `gorm:"primaryKey"`
				RuleID         uint64 `gorm:"not null;index:idx_automation_actions_rule_id"`
				AppID          uint64 `gorm:"not null"`
				Kind           string `gorm:"size:16;not null"`
				URL            string `gorm:"size:2048;not null"`
				Headers        string `gorm:"type:text;not null"`
				Template       string `gorm:"size:2000;not null"`
				Secret         string `gorm:"size:64;not null"`
				PreviousSecret string `gorm:"size:64;not null"`
				PreviousUntil  *time.Time
				DisabledAt     *time.Time
				DisabledReason string    `gorm:"size:200;not null"`
				CreatedAt      time.Time `gorm:"not null"`
				UpdatedAt      time.Time `gorm:"not null"`
			}
			type delivery struct {
				ID             uint64    `gorm:"primaryKey"`
				AppID          uint64    `gorm:"not null;index:idx_automation_deliveries_app_id,priority:1"`
				RuleID         uint64    `gorm:"not null;index:idx_automation_deliveries_rule_id,priority:1"`
				ActionID       uint64    `gorm:"not null;uniqueIndex:idx_automation_deliveries_action_event,priority:1"`
				EventID        uint64    `gorm:"not null;uniqueIndex:idx_automation_deliveries_action_event,priority:2;index:idx_automation_deliveries_event_id"`
				Status         string    `gorm:"size:16;not null;index:idx_automation_deliveries_due,priority:1"`
				DueAt          int64     `gorm:"not null;index:idx_automation_deliveries_due,priority:2"`
				Attempts       int       `gorm:"not null"`
				LeaseOwner     string    `gorm:"size:80;not null"`
				LeaseUntil     int64     `gorm:"not null"`
				LastStatusCode int       `gorm:"not null"`
				LastError      string    `gorm:"size:500;not null"`
				LastLatencyMs  int64     `gorm:"not null"`
				CreatedAt      time.Time `gorm:"not null"`
				UpdatedAt      time.Time `gorm:"not null;index:idx_automation_deliveries_updated_at"`
			}
			type deliveryAttempt struct {
				ID         uint64    `gorm:"primaryKey"`
				DeliveryID uint64    `gorm:"not null;index:idx_automation_attempts_delivery_id"`
				AppID      uint64    `gorm:"not null"`
				At         time.Time `gorm:"not null"`
				StatusCode int       `gorm:"not null"`
				LatencyMs  int64     `gorm:"not null"`
				Error      string    `gorm:"size:500;not null"`
			}
			return createTables(tx, []table{
				{"automation_rules", &automationRule{}}, {"automation_actions", &automationAction{}},
				{"automation_deliveries", &delivery{}}, {"automation_attempts", &deliveryAttempt{}},
			})
		},
		Rollback: func(tx *gorm.DB) error {
			return tx.Migrator().DropTable("automation_attempts", "automation_deliveries", "automation_actions", "automation_rules")
		},
	},
	{
		// Privacy lifecycle: tombstones of erased messageIds (ids only, so
		// late resends stay erased), the audit log of erasures, exports and
		// retention runs, leases of background jobs, and each app's
		// retention (NULL: keep forever).
		ID: "2026120403_privacy",
		Migrate: func(tx *gorm.DB) error {
			type erasedMessage struct {
				AppID     uint64    `gorm:"primaryKey;autoIncrement:false"`
				MessageID string    `gorm:"primaryKey;size:128"`
				ErasedAt  time.Time `gorm:"not null;index:idx_erased_messages_erased_at"`
				Hits      int64     `gorm:"not null;default:0"`
			}
			type auditRecord struct {
				ID          uint64 `gorm:"primaryKey"`
				AppID       uint64 `gorm:"not null;index:idx_audit_records_app_id,priority:1"`
				Kind        string `gorm:"size:32;not null"`
				ActorKind   string `gorm:"size:16;not null"`
				ActorUserID *uint64
				SubjectHash string    `gorm:"size:64;not null"`
				Events      int64     `gorm:"not null"`
				Devices     int64     `gorm:"not null"`
				Leads       int64     `gorm:"not null"`
				Tombstones  int64     `gorm:"not null"`
				CreatedAt   time.Time `gorm:"not null"`
			}
			type jobLease struct {
				Name       string `gorm:"primaryKey;size:64"`
				LeaseOwner string `gorm:"size:64;not null"`
				LeaseUntil int64  `gorm:"not null"`
			}
			type app struct {
				RetentionDays *int
			}
			err := createTables(tx, []table{{"erased_messages", &erasedMessage{}}, {"audit_records", &auditRecord{}}, {"job_leases", &jobLease{}}})
			if err != nil {
				return err
			}
			return tx.Table("apps").Migrator().AddColumn(&app{}, "RetentionDays")
		},
		Rollback: func(tx *gorm.DB) error {
			if err := tx.Table("apps").Migrator().DropColumn(&struct{ RetentionDays *int }{}, "RetentionDays"); err != nil {
				return err
			}
			return tx.Migrator().DropTable("erased_messages", "audit_records", "job_leases")
		},
	},
	{
		// The live stream reads an app's newest events by id (live.go):
		// without this index each poll read every app's events of the last
		// seconds through the primary key.
		ID: "2026120404_events_app_id",
		Migrate: func(tx *gorm.DB) error {
			return tx.Exec("CREATE INDEX idx_events_app_id ON events (app_id, id)").Error
		},
		Rollback: func(tx *gorm.DB) error { return tx.Migrator().DropIndex("events", "idx_events_app_id") },
	},
	{
		// Browser requests refused for their origin, counted per app
		// (refusedorigin.go), so a mistyped allowed origin shows.
		ID: "2026120406_refused_origins",
		Migrate: func(tx *gorm.DB) error {
			type refusedOrigin struct {
				AppID       uint64    `gorm:"primaryKey;autoIncrement:false"`
				Origin      string    `gorm:"primaryKey;size:100"`
				Count       int64     `gorm:"not null"`
				FirstSeenAt time.Time `gorm:"not null"`
				LastSeenAt  time.Time `gorm:"not null;index:idx_refused_origins_last_seen_at"`
			}
			return createTables(tx, []table{{"refused_origins", &refusedOrigin{}}})
		},
		Rollback: func(tx *gorm.DB) error { return tx.Migrator().DropTable("refused_origins") },
	},
	{
		// The overview's identifiedLeads (insights.go) reads the seen times
		// of every lead-owning device of the app: from this index alone, not
		// a primary-key lookup per device (45 ms -> 11 ms for 49,000 such
		// devices at 10M events on MariaDB). It replaces the (app_id,
		// lead_id) index, which it serves as a prefix.
		ID: "2026120407_devices_lead_seen",
		Migrate: func(tx *gorm.DB) error {
			if err := tx.Exec("CREATE INDEX idx_devices_app_lead_seen ON devices (app_id, lead_id, last_seen_at, first_seen_at)").Error; err != nil {
				return err
			}
			return tx.Migrator().DropIndex("devices", "idx_devices_app_lead")
		},
		Rollback: func(tx *gorm.DB) error {
			if err := tx.Exec("CREATE INDEX idx_devices_app_lead ON devices (app_id, lead_id)").Error; err != nil {
				return err
			}
			return tx.Migrator().DropIndex("devices", "idx_devices_app_lead_seen")
		},
	},
	{
		// An unknown code marked as a typo of a defined one, shared by the
		// app's members (unknowncode.go).
		ID: "2026120408_unknown_code_typo",
		Migrate: func(tx *gorm.DB) error {
			type unknownCode struct {
				TypoOf *string `gorm:"size:64"`
			}
			return tx.Table("unknown_codes").Migrator().AddColumn(&unknownCode{}, "TypoOf")
		},
		Rollback: func(tx *gorm.DB) error {
			return tx.Table("unknown_codes").Migrator().DropColumn(&struct{ TypoOf *string }{}, "TypoOf")
		},
	},
	{
		// The latest cutoff retention has applied to an app (lifecycle.go):
		// hours earlier than it may have lost raw events, so an erasure
		// keeps their device sketches instead of rebuilding them from what
		// is left (rollup_erase.go). NULL: retention never ran. Apps whose
		// retention ran before get it from their receipts.
		ID: "2026120409_apps_expired_before",
		Migrate: func(tx *gorm.DB) error {
			type app struct {
				ExpiredBefore *time.Time
			}
			// MySQL keeps the column if the backfill fails: the retry skips it.
			if !tx.Table("apps").Migrator().HasColumn(&app{}, "ExpiredBefore") {
				if err := tx.Table("apps").Migrator().AddColumn(&app{}, "ExpiredBefore"); err != nil {
					return err
				}
			}
			return backfillExpiredBefore(tx)
		},
		Rollback: func(tx *gorm.DB) error {
			return tx.Table("apps").Migrator().DropColumn(&struct{ ExpiredBefore *time.Time }{}, "ExpiredBefore")
		},
	},
	{
		// Allowed origins saved before they were normalised on save: each
		// rewritten as browsers send Origin, duplicates dropped, and entries
		// no browser can send set aside in a column of their own, shown to
		// the owner (migrate_origins.go). The column is nullable, so
		// replicas of the previous release keep creating apps during a
		// rolling upgrade.
		ID: "2026120410_allowed_origins",
		Migrate: func(tx *gorm.DB) error {
			type app struct {
				SetAsideOrigins *string `gorm:"type:text"`
			}
			// On MySQL a failed run is not rolled back (DDL commits): run
			// again, it finds the column, and rewrites what is left.
			if !tx.Migrator().HasColumn("apps", "set_aside_origins") {
				if err := tx.Table("apps").Migrator().AddColumn(&app{}, "SetAsideOrigins"); err != nil {
					return err
				}
			}
			return rewriteAllowedOrigins(tx)
		},
		Rollback: func(tx *gorm.DB) error {
			return tx.Table("apps").Migrator().DropColumn(&struct{ SetAsideOrigins *string }{}, "SetAsideOrigins")
		},
	},
	{
		// Funnels and goals whose rules test url, title or source read those
		// from the (definition, time, device) index instead of a primary-key
		// lookup per step event (funnel.go): at 10M events on MariaDB such a
		// lookup per event read 1.4 GiB of pages through a 128 MiB buffer
		// pool. short_url and short_title are virtual columns (nothing is
		// stored in the rows), the url and title when they have at most 255
		// characters (CHAR_LENGTH counts characters), else NULL, so the key
		// stays under InnoDB's 3,072 bytes; the few longer values are read
		// from the rows. The new index replaces the old one, which it serves
		// as a prefix, so the writer keeps the same number of index entries
		// per event; it is built before the old one is dropped, so funnels
		// never go without one. MySQL only: SQLite does not read indexed
		// virtual columns from the index (it computes them from the row),
		// and the wider index cost its writer ~10% of trigger throughput.
		ID: "2026120411_events_definition_rules",
		Migrate: func(tx *gorm.DB) error {
			if !isMySQL(tx) {
				return nil
			}
			// One schema change per statement, as older TiDB versions want;
			// each checks first, as DDL commits and a failed run is resumed.
			for _, col := range []string{"url", "title"} {
				if !tx.Migrator().HasColumn("events", "short_"+col) {
					if err := tx.Exec(fmt.Sprintf("ALTER TABLE events ADD COLUMN short_%s VARCHAR(255) AS (IF(CHAR_LENGTH(%s) <= 255, %s, NULL)) VIRTUAL", col, col, col)).Error; err != nil {
						return err
					}
				}
			}
			if !tx.Migrator().HasIndex("events", "idx_events_definition_rules") {
				if err := tx.Exec("CREATE INDEX idx_events_definition_rules ON events (definition_id, occurred_at, device_id, source, short_url, short_title)").Error; err != nil {
					return err
				}
			}
			if tx.Migrator().HasIndex("events", "idx_events_definition_time") {
				return tx.Migrator().DropIndex("events", "idx_events_definition_time")
			}
			return nil
		},
		Rollback: func(tx *gorm.DB) error {
			if !isMySQL(tx) {
				return nil
			}
			if err := tx.Exec("CREATE INDEX idx_events_definition_time ON events (definition_id, occurred_at, device_id)").Error; err != nil {
				return err
			}
			if err := tx.Migrator().DropIndex("events", "idx_events_definition_rules"); err != nil {
				return err
			}
			for _, col := range []string{"short_url", "short_title"} {
				if err := tx.Exec("ALTER TABLE events DROP COLUMN " + col).Error; err != nil {
					return err
				}
			}
			return nil
		},
	},
	{
		// Errors in the delivery log that name their action's whole URL
		// (Go's transport errors print it; a Slack webhook's path is its
		// credential) rewritten to show its scheme and host only, as errors
		// are recorded now (migrate_redact.go). Data only; rerunning it
		// finds nothing left to do.
		ID:       "2026120501_redact_delivery_errors",
		Migrate:  func(tx *gorm.DB) error { return redactDeliveryErrors(tx) },
		Rollback: func(*gorm.DB) error { return nil },
	},
	{
		// Replays of each delivery (replayDelivery, replayRule): the
		// dispatcher records an attempt's outcome only if the count has not
		// moved since the attempt began, so an attempt in flight cannot undo
		// a replay (automation_dispatch.go). It defaults to 0, so replicas
		// of the previous release keep inserting deliveries during a rolling
		// upgrade.
		ID: "2026120502_deliveries_replays",
		Migrate: func(tx *gorm.DB) error {
			type delivery struct {
				Replays int `gorm:"not null;default:0"`
			}
			// On MySQL DDL commits: a failed run finds the column when it runs again.
			if tx.Migrator().HasColumn("automation_deliveries", "replays") {
				return nil
			}
			return tx.Table("automation_deliveries").Migrator().AddColumn(&delivery{}, "Replays")
		},
		Rollback: func(tx *gorm.DB) error {
			return tx.Table("automation_deliveries").Migrator().DropColumn(&struct{ Replays int }{}, "Replays")
		},
	},
	{
		// Every signing secret rotated out in the last 24 hours, at most 3,
		// signs deliveries (automation_secret.go), not only the last one:
		// retired_secrets holds them as a JSON list, read with the action.
		// The secret previous_secret held, while it still signs, moves into
		// it (migrate_secrets.go). The column is nullable and the old ones
		// stay, so replicas of the previous release keep creating, rotating
		// and signing during a rolling upgrade; the new release writes the
		// newest retired secret into them too, and reads previous_secret
		// as one more retired secret.
		ID: "2026120503_retired_secrets",
		Migrate: func(tx *gorm.DB) error {
			type automationAction struct {
				RetiredSecrets *string `gorm:"type:text"`
			}
			// On MySQL a failed run is not rolled back (DDL commits): run
			// again, it finds the column, and moves what is left.
			if !tx.Migrator().HasColumn("automation_actions", "retired_secrets") {
				if err := tx.Table("automation_actions").Migrator().AddColumn(&automationAction{}, "RetiredSecrets"); err != nil {
					return err
				}
			}
			return moveRetiredSecrets(tx)
		},
		Rollback: func(tx *gorm.DB) error {
			return tx.Table("automation_actions").Migrator().DropColumn(&struct{ RetiredSecrets *string }{}, "RetiredSecrets")
		},
	},
	{
		// The delivery log filtered by status (the dead letters): without
		// this index SQLite read an app's whole log through app_id to find
		// them (143 ms for 5 among 200,000), and MariaDB every app's
		// deliveries of that status through the due index.
		ID: "2026120504_deliveries_app_status",
		Migrate: func(tx *gorm.DB) error {
			return tx.Exec("CREATE INDEX idx_automation_deliveries_app_status ON automation_deliveries (app_id, status, id)").Error
		},
		Rollback: func(tx *gorm.DB) error {
			return tx.Migrator().DropIndex("automation_deliveries", "idx_automation_deliveries_app_status")
		},
	},
	{
		// Erasures are stored before they start (erasejob.go), so they
		// outlive the request that asked for them and resume after a crash.
		ID: "2026120505_erase_jobs",
		Migrate: func(tx *gorm.DB) error {
			type eraseJob struct {
				ID          uint64  `gorm:"primaryKey"`
				AppID       uint64  `gorm:"not null;uniqueIndex:idx_erase_jobs_pending,priority:1"`
				Kind        string  `gorm:"size:32;not null;uniqueIndex:idx_erase_jobs_pending,priority:2"`
				PendingKey  *string `gorm:"size:64;uniqueIndex:idx_erase_jobs_pending,priority:3"`
				LeadID      uint64  `gorm:"not null"`
				DeviceID    string  `gorm:"size:128;not null"`
				Before      *time.Time
				ActorKind   string `gorm:"size:16;not null"`
				ActorUserID *uint64
				SubjectHash string `gorm:"size:64;not null"`
				Erased      bool   `gorm:"not null"`
				Events      int64  `gorm:"not null"`
				Devices     int64  `gorm:"not null"`
				Leads       int64  `gorm:"not null"`
				Tombstones  int64  `gorm:"not null"`
				ReceiptID   *uint64
				CreatedAt   time.Time  `gorm:"not null"`
				DoneAt      *time.Time `gorm:"index:idx_erase_jobs_done"`
			}
			// On MySQL DDL commits: a failed run finds the table when it runs again.
			if tx.Migrator().HasTable("erase_jobs") {
				return nil
			}
			return createTables(tx, []table{{"erase_jobs", &eraseJob{}}})
		},
		Rollback: func(tx *gorm.DB) error { return tx.Migrator().DropTable("erase_jobs") },
	},
	{
		// Erasures that fail part way are counted, with the public code of
		// the last failure, and resumed after a growing delay (eraser.go).
		ID: "2026120506_erase_job_failures",
		Migrate: func(tx *gorm.DB) error {
			type eraseJob struct {
				Failures        int     `gorm:"not null;default:0"`
				LastFailureCode *string `gorm:"size:32"`
				LastFailureAt   *time.Time
			}
			// On MySQL DDL commits: a failed run finds the columns it added.
			m := tx.Table("erase_jobs").Migrator()
			for _, c := range []struct{ field, column string }{
				{"Failures", "failures"}, {"LastFailureCode", "last_failure_code"}, {"LastFailureAt", "last_failure_at"},
			} {
				if !tx.Migrator().HasColumn("erase_jobs", c.column) {
					if err := m.AddColumn(&eraseJob{}, c.field); err != nil {
						return err
					}
				}
			}
			return nil
		},
		Rollback: func(tx *gorm.DB) error {
			m := tx.Table("erase_jobs").Migrator()
			for _, c := range []string{"LastFailureAt", "LastFailureCode", "Failures"} {
				if err := m.DropColumn(&struct {
					Failures        int
					LastFailureCode *string
					LastFailureAt   *time.Time
				}{}, c); err != nil {
					return err
				}
			}
			return nil
		},
	},
	{
		// Receivers' answers in the delivery log that echo the value of one
		// of the action's custom headers ("bad key crm_live_…") rewritten to
		// hide it, as answers are recorded now (hideSecretsIn): viewers read
		// the log, and header values are never read back. Data only; the
		// same step as 2026120501, which hid URLs only.
		ID:       "2026120507_redact_delivery_header_values",
		Migrate:  func(tx *gorm.DB) error { return redactDeliveryErrors(tx) },
		Rollback: func(*gorm.DB) error { return nil },
	},
	{
		// An owner may delete an app: it is marked at once, and its rows
		// go in the background (appdelete.go, appdelete_job.go).
		ID: "2026120508_app_deleted_at",
		Migrate: func(tx *gorm.DB) error {
			type app struct {
				DeletedAt *time.Time `gorm:"index:idx_apps_deleted_at"`
			}
			// On MySQL DDL commits: a failed run finds what it added.
			m := tx.Table("apps").Migrator()
			if !tx.Migrator().HasColumn("apps", "deleted_at") {
				if err := m.AddColumn(&app{}, "DeletedAt"); err != nil {
					return err
				}
			}
			if !tx.Migrator().HasIndex("apps", "idx_apps_deleted_at") {
				return tx.Exec("CREATE INDEX idx_apps_deleted_at ON apps (deleted_at)").Error
			}
			return nil
		},
		Rollback: func(tx *gorm.DB) error {
			if err := tx.Migrator().DropIndex("apps", "idx_apps_deleted_at"); err != nil {
				return err
			}
			return tx.Table("apps").Migrator().DropColumn(&struct{ DeletedAt *time.Time }{}, "DeletedAt")
		},
	},
}

// addEventsIntegrationSQL adds the column 2026120401_ingest_tokens adds.
const addEventsIntegrationSQL = "ALTER TABLE events ADD COLUMN integration VARCHAR(32) NOT NULL DEFAULT ''"

// table is a table a migration creates from a snapshot struct.
type table struct {
	name  string
	model any
}

// createTables creates the tables in order, each under its given name.
func createTables(tx *gorm.DB, tables []table) error {
	for _, t := range tables {
		if err := tx.Table(t.name).Migrator().CreateTable(t.model); err != nil {
			return fmt.Errorf("create table %s: %w", t.name, err)
		}
	}
	return nil
}

// convertCollation moves every table of the database whose text columns are
// not in the chosen collation to it.
func convertCollation(tx *gorm.DB) error {
	collation, _ := tx.Get(collationKey)
	c, _ := collation.(string)
	if !isMySQL(tx) || c == "" || c == padSpaceCollation {
		return nil
	}
	var tables []string
	err := tx.Raw(`SELECT TABLE_NAME FROM information_schema.TABLES
		WHERE TABLE_SCHEMA = DATABASE() AND TABLE_TYPE = 'BASE TABLE' AND TABLE_COLLATION <> ?
		UNION SELECT TABLE_NAME FROM information_schema.COLUMNS
		WHERE TABLE_SCHEMA = DATABASE() AND COLLATION_NAME IS NOT NULL AND COLLATION_NAME <> ?
		ORDER BY 1`, c, c).Scan(&tables).Error
	if err != nil {
		return err
	}
	for _, table := range tables {
		if err := tx.Exec("ALTER TABLE " + quoteIdent(table) + " CONVERT TO CHARACTER SET utf8mb4 COLLATE " + c).Error; err != nil {
			return fmt.Errorf("convert %s to %s: %w", table, c, err)
		}
	}
	return nil
}

func quoteIdent(name string) string { return "`" + strings.ReplaceAll(name, "`", "``") + "`" }

// appSpan is an app's first and last time in some table.
type appSpan struct {
	appID       uint64
	first, last dbTime
}

// appSpans reads query's rows of (app id, first time, last time).
func appSpans(tx *gorm.DB, query string) ([]appSpan, error) {
	rows, err := tx.Raw(query).Rows()
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var spans []appSpan
	for rows.Next() {
		var s appSpan
		if err := rows.Scan(&s.appID, &s.first, &s.last); err != nil {
			return nil, err
		}
		spans = append(spans, s)
	}
	return spans, rows.Err()
}

// backfillRollups builds the rollups of events stored before they existed,
// one UTC day at a time.
func backfillRollups(tx *gorm.DB) error {
	spans, err := appSpans(tx, "SELECT app_id, MIN(occurred_at), MAX(occurred_at) FROM events GROUP BY app_id")
	if err != nil {
		return err
	}
	for _, s := range spans {
		var days []time.Time
		for d := utcDay(s.first.Time); !d.After(s.last.Time); d = d.AddDate(0, 0, 1) {
			days = append(days, d)
		}
		if err := rebuildRollupDays(tx, s.appID, days); err != nil {
			return err
		}
	}
	return nil
}

// backfillExpiredBefore sets the expired_before of each app whose
// retention ran before the column existed to the latest cutoff its runs
// applied. A run's receipt names its cutoff only by the SHA-256 of its
// RFC 3339 form, and a cutoff is a whole UTC hour 1 to 36,500 days before
// its run: walking the hours down from a day before the app's latest run,
// the first one a receipt names is that cutoff. Retention lengthened since
// its latest run is why the latest run's cutoff may not be the latest one.
func backfillExpiredBefore(tx *gorm.DB) error {
	spans, err := appSpans(tx, "SELECT app_id, MIN(created_at), MAX(created_at) FROM audit_records WHERE kind = 'retention' GROUP BY app_id")
	if err != nil {
		return err
	}
	for _, s := range spans {
		var hashes []string
		err := tx.Table("audit_records").Distinct("subject_hash").Where("app_id = ? AND kind = 'retention'", s.appID).Pluck("subject_hash", &hashes).Error
		if err != nil {
			return err
		}
		named := make(map[string]bool, len(hashes))
		for _, h := range hashes {
			named[h] = true
		}
		lowest := s.first.Time.AddDate(0, 0, -36500)
		for at := s.last.Time.Add(-24 * time.Hour).Truncate(time.Hour); !at.Before(lowest); at = at.Add(-time.Hour) {
			sum := sha256.Sum256([]byte(at.Format(time.RFC3339)))
			if !named[hex.EncodeToString(sum[:])] {
				continue
			}
			err := tx.Exec("UPDATE apps SET expired_before = ? WHERE id = ? AND (expired_before IS NULL OR expired_before < ?)", at, s.appID, at).Error
			if err != nil {
				return err
			}
			break
		}
	}
	return nil
}
