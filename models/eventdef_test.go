package models_test

import (
	"strings"
	"testing"

	"github.com/crumbs-dev/crumbs/models"
	"github.com/crumbs-dev/crumbs/models/modelstest"
	"gorm.io/gorm"
)

func TestValidateCode(t *testing.T) {
	for _, tc := range []struct {
		code string
		ok   bool
	}{
		{"trial_click", true},
		{"pdf-download.v2", true},
		{"a", true},
		{strings.Repeat("a", 64), true},
		{strings.Repeat("a", 65), false},
		{"", false},
		{"Trial", false},
		{"trial click", false},
		{"trial<script>", false},
		{"é", false},
	} {
		err := models.ValidateCode(tc.code)
		if (err == nil) != tc.ok {
			t.Errorf("ValidateCode(%q) = %v, want ok=%v", tc.code, err, tc.ok)
		}
		if err != nil {
			wantField(t, err, "code")
		}
	}
}

func TestEventDefinitionRules(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *gorm.DB) {
		e := newEnv(t, db)

		defs, err := models.EventDefinitions(e.ctx, db, e.app.ID, nil)
		if err != nil {
			t.Fatal(err)
		}
		var codes []string
		for _, d := range defs {
			codes = append(codes, d.Code)
			if !d.BuiltIn || !d.Enabled {
				t.Errorf("built-in %s: builtIn=%v enabled=%v", d.Code, d.BuiltIn, d.Enabled)
			}
		}
		if strings.Join(codes, ",") != "click,submit,view" {
			t.Fatalf("built-in codes = %v", codes)
		}

		for _, tc := range []struct {
			name  string
			in    models.EventDefinitionInput
			field string
		}{
			{"no code", models.EventDefinitionInput{Name: ptr("x")}, "code"},
			{"bad code", models.EventDefinitionInput{Code: ptr("Bad Code"), Name: ptr("x")}, "code"},
			{"no name", models.EventDefinitionInput{Code: ptr("ok")}, "name"},
			{"blank name", models.EventDefinitionInput{Code: ptr("ok"), Name: ptr("  ")}, "name"},
			{"bad color", models.EventDefinitionInput{Code: ptr("ok"), Name: ptr("x"), Color: ptr("red")}, "color"},
			{"short color", models.EventDefinitionInput{Code: ptr("ok"), Name: ptr("x"), Color: ptr("#FFF")}, "color"},
			{"long description", models.EventDefinitionInput{Code: ptr("ok"), Name: ptr("x"), Description: ptr(strings.Repeat("d", 2001))}, "description"},
		} {
			_, err := models.CreateEventDefinition(e.ctx, db, e.owner, e.app.PublicID, tc.in)
			wantField(t, err, tc.field)
		}

		def, err := models.CreateEventDefinition(e.ctx, db, e.owner, e.app.PublicID, models.EventDefinitionInput{
			Code: ptr("trial_click"), Name: ptr("Trial click"), Color: ptr("#ff0000"), Description: ptr("Clicked the trial button"),
		})
		if err != nil {
			t.Fatal(err)
		}
		if def.Color != "#FF0000" || !def.Enabled || def.BuiltIn {
			t.Fatalf("created %+v", def)
		}
		_, err = models.CreateEventDefinition(e.ctx, db, e.owner, e.app.PublicID, models.EventDefinitionInput{Code: ptr("trial_click"), Name: ptr("Again")})
		wantCode(t, err, models.CodeConflict)
		_, err = models.UpdateEventDefinition(e.ctx, db, e.owner, idOf(def), models.EventDefinitionInput{Code: ptr("view")})
		wantCode(t, err, models.CodeConflict)

		// The code may change while never triggered...
		def, err = models.UpdateEventDefinition(e.ctx, db, e.owner, idOf(def), models.EventDefinitionInput{Code: ptr("trial_start")})
		if err != nil || def.Code != "trial_start" {
			t.Fatalf("rename before trigger: %v %+v", err, def)
		}
		e.mustTrigger(models.TriggerInput{Code: "trial_start"})
		// ...but not after, while other fields still may.
		_, err = models.UpdateEventDefinition(e.ctx, db, e.owner, idOf(def), models.EventDefinitionInput{Code: ptr("trial_again")})
		wantCode(t, err, models.CodeEventAlreadyTriggered)
		def, err = models.UpdateEventDefinition(e.ctx, db, e.owner, idOf(def), models.EventDefinitionInput{Name: ptr("Trial started"), Description: ptr("Started a trial")})
		if err != nil || def.Name != "Trial started" || def.TriggerCount != 1 || def.FirstTriggeredAt == nil || def.LastTriggeredAt == nil {
			t.Fatalf("update after trigger: %v %+v", err, def)
		}

		_, err = models.DeleteEventDefinition(e.ctx, db, e.owner, idOf(def))
		wantCode(t, err, models.CodeEventAlreadyTriggered)
		if _, err := models.EventDefinitionByID(e.ctx, db, e.owner, idOf(def), models.RoleViewer); err != nil {
			t.Fatalf("triggered definition is gone: %v", err)
		}

		unused := e.define("never_used")
		if _, err := models.DeleteEventDefinition(e.ctx, db, e.owner, idOf(unused)); err != nil {
			t.Fatal(err)
		}
		_, err = models.EventDefinitionByID(e.ctx, db, e.owner, idOf(unused), models.RoleViewer)
		wantCode(t, err, models.CodeNotFound)
		_, err = models.DeleteEventDefinition(e.ctx, db, e.owner, idOf(unused))
		wantCode(t, err, models.CodeNotFound)
		_, err = models.DeleteEventDefinition(e.ctx, db, e.owner, "abc")
		wantField(t, err, "id")
	})
}

func TestDisableKeepsHistoryAndRefuses(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *gorm.DB) {
		e := newEnv(t, db)
		def := e.define("pdf_download")
		e.mustTrigger(models.TriggerInput{Code: "pdf_download"})

		if _, err := models.UpdateEventDefinition(e.ctx, db, e.owner, idOf(def), models.EventDefinitionInput{Enabled: ptr(false)}); err != nil {
			t.Fatal(err)
		}
		res := e.trigger(models.TriggerInput{Code: "pdf_download"})
		wantCode(t, res.Err, models.CodeEventDisabled)
		if res.Accepted {
			t.Fatal("disabled trigger accepted")
		}
		if n := e.countEvents("definition_id = ?", def.ID); n != 1 {
			t.Fatalf("events after disabled trigger = %d, want 1 (history kept, nothing new)", n)
		}
		disabled := false
		list, _ := models.EventDefinitions(e.ctx, db, e.app.ID, &disabled)
		if len(list) != 1 || list[0].Code != "pdf_download" {
			t.Fatalf("disabled filter = %+v", list)
		}

		if _, err := models.UpdateEventDefinition(e.ctx, db, e.owner, idOf(def), models.EventDefinitionInput{Enabled: ptr(true)}); err != nil {
			t.Fatal(err)
		}
		e.mustTrigger(models.TriggerInput{Code: "pdf_download"})
		if n := e.countEvents("definition_id = ?", def.ID); n != 2 {
			t.Fatalf("events after re-enable = %d, want 2", n)
		}
	})
}

func idOf(d *models.EventDefinition) string { return models.FormatID(d.ID) }
