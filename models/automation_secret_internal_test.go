package models

import (
	"context"
	"slices"
	"testing"
	"time"
)

// Each retired secret signs for 24 hours from its own rotation, at most
// three at once; a previous secret that a replica of an earlier release
// rotated into PreviousSecret alone signs too.
func TestRetiredSecretsExpire(t *testing.T) {
	t0 := time.Date(2026, 12, 5, 9, 0, 0, 0, time.UTC)
	a := &AutomationAction{Kind: ActionWebhook, Secret: "s0"}
	var secrets []string
	rotate := func(at time.Time) {
		a.rotateSecret(at)
		secrets = append(secrets, a.Secret)
	}
	signing := func(at time.Time, want ...string) {
		t.Helper()
		if got := a.signingSecrets(at); !slices.Equal(got, want) {
			t.Errorf("at t0+%s signing with %q, want %q", at.Sub(t0), got, want)
		}
	}
	rotate(t0)
	rotate(t0.Add(time.Hour))
	s1, s2 := secrets[0], secrets[1]
	signing(t0.Add(2*time.Hour), s2, "s0", s1)
	signing(t0.Add(24*time.Hour-time.Millisecond), s2, "s0", s1)
	signing(t0.Add(24*time.Hour), s2, s1)
	signing(t0.Add(25*time.Hour), s2)

	rotate(t0.Add(2 * time.Hour))
	rotate(t0.Add(3 * time.Hour)) // a fourth within the day: s0 goes
	s3, s4 := secrets[2], secrets[3]
	signing(t0.Add(3*time.Hour), s4, s1, s2, s3)
	if len(a.RetiredSecrets) != 3 || a.PreviousSecret != s3 || !a.PreviousUntil.Equal(t0.Add(27*time.Hour)) {
		t.Fatalf("stored %+v, previous %q until %s", a.RetiredSecrets, a.PreviousSecret, a.PreviousUntil)
	}
	// Expired ones are dropped at the next rotation.
	rotate(t0.Add(26 * time.Hour))
	if len(a.RetiredSecrets) != 2 || a.RetiredSecrets[0].Secret != s3 || a.RetiredSecrets[1].Secret != s4 {
		t.Fatalf("after a day, kept %+v", a.RetiredSecrets)
	}

	// An earlier release's replica rotated: Secret and PreviousSecret only.
	until := t0.Add(30 * time.Hour)
	a.PreviousSecret, a.PreviousUntil, a.Secret = secrets[4], &until, "s6"
	signing(t0.Add(26*time.Hour), "s6", s3, secrets[4], s4) // by expiry
	rotate(t0.Add(27 * time.Hour))
	signing(t0.Add(27*time.Hour), secrets[5], secrets[4], s4, "s6")
}

// Migration 2026120503_retired_secrets over actions saved by earlier
// releases: a previous secret that still signs becomes the one retired
// secret, with its expiry; an expired one, or none, leaves none; the
// previous columns stay for the earlier release's replicas.
func TestMigrateRetiredSecrets(t *testing.T) {
	eachEmptyStore(t, func(t *testing.T, newURL func() string) {
		ctx := context.Background()
		db := migratedUpTo(t, newURL(), "2026120503_retired_secrets")
		at := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
		later := StoreTime(time.Now().Add(20 * time.Hour))
		for i, prev := range []struct {
			secret string
			until  *time.Time
		}{{"whsec_prev", &later}, {"whsec_expired", &at}, {"", nil}} {
			id := uint64(i + 1)
			insertOldAction(t, db, id, ActionWebhook, "https://crm.example.com/hooks/crumbs", at)
			if err := db.Exec("UPDATE automation_actions SET secret = 'whsec_now', previous_secret = ?, previous_until = ? WHERE id = ?",
				prev.secret, prev.until, id).Error; err != nil {
				t.Fatal(err)
			}
		}
		if err := Migrate(ctx, db); err != nil {
			t.Fatal(err)
		}
		acts, err := ActionsByID(ctx, db, []uint64{1, 2, 3})
		if err != nil {
			t.Fatal(err)
		}
		now := time.Now()
		if got := acts[1].RetiredSecrets; len(got) != 1 || got[0].Secret != "whsec_prev" || !got[0].Until.Equal(later) {
			t.Errorf("action 1 retired %+v, want whsec_prev until %s", got, later)
		}
		if got := acts[1].signingSecrets(now); !slices.Equal(got, []string{"whsec_now", "whsec_prev"}) {
			t.Errorf("action 1 signs with %q", got)
		}
		for _, id := range []uint64{2, 3} {
			if got := acts[id].RetiredSecrets; len(got) != 0 {
				t.Errorf("action %d retired %+v, want none", id, got)
			}
			if got := acts[id].signingSecrets(now); !slices.Equal(got, []string{"whsec_now"}) {
				t.Errorf("action %d signs with %q", id, got)
			}
		}
		if acts[1].PreviousSecret != "whsec_prev" || !acts[1].UpdatedAt.Equal(at) {
			t.Errorf("action 1 previous %q, updated_at %s", acts[1].PreviousSecret, acts[1].UpdatedAt)
		}
	})
}
