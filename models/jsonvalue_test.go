package models_test

import (
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/crumbs-dev/crumbs/models"
	"github.com/crumbs-dev/crumbs/models/modelstest"
	"gorm.io/gorm"
)

// nested returns an object nested levels deep: {"a":{"a":...1}}.
func nested(levels int) map[string]any {
	var v any = 1.0
	for range levels {
		v = map[string]any{"a": v}
	}
	return v.(map[string]any)
}

// TestJSONLimitsAtTheDoor checks that properties and lead fields are held to
// the same rules on both stores, and that what passes reads back as sent.
func TestJSONLimitsAtTheDoor(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *gorm.DB) {
		e := newEnv(t, db)
		refused := []struct {
			name  string
			value map[string]any
			msg   string
		}{
			{"overflowing number", map[string]any{"n": json.Number("1e309")}, `"n": numbers must be finite`},
			{"negative overflow", map[string]any{"list": []any{1.0, json.Number("-2e400")}}, `"list.1": numbers must be finite`},
			{"NaN", map[string]any{"n": math.NaN()}, "numbers must be finite"},
			{"infinity", map[string]any{"x": map[string]any{"n": math.Inf(1)}}, `"x.n": numbers must be finite`},
			{"not a number", map[string]any{"n": json.Number("Infinity")}, "numbers must be finite"},
			{"nine levels", nested(9), "nest at most 8 levels"},
			{"nine levels of arrays", map[string]any{"a": []any{[]any{[]any{[]any{[]any{[]any{[]any{[]any{1.0}}}}}}}}}, "nest at most 8 levels"},
			{"long key", map[string]any{strings.Repeat("k", 129): 1.0}, "keys must be 1 to 128 bytes"},
			{"empty key", map[string]any{"": 1.0}, "keys must be 1 to 128 bytes"},
			{"control character in key", map[string]any{"a\x00b": 1.0}, "without control characters"},
			{"newline in key", map[string]any{"x": map[string]any{"a\nb": 1.0}}, "without control characters"},
			{"long string", map[string]any{"s": strings.Repeat("s", 2049)}, "strings must be at most 2048 bytes"},
		}
		for _, tc := range refused {
			res := e.trigger(models.TriggerInput{Code: "view", Properties: tc.value})
			wantField(t, res.Err, "properties")
			if !strings.Contains(res.Err.Error(), tc.msg) {
				t.Errorf("%s: %q does not say %q", tc.name, res.Err, tc.msg)
			}
			_, err := models.Identify(e.ctx, db, e.writer.Catalog(), models.IdentifyInput{
				AppPublicID: e.app.PublicID, DeviceID: "d", Email: "limits@example.com", Secret: e.secret, Fields: tc.value,
			})
			wantField(t, err, "fields")
		}
		if n := e.countEvents("1 = 1"); n != 0 {
			t.Fatalf("%d events stored from refused properties", n)
		}
		var leads int64
		db.Model(&models.Lead{}).Where("app_id = ?", e.app.ID).Count(&leads)
		if leads != 0 {
			t.Fatalf("%d leads stored from refused fields", leads)
		}

		// At the limits: eight levels, a 128-byte key, a 2048-byte string,
		// control characters inside strings (stored escaped), invalid UTF-8
		// replaced, integers beyond 2^53 kept digit for digit.
		ok := map[string]any{
			"deep": nested(7), strings.Repeat("k", 128): strings.Repeat("s", 2048),
			"text": "tab\tnull\x00bell\a", "bytes": "a\xffb", "id": json.Number("12345678901234567890"),
			"small": json.Number("1e-400"), "big": 1.7e308,
		}
		id := e.mustTrigger(models.TriggerInput{Code: "view", Properties: ok}).EventID
		var raw string
		if err := db.Raw("SELECT properties FROM events WHERE id = ?", id).Scan(&raw).Error; err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(raw, `"id":12345678901234567890`) || !strings.Contains(raw, "\"bytes\":\"a\uFFFDb\"") || !strings.Contains(raw, `\u0000`) {
			t.Fatalf("stored %s", raw)
		}
		var ev models.Event
		if err := db.Take(&ev, id).Error; err != nil {
			t.Fatal(err)
		}
		// Numbers read back as stored, digit for digit.
		if ev.Properties["text"] != "tab\tnull\x00bell\a" || ev.Properties["small"] != json.Number("1e-400") ||
			ev.Properties["id"] != json.Number("12345678901234567890") || fmt.Sprint(ev.Properties["deep"]) != fmt.Sprint(nested(7)) {
			t.Fatalf("read back %v", ev.Properties)
		}
		// A property rule reaches into it on both stores.
		page, err := models.BrowseEvents(e.ctx, db, e.app, models.BrowseInput{First: 10, Rules: []models.Rule{
			{Field: "properties.deep.a.a.a.a", Operator: models.OpExists},
		}})
		if err != nil || len(page.Events) != 1 {
			t.Fatalf("rule into the deep property: %v, %d events", err, len(page.Events))
		}
	})
}

// TestLeadFieldsStayBounded checks that merging fields call after call cannot
// grow a lead past the size one call may send.
func TestLeadFieldsStayBounded(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *gorm.DB) {
		e := newEnv(t, db)
		identify := func(fields map[string]any) error {
			_, err := models.Identify(e.ctx, db, e.writer.Catalog(), models.IdentifyInput{
				AppPublicID: e.app.PublicID, DeviceID: "grow", Email: "grow@example.com", Secret: e.secret, Fields: fields,
			})
			return err
		}
		chunk := strings.Repeat("x", 2000)
		for i := range 2 {
			if err := identify(map[string]any{fmt.Sprint("f", i): chunk, fmt.Sprint("g", i): chunk}); err != nil {
				t.Fatalf("call %d: %v", i, err)
			}
		}
		wantField(t, identify(map[string]any{"f2": chunk, "g2": chunk}), "fields")
		lead, err := models.LeadByEmail(e.ctx, db, e.owner, e.app.PublicID, "grow@example.com")
		if err != nil || len(lead.Fields) != 4 {
			t.Fatalf("lead after the refused merge: %v %d fields", err, len(lead.Fields))
		}
		// Removing fields (null) makes room again.
		if err := identify(map[string]any{"f0": nil, "g0": nil, "f2": chunk}); err != nil {
			t.Fatal(err)
		}
	})
}

// TestKeylessIdentifyCannotFillALead: an identify without the secret key
// (a browser's, whose Origin anyone may claim) may grow a lead's fields to
// 4 KiB only. It could fill any lead's fields to the 8 KiB limit, after
// which the app's own identifies with fields, and webhook events with
// fields for that lead (refused, so not stored), were BAD_USER_INPUT.
func TestKeylessIdentifyCannotFillALead(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *gorm.DB) {
		e := newEnv(t, db)
		chunk := strings.Repeat("x", 1900)
		identify := func(device, secret string, fields map[string]any) error {
			_, err := e.writer.Identify(e.ctx, db, models.IdentifyInput{
				AppPublicID: e.app.PublicID, DeviceID: device, Email: "victim@example.com", Secret: secret,
				Origin: "https://site.example", Fields: fields,
			})
			return err
		}
		// A browser may grow them to 4 KiB...
		if err := identify("attacker", "", map[string]any{"a": chunk, "b": chunk}); err != nil {
			t.Fatal(err)
		}
		// ...not past it, in one call or in several.
		wantField(t, identify("attacker", "", map[string]any{"c": chunk}), "fields")
		wantField(t, identify("attacker", "", map[string]any{"a": chunk + chunk}), "fields")
		// It may still identify without fields, replace or remove its own.
		if err := identify("attacker", "", nil); err != nil {
			t.Fatal(err)
		}
		if err := identify("attacker", "", map[string]any{"a": "short", "b": nil}); err != nil {
			t.Fatal(err)
		}
		if err := identify("attacker", "", map[string]any{"b": chunk, "c": chunk}); err != nil {
			t.Fatal(err)
		}
		// The app's server, and a webhook, still have room for 4 KiB more.
		if err := identify("server", e.secret, map[string]any{"plan": chunk}); err != nil {
			t.Fatalf("the app's identify after a browser's: %v", err)
		}
		res := e.writer.TriggerLeadEvents(e.ctx, db, []models.LeadEvent{{
			Trigger: models.TriggerInput{AppPublicID: e.app.PublicID, DeviceID: "lead-hook", Code: "view", Verified: true},
			Email:   "victim@example.com", Fields: map[string]any{"invoice": chunk},
		}})
		if res[0].Err != nil || !res[0].Accepted {
			t.Fatalf("the webhook's event after a browser's identify: %+v", res[0])
		}
		// A lead the servers made larger than 4 KiB: a browser may change
		// it, not grow it.
		if err := identify("attacker", "", map[string]any{"invoice": "paid"}); err != nil {
			t.Fatal(err)
		}
		wantField(t, identify("attacker", "", map[string]any{"invoice": chunk + "x"}), "fields")
		lead, err := models.LeadByEmail(e.ctx, db, e.owner, e.app.PublicID, "victim@example.com")
		if err != nil {
			t.Fatal(err)
		}
		if got := slices.Sorted(maps.Keys(lead.Fields)); !slices.Equal(got, []string{"a", "b", "c", "invoice", "plan"}) {
			t.Fatalf("fields %v", got)
		}
	})
}
