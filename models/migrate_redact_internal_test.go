package models

import (
	"context"
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"

	"gorm.io/gorm"
)

// Migration 2026120501_redact_delivery_errors over a delivery log written
// as the releases before it did: errors that print the action's whole URL
// (a Slack webhook's and a CRM's with a token), cut short at 400 bytes,
// or a receiver's answer that echoes the path, show the scheme and host
// only; other errors, and the rows' times, are left as they are.
func TestMigrateRedactDeliveryErrors(t *testing.T) {
	eachEmptyStore(t, func(t *testing.T, newURL func() string) {
		db := migratedUpTo(t, newURL(), "2026120501_redact_delivery_errors")
		at := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
		slack := "https://hooks.slack.com/services/T0SECRET/B0SECRET/XXXXSECRETXXXX"
		crm := "https://crm.example.com/hooks/catch/123456/abcdef/?token=tok-SECRET-42&path=" + strings.Repeat("x", 500)
		refused := func(raw string) string {
			return (&url.Error{Op: "Post", URL: raw, Err: errors.New("dial tcp 10.1.2.3:443: connect: connection refused")}).Error()
		}
		insertOldAction(t, db, 1, "slack", slack, at)
		insertOldAction(t, db, 2, "webhook", crm, at)
		for _, d := range []struct {
			id, action uint64
			errs       []string // the attempts'; the last is the delivery's
		}{
			{1, 1, []string{refused(slack), "HTTP 404: no_service", refused(slack)}},
			{2, 1, []string{"HTTP 500: Cannot POST /services/T0SECRET/B0SECRET/XXXXSECRETXXXX"}},
			{3, 2, []string{truncate(refused(crm), 400), ""}},
			{4, 2, []string{"HTTP 401: token tok-SECRET-42 revoked", "HTTP 503: try later"}},
		} {
			insertOldDelivery(t, db, d.id, d.action, d.errs, at)
		}
		if err := Migrate(context.Background(), db); err != nil {
			t.Fatal(err)
		}

		want := map[uint64][]string{
			1: {`Post "https://hooks.slack.com": dial tcp 10.1.2.3:443: connect: connection refused`, "HTTP 404: no_service",
				`Post "https://hooks.slack.com": dial tcp 10.1.2.3:443: connect: connection refused`},
			2: {"HTTP 500: Cannot POST /…"},
			3: {`Post "https://crm.example.com`, ""},
			4: {"HTTP 401: token … revoked", "HTTP 503: try later"},
		}
		wantDeliveryErrors(t, db, want, at)
	})
}

// wantDeliveryErrors checks each delivery's attempts' errors, the last one
// as the delivery's, and that its updated_at is still at.
func wantDeliveryErrors(t *testing.T, db *gorm.DB, want map[uint64][]string, at time.Time) {
	t.Helper()
	for id, errs := range want {
		var d struct {
			LastError string
			UpdatedAt time.Time
		}
		if err := db.Table("automation_deliveries").Select("last_error, updated_at").Where("id = ?", id).Take(&d).Error; err != nil {
			t.Fatal(err)
		}
		if d.LastError != errs[len(errs)-1] || !d.UpdatedAt.Equal(at) {
			t.Errorf("delivery %d: last_error %q, updated_at %s; want %q, %s", id, d.LastError, d.UpdatedAt, errs[len(errs)-1], at)
		}
		var got []string
		if err := db.Table("automation_attempts").Where("delivery_id = ?", id).Order("id").Pluck("error", &got).Error; err != nil {
			t.Fatal(err)
		}
		if strings.Join(got, "\n") != strings.Join(errs, "\n") {
			t.Errorf("delivery %d's attempts:\n%q\nwant\n%q", id, got, errs)
		}
	}
}

// insertOldAction writes an automation action in the schema of migration
// 2026120402_automations.
func insertOldAction(t *testing.T, db *gorm.DB, id uint64, kind, raw string, at time.Time) {
	t.Helper()
	err := db.Exec(`INSERT INTO automation_actions (id, rule_id, app_id, kind, url, headers, template, secret, previous_secret, previous_until,
		disabled_at, disabled_reason, created_at, updated_at) VALUES (?, 1, 1, ?, ?, '[]', '', '', '', NULL, NULL, '', ?, ?)`, id, kind, raw, at, at).Error
	if err != nil {
		t.Fatal(err)
	}
}

// insertOldDelivery writes a delivery to an action with an attempt per
// error, the last one's as the delivery's.
func insertOldDelivery(t *testing.T, db *gorm.DB, id, action uint64, errs []string, at time.Time) {
	t.Helper()
	err := db.Exec(`INSERT INTO automation_deliveries (id, app_id, rule_id, action_id, event_id, status, due_at, attempts, lease_owner, lease_until,
		last_status_code, last_error, last_latency_ms, created_at, updated_at) VALUES (?, 1, 1, ?, ?, 'retrying', 0, ?, '', 0, 0, ?, 5, ?, ?)`,
		id, action, 1000+id, len(errs), errs[len(errs)-1], at, at).Error
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range errs {
		if err := db.Exec(`INSERT INTO automation_attempts (delivery_id, app_id, at, status_code, latency_ms, error) VALUES (?, 1, ?, 0, 5, ?)`, id, at, e).Error; err != nil {
			t.Fatal(err)
		}
	}
}

// Migration 2026120507_redact_delivery_header_values over a delivery log
// written as the releases before it did: receivers' answers that echo a
// custom header's value (whole, or a word of it such as a bearer token)
// show "…" in its place, in the attempts and the deliveries; short values
// (under 8 bytes) and the errors of actions without headers stay as they
// are, and so do the rows' times.
func TestMigrateRedactDeliveryHeaderValues(t *testing.T) {
	eachEmptyStore(t, func(t *testing.T, newURL func() string) {
		db := migratedUpTo(t, newURL(), "2026120507_redact_delivery_header_values")
		at := time.Date(2026, 12, 4, 9, 0, 0, 0, time.UTC)
		insertOldAction(t, db, 1, "webhook", "https://crm.example.com/hooks/crumbs", at)
		insertOldAction(t, db, 2, "webhook", "https://other.example.com/in", at)
		headers := `[{"name":"X-Key","value":"crm_live_SECRET1"},{"name":"Authorization","value":"Bearer tok-SECRET-2"},{"name":"X-Short","value":"abc1234"}]`
		if err := db.Exec("UPDATE automation_actions SET headers = ? WHERE id = 1", headers).Error; err != nil {
			t.Fatal(err)
		}
		insertOldDelivery(t, db, 1, 1, []string{"HTTP 401: unauthorized: bad key crm_live_SECRET1", "HTTP 503: busy",
			"HTTP 403: token tok-SECRET-2 (abc1234) refused; got headers Authorization: Bearer tok-SECRET-2"}, at)
		insertOldDelivery(t, db, 2, 2, []string{"HTTP 401: bad key crm_live_SECRET1"}, at)

		if err := Migrate(context.Background(), db); err != nil {
			t.Fatal(err)
		}
		want := map[uint64][]string{
			1: {"HTTP 401: unauthorized: bad key …", "HTTP 503: busy",
				"HTTP 403: token … (abc1234) refused; got headers Authorization: …"},
			2: {"HTTP 401: bad key crm_live_SECRET1"}, // not this action's header
		}
		wantDeliveryErrors(t, db, want, at)
	})
}
