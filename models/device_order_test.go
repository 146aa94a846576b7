package models_test

import (
	"slices"
	"testing"
	"time"

	"github.com/crumbs-dev/crumbs/models"
	"github.com/crumbs-dev/crumbs/models/modelstest"
	"gorm.io/gorm"
)

// A lead's devices list first seen first, and devices first seen at the
// same time by device id, on every store. The order had no tie-breaker:
// SQLite listed such devices as they were stored (d-b, d-c, d-a), MariaDB
// by its index (d-a, d-b, d-c).
func TestLeadDevicesOrderAlike(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *gorm.DB) {
		e := newEnv(t, db)
		at := models.Now().Add(-time.Minute)
		earlier := at.Add(-time.Second)
		for _, c := range []struct {
			device string
			at     time.Time
		}{{"d-b", at}, {"d-c", at}, {"d-z", earlier}, {"d-a", at}} {
			e.mustTrigger(models.TriggerInput{Secret: e.secret, Code: "view", DeviceID: c.device, OccurredAt: &c.at})
		}
		var lead *models.Lead
		for _, d := range []string{"d-b", "d-c", "d-z", "d-a"} {
			res, err := models.Identify(e.ctx, db, models.NewCatalog(db, 0), models.IdentifyInput{AppPublicID: e.app.PublicID, Secret: e.secret, DeviceID: d, Email: "ana@example.com"})
			if err != nil {
				t.Fatal(err)
			}
			lead = res.Lead
		}
		byLead, err := models.DevicesByLead(e.ctx, db, []uint64{lead.ID})
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, d := range byLead[lead.ID] {
			got = append(got, d.DeviceID)
		}
		if want := []string{"d-z", "d-a", "d-b", "d-c"}; !slices.Equal(got, want) {
			t.Fatalf("devices %q, want %q", got, want)
		}
	})
}
