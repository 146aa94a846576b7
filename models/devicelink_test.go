package models_test

import (
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/crumbs-dev/crumbs/models"
	"github.com/crumbs-dev/crumbs/models/modelstest"
	"gorm.io/gorm"
)

// LinkDevices joins the device of a pair that has no lead to the other's
// lead, storing it if it never was; it moves no device that has a lead,
// makes nothing of a pair neither of which has one, and needs the app's
// secret key.
func TestLinkDevices(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *gorm.DB) {
		e := newEnv(t, db)
		identify := func(device, email string) {
			t.Helper()
			if _, err := e.writer.Identify(e.ctx, db, models.IdentifyInput{AppPublicID: e.app.PublicID, DeviceID: device, Email: email, Secret: e.secret}); err != nil {
				t.Fatal(err)
			}
		}
		e.mustTrigger(models.TriggerInput{Code: "view", DeviceID: "b-1", Secret: e.secret})
		identify("u-1", "ann@example.com")
		identify("b-2", "bob@example.com")
		identify("u-2", "cat@example.com")
		identify("b-3", "dan@example.com")
		link := func(a, b, secret string) models.DeviceLinkInput {
			return models.DeviceLinkInput{AppPublicID: e.app.PublicID, DeviceID: a, UserDeviceID: b, Secret: secret, UserAgent: "Firefox"}
		}
		errs, err := e.writer.LinkDevices(e.ctx, db, []models.DeviceLinkInput{
			link("b-1", "u-1", e.secret), // the browser joins the user's lead
			link("b-1", "u-1", e.secret), // twice in a call: once
			link("b-2", "u-2", e.secret), // both have a lead: neither moves
			link("b-3", "u-3", e.secret), // the browser has a lead, the user none: the user does not join it
			link("b-4", "u-4", e.secret), // neither has one, nor is stored
			link("b-5", "u-1", e.secret), // never seen: stored, on the lead
			link("b-6", "u-1", ""),
			link("b-7", "u-1", "sk_wrong"),
			link("b-8", "..", e.secret),
		})
		if err != nil {
			t.Fatal(err)
		}
		for i, err := range errs[:6] {
			if err != nil {
				t.Errorf("link %d: %v", i, err)
			}
		}
		for i := 6; i < 8; i++ {
			if !errors.Is(errs[i], models.ErrUnauthenticated) {
				t.Errorf("link %d: %v, want UNAUTHENTICATED", i, errs[i])
			}
		}
		if bad := (*models.InvalidError)(nil); !errors.As(errs[8], &bad) || bad.Field != "userDeviceId" {
			t.Errorf("link 8: %v", errs[8])
		}
		var rows []struct {
			DeviceID, UserAgent string
			Email               *string
		}
		db.Table("devices").Select("devices.device_id, devices.user_agent, leads.email").Joins("LEFT JOIN leads ON leads.id = devices.lead_id").
			Where("devices.app_id = ?", e.app.ID).Scan(&rows)
		got := map[string]string{}
		for _, r := range rows {
			got[r.DeviceID] = "-"
			if r.Email != nil {
				got[r.DeviceID] = *r.Email
			}
			if r.DeviceID == "b-5" && r.UserAgent != "Firefox" {
				t.Errorf("b-5 stored with user agent %q", r.UserAgent)
			}
		}
		want := map[string]string{"b-1": "ann@example.com", "u-1": "ann@example.com", "b-2": "bob@example.com", "u-2": "cat@example.com",
			"b-3": "dan@example.com", "b-5": "ann@example.com"}
		for d, email := range want {
			if got[d] != email {
				t.Errorf("%s belongs to %q, want %q", d, got[d], email)
			}
		}
		for _, d := range []string{"u-3", "b-4", "u-4", "b-6", "b-7", "b-8"} {
			if _, ok := got[d]; ok {
				t.Errorf("%s stored", d)
			}
		}
		var moves int64
		db.Model(&models.DeviceMove{}).Where("app_id = ?", e.app.ID).Count(&moves)
		if moves != 0 {
			t.Errorf("%d moves recorded", moves)
		}
	})
}

// A link racing the erasure of the lead it joins never leaves a device on
// an erased lead: the device joins before the erasure and goes with the
// lead, or finds the lead gone and stays as it was.
func TestLinkDevicesRacingEraseLead(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *gorm.DB) {
		e := newEnv(t, db)
		for round := range 20 {
			browser, user, email := fmt.Sprintf("b-%d", round), fmt.Sprintf("u-%d", round), fmt.Sprintf("l%d@example.com", round)
			e.mustTrigger(models.TriggerInput{Code: "view", DeviceID: browser, Secret: e.secret})
			if _, err := e.writer.Identify(e.ctx, db, models.IdentifyInput{AppPublicID: e.app.PublicID, DeviceID: user, Email: email, Secret: e.secret}); err != nil {
				t.Fatal(err)
			}
			var wg sync.WaitGroup
			wg.Add(2)
			go func() {
				defer wg.Done()
				if _, err := models.EraseLead(e.ctx, db, e.owner, e.app.PublicID, email); err != nil {
					t.Error(err)
				}
			}()
			go func() {
				defer wg.Done()
				in := models.DeviceLinkInput{AppPublicID: e.app.PublicID, DeviceID: browser, UserDeviceID: user, Secret: e.secret}
				if errs, err := e.writer.LinkDevices(e.ctx, db, []models.DeviceLinkInput{in}); err != nil || errs[0] != nil {
					t.Error(err, errs)
				}
			}()
			wg.Wait()
			var orphans int64
			db.Table("devices").Where("app_id = ? AND lead_id IS NOT NULL AND lead_id NOT IN (SELECT id FROM leads)", e.app.ID).Count(&orphans)
			if orphans != 0 {
				t.Fatalf("round %d: %d devices on an erased lead", round, orphans)
			}
		}
	})
}

// More joins than one transaction takes are all written.
func TestLinkDevicesManyJoins(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *gorm.DB) {
		e := newEnv(t, db)
		lead, err := e.writer.Identify(e.ctx, db, models.IdentifyInput{AppPublicID: e.app.PublicID, DeviceID: "user", Email: "ann@example.com", Secret: e.secret})
		if err != nil {
			t.Fatal(err)
		}
		var ins []models.DeviceLinkInput
		for i := range 250 {
			ins = append(ins, models.DeviceLinkInput{AppPublicID: e.app.PublicID, DeviceID: fmt.Sprintf("browser-%d", i), UserDeviceID: "user", Secret: e.secret})
		}
		if _, err := e.writer.LinkDevices(e.ctx, db, ins); err != nil {
			t.Fatal(err)
		}
		var n int64
		db.Model(&models.Device{}).Where("app_id = ? AND lead_id = ?", e.app.ID, lead.Lead.ID).Count(&n)
		if n != 251 {
			t.Errorf("%d devices on the lead, want 251", n)
		}
	})
}
