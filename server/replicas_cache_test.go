package main

import (
	"context"
	"testing"
	"time"

	"github.com/99designs/gqlgen/client"
	"github.com/crumbs-dev/crumbs/models"
	"github.com/crumbs-dev/crumbs/models/modelstest"
	"gorm.io/gorm"
)

// replicaOf starts another replica on db's store, in this process: a
// database handle of its own, so its catalog, sign-in cache, recently
// stored devices, writer and rate limits are its own too (caches are
// cleared through the handle a write went through).
func replicaOf(t *testing.T, db *gorm.DB, mutate ...func(*config)) *api {
	t.Helper()
	var url string
	if db.Dialector.Name() == "sqlite" {
		var files []struct {
			Seq        int
			Name, File string
		}
		if err := db.Raw("PRAGMA database_list").Scan(&files).Error; err != nil || len(files) == 0 {
			t.Fatalf("database_list: %v %v", files, err)
		}
		url = "sqlite:" + files[0].File
	} else {
		url = modelstest.MySQLDSN(t)
	}
	other, err := models.Open(context.Background(), url, models.DBOptions{MaxOpenConns: 4})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { closeGorm(other) })
	return newAPI(t, other, mutate...)
}

// A code deleted and defined again on one replica is stored at once by a
// replica whose catalog still holds the deleted definition: its writer
// finds the definition gone under the row lock and takes the one that now
// has the code. It was refused UNKNOWN_EVENT_CODE, and counted as a typo,
// although the code was defined.
func TestACodeDefinedAgainIsStoredOnAnotherReplica(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *gorm.DB) {
		a := newAPI(t, db)
		b := replicaOf(t, db, func(c *config) { c.CacheTTL = time.Hour })
		appID, secret := a.createApp("Defined again")
		var def struct{ CreateEventDefinition struct{ ID string } }
		create := `mutation($a: ID!) { createEventDefinition(input: {appId: $a, code: "signup", name: "Signup"}) { id } }`
		a.ok(create, &def, client.Var("a", appID))
		// b reads the app and its definitions into its catalog.
		b.ok(`mutation($a: ID!) { identify(input: {appId: $a, deviceId: "d-1", email: "lin@example.com"}) { moved } }`, &map[string]any{}, client.Var("a", appID), as(secret))
		a.ok(`mutation($id: ID!) { deleteEventDefinition(id: $id) { id } }`, &map[string]any{}, client.Var("id", def.CreateEventDefinition.ID))
		a.ok(create, &def, client.Var("a", appID))

		var out triggerOut
		b.ok(triggerMutation, &out, client.Var("in", map[string]any{"appId": appID, "deviceId": "d-1", "code": "signup"}), as(secret))
		b.settle()
		var app struct {
			App struct {
				EventDefinitions []struct {
					ID, Code     string
					TriggerCount int
				}
				UnknownCodes []struct{ Code string }
			}
		}
		a.ok(`query($a: ID!) { app(id: $a) { eventDefinitions { id code triggerCount } unknownCodes { code } } }`, &app, client.Var("a", appID))
		counted := 0
		for _, d := range app.App.EventDefinitions {
			if d.Code == "signup" && d.ID == def.CreateEventDefinition.ID {
				counted = d.TriggerCount
			}
		}
		if counted != 1 || len(app.App.UnknownCodes) != 0 {
			t.Fatalf("definitions %+v, unknown codes %+v", app.App.EventDefinitions, app.App.UnknownCodes)
		}
		var stored []models.Event
		db.Where("device_id = ?", "d-1").Find(&stored)
		if len(stored) != 1 || models.FormatID(stored[0].DefinitionID) != def.CreateEventDefinition.ID {
			t.Fatalf("stored %+v", stored)
		}
	})
}
