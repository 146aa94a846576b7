package models_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/crumbs-dev/crumbs/models"
	"github.com/crumbs-dev/crumbs/models/modelstest"
	"gorm.io/gorm"
)

// TestUnknownCodesAreCapped floods an app with junk codes: the inbox keeps
// the 1,000 most recently seen, and real typos seen lately stay in it.
func TestUnknownCodesAreCapped(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *gorm.DB) {
		e := newEnv(t, db)
		send := func(codes ...string) {
			t.Helper()
			for batch := range slices.Chunk(codes, models.MaxBatch) {
				in := make([]models.TriggerInput, len(batch))
				for i, c := range batch {
					in[i] = models.TriggerInput{AppPublicID: e.app.PublicID, DeviceID: "flood", Code: c, Secret: e.secret}
				}
				for _, r := range e.writer.Trigger(e.ctx, in) {
					wantCode(t, r.Err, models.CodeUnknownEventCode)
				}
			}
		}
		send("oldest_typo", "older_typo")
		// Seen an hour and a half hour ago: the least recent ones.
		db.Model(&models.UnknownCode{}).Where("app_id = ? AND code = ?", e.app.ID, "oldest_typo").Update("last_seen_at", time.Now().Add(-time.Hour))
		db.Model(&models.UnknownCode{}).Where("app_id = ? AND code = ?", e.app.ID, "older_typo").Update("last_seen_at", time.Now().Add(-30*time.Minute))
		var junk []string
		for i := range 999 {
			junk = append(junk, fmt.Sprintf("junk_%d", i))
		}
		send(junk...)
		stored := func() []string {
			t.Helper()
			var codes []string
			if err := db.Model(&models.UnknownCode{}).Where("app_id = ?", e.app.ID).Pluck("code", &codes).Error; err != nil {
				t.Fatal(err)
			}
			return codes
		}
		codes := stored()
		if len(codes) != 1000 || slices.Contains(codes, "oldest_typo") || !slices.Contains(codes, "older_typo") {
			t.Fatalf("%d codes kept (oldest_typo kept: %v, older_typo kept: %v), want 1000 without the oldest",
				len(codes), slices.Contains(codes, "oldest_typo"), slices.Contains(codes, "older_typo"))
		}
		send("one_more")
		if codes := stored(); len(codes) != 1000 || slices.Contains(codes, "older_typo") || !slices.Contains(codes, "one_more") {
			t.Fatalf("after one more: %d codes, want 1000 with the newest and without older_typo", len(codes))
		}
		// Counting a code already kept evicts nothing.
		send("one_more", "junk_5")
		if codes := stored(); len(codes) != 1000 {
			t.Fatalf("%d codes after repeats", len(codes))
		}
		// Other apps are not affected by this one's flood.
		other := newEnv(t, db)
		other.trigger(models.TriggerInput{Code: "their_typo", Secret: other.secret})
		if list, err := models.UnknownCodes(e.ctx, db, other.app.ID, 10); err != nil || len(list) != 1 {
			t.Fatalf("the other app's inbox: %v %d", err, len(list))
		}
	})
}

// TestIdentifyIsRateLimited checks that identify takes from the same per-IP
// and per-device buckets as triggers, and writes nothing when refused.
func TestIdentifyIsRateLimited(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *gorm.DB) {
		e := newEnv(t, db)
		// Rates so slow that no token comes back while the test runs.
		limits := models.NewRateLimits(models.Rate{PerSecond: 0.001, Burst: 3}, models.Rate{PerSecond: 0.001, Burst: 2})
		w := models.NewWriter(db, e.writer.Catalog(), models.WriterOptions{Limits: limits})
		t.Cleanup(w.Close)
		identify := func(ip, device, email, secret string) error {
			_, err := models.Identify(e.ctx, db, w.Catalog(), models.IdentifyInput{
				AppPublicID: e.app.PublicID, DeviceID: device, Email: email, Origin: "https://site.example",
				ClientIP: ip, Secret: secret, Limits: w.Limits(),
			})
			return err
		}
		trigger := func(ip, device string) error {
			return w.Trigger(e.ctx, []models.TriggerInput{{AppPublicID: e.app.PublicID, DeviceID: device, Code: "view",
				Origin: "https://site.example", ClientIP: ip}})[0].Err
		}
		leads := func() int64 {
			var n int64
			db.Model(&models.Lead{}).Where("app_id = ?", e.app.ID).Count(&n)
			return n
		}
		// One IP: a trigger and two identifies use its burst of 3.
		if err := trigger("198.51.100.7", "a"); err != nil {
			t.Fatal(err)
		}
		for i, device := range []string{"b", "c"} {
			if err := identify("198.51.100.7", device, fmt.Sprintf("ip%d@example.com", i), ""); err != nil {
				t.Fatal(err)
			}
		}
		wantCode(t, identify("198.51.100.7", "d", "refused@example.com", ""), models.CodeRateLimited)
		wantCode(t, trigger("198.51.100.7", "e"), models.CodeRateLimited)
		if n := leads(); n != 2 {
			t.Fatalf("%d leads, want the 2 accepted", n)
		}
		// One device: its burst of 2 is shared by triggers and identifies, from any IP.
		if err := trigger("203.0.113.1", "phone"); err != nil {
			t.Fatal(err)
		}
		if err := identify("203.0.113.2", "phone", "phone@example.com", ""); err != nil {
			t.Fatal(err)
		}
		wantCode(t, identify("203.0.113.3", "phone", "phone2@example.com", ""), models.CodeRateLimited)
		// A server with the key relays for many visitors: no per-device limit.
		if err := identify("203.0.113.3", "phone", "phone2@example.com", e.secret); err != nil {
			t.Fatalf("keyed identify of a limited device: %v", err)
		}
		// A server with the key is exempt from the IP limit...
		for i := range 5 {
			if err := identify("198.51.100.7", fmt.Sprint("server-", i), "server@example.com", e.secret); err != nil {
				t.Fatalf("server identify %d: %v", i, err)
			}
		}
		// ...but not when the key is wrong or the app unknown: those use up
		// the IP's bucket, and then are refused before the app is read.
		fresh := "192.0.2.50"
		for range 3 {
			wantCode(t, identify(fresh, "x", "x@example.com", "sk_wrong"), models.CodeUnauthenticated)
		}
		wantCode(t, identify(fresh, "x", "x@example.com", "sk_wrong"), models.CodeRateLimited)
		wantCode(t, identify(fresh, "x", "x@example.com", e.secret), models.CodeRateLimited)
		res := w.Trigger(e.ctx, []models.TriggerInput{{AppPublicID: "app_unknown", DeviceID: "x", Code: "view", ClientIP: "192.0.2.51", Secret: "sk_any"}})
		wantCode(t, res[0].Err, models.CodeNotFound)
	})
}

// TestIdentifyStoresAValidUserAgent: identify keeps the device's user agent
// as a trigger does, valid UTF-8 of at most 512 bytes. It cut the header at
// 500 bytes, inside a character when it was not ASCII, and kept invalid
// bytes: MariaDB's utf8mb4 column refused both, so an identify from such a
// browser (or a Segment identify with such a context.userAgent) failed with
// INTERNAL_SERVER_ERROR there, and SQLite stored bytes GraphQL then
// answered as invalid JSON text.
func TestIdentifyStoresAValidUserAgent(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *gorm.DB) {
		e := newEnv(t, db)
		for device, tc := range map[string]struct{ sent, stored string }{
			"invalid-bytes": {"Mozilla/5.0 \xff\xfe(X11)", "Mozilla/5.0 (X11)"},
			"euro-signs":    {strings.Repeat("€", 200), strings.Repeat("€", 170)}, // 600 bytes; 512 cuts the 171st
			"ascii":         {strings.Repeat("a", 600), strings.Repeat("a", 512)},
		} {
			_, err := e.writer.Identify(e.ctx, db, models.IdentifyInput{
				AppPublicID: e.app.PublicID, DeviceID: device, Email: device + "@example.com",
				Origin: "https://site.example", UserAgent: tc.sent,
			})
			if err != nil {
				t.Fatalf("%s: %v", device, err)
			}
			var d models.Device
			if err := db.Where("app_id = ? AND device_id = ?", e.app.ID, device).Take(&d).Error; err != nil {
				t.Fatal(err)
			}
			if d.UserAgent != tc.stored {
				t.Errorf("%s: stored user agent %q (%d bytes), want %q", device, d.UserAgent, len(d.UserAgent), tc.stored)
			}
		}
	})
}
