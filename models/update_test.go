package models_test

import (
	"fmt"
	"sync"
	"testing"

	"github.com/crumbs-dev/crumbs/models"
	"github.com/crumbs-dev/crumbs/models/modelstest"
	"gorm.io/gorm"
)

// TestConcurrentEditsKeepEachOthersFields edits different fields of one
// definition and one app at the same time, many times over: every edit must
// survive, so a description edit never re-enables a definition disabled
// meanwhile.
func TestConcurrentEditsKeepEachOthersFields(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *gorm.DB) {
		e := newEnv(t, db)
		def := e.define("edited")
		id := models.FormatID(def.ID)
		for round := range 40 {
			if _, err := models.UpdateEventDefinition(e.ctx, db, e.owner, id, models.EventDefinitionInput{Enabled: ptr(true), Color: ptr("#000000")}); err != nil {
				t.Fatal(err)
			}
			desc, color := fmt.Sprint("round ", round), fmt.Sprintf("#0000%02X", round)
			name, origin := fmt.Sprint("App ", round), fmt.Sprintf("https://r%d.example", round)
			var wg sync.WaitGroup
			errs := make(chan error, 4)
			wg.Go(func() {
				_, err := models.UpdateEventDefinition(e.ctx, db, e.owner, id, models.EventDefinitionInput{Description: &desc})
				errs <- err
			})
			wg.Go(func() {
				_, err := models.UpdateEventDefinition(e.ctx, db, e.owner, id, models.EventDefinitionInput{Enabled: ptr(false), Color: &color})
				errs <- err
			})
			wg.Go(func() {
				_, err := models.UpdateApp(e.ctx, db, e.owner, e.app.PublicID, models.AppInput{Name: &name})
				errs <- err
			})
			wg.Go(func() {
				_, err := models.UpdateApp(e.ctx, db, e.owner, e.app.PublicID, models.AppInput{AllowedOrigins: []string{origin}})
				errs <- err
			})
			wg.Wait()
			close(errs)
			for err := range errs {
				if err != nil {
					t.Fatal(err)
				}
			}
			got, err := models.EventDefinitionByID(e.ctx, db, e.owner, id, models.RoleViewer)
			if err != nil {
				t.Fatal(err)
			}
			if got.Enabled || got.Description != desc || got.Color != color {
				t.Fatalf("round %d: enabled=%v description=%q color=%s; want disabled, %q, %s", round, got.Enabled, got.Description, got.Color, desc, color)
			}
			app, err := models.AppByPublicID(e.ctx, db, e.app.PublicID)
			if err != nil {
				t.Fatal(err)
			}
			if app.Name != name || len(app.AllowedOrigins) != 1 || app.AllowedOrigins[0] != origin {
				t.Fatalf("round %d: app %q %v; want %q [%s]", round, app.Name, app.AllowedOrigins, name, origin)
			}
		}
	})
}
