package models_test

import (
	"strings"
	"testing"

	"github.com/crumbs-dev/crumbs/models"
	"github.com/crumbs-dev/crumbs/models/modelstest"
	"gorm.io/gorm"
)

// The lead search takes up to 254 characters, as it says, so a lead's
// whole name (up to 200 characters) can be searched for. It counted bytes:
// a name of 100 CJK characters (300 bytes) was stored, and searching for
// it was refused "must be at most 254 characters".
func TestLeadSearchCountsCharacters(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *gorm.DB) {
		e := newEnv(t, db)
		name := strings.Repeat("山田", 100)
		if _, err := models.Identify(e.ctx, db, models.NewCatalog(db, 0), models.IdentifyInput{AppPublicID: e.app.PublicID, Secret: e.secret,
			DeviceID: "d-1", Email: "yamada@example.com", Name: &name}); err != nil {
			t.Fatal(err)
		}
		page, err := models.Leads(e.ctx, db, e.owner, e.app.PublicID, name, 10, "")
		if err != nil {
			t.Fatal(err)
		}
		if len(page.Leads) != 1 || page.Leads[0].Email != "yamada@example.com" {
			t.Fatalf("%d leads found by their whole name", len(page.Leads))
		}
		_, err = models.Leads(e.ctx, db, e.owner, e.app.PublicID, strings.Repeat("山", 255), 10, "")
		wantField(t, err, "search")
	})
}
