package models_test

import (
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/crumbs-dev/crumbs/models"
	"github.com/crumbs-dev/crumbs/models/modelstest"
	"gorm.io/gorm"
)

var updateGolden = flag.Bool("update", false, "rewrite the golden files of the lead narrative")

// The lead story of a fixed timeline: three visits over two devices, one
// of which moved from another lead, a definition disabled after its event,
// markup in properties and fields kept as text. The narrative and the
// context must equal the golden files on both stores.
func TestLeadNarrativeGolden(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *gorm.DB) {
		e := newQuietEnv(t, db) // Europe/Amsterdam
		define := func(code, name, desc string) *models.EventDefinition {
			d, err := models.CreateEventDefinition(e.ctx, db, e.owner, e.app.PublicID, models.EventDefinitionInput{Code: &code, Name: &name, Description: &desc})
			if err != nil {
				t.Fatal(err)
			}
			return d
		}
		define("pricing_view", "Pricing view", "the visitor opened the pricing page, comparing plans")
		define("trial_click", "Trial click", `the visitor clicked "Start free trial" on the pricing page`)
		promo := define("old_promo", "Old promo", "the visitor opened last season's promotion")
		define("docs_read", "Docs read", "")
		at := func(s string) *time.Time {
			v, err := time.Parse(time.RFC3339, s)
			if err != nil {
				t.Fatal(err)
			}
			return &v
		}
		trig := func(device, code, when, url string, props map[string]any) {
			e.mustTrigger(models.TriggerInput{Secret: e.secret, DeviceID: device, Code: code, OccurredAt: at(when), URL: url, Title: "Crumbs · " + code, Properties: props})
		}
		identify := func(device, email string, name *string, fields map[string]any) *models.Lead {
			res, err := models.Identify(e.ctx, db, e.writer.Catalog(), models.IdentifyInput{AppPublicID: e.app.PublicID, Secret: e.secret,
				DeviceID: device, Email: email, Name: name, Fields: fields})
			if err != nil {
				t.Fatal(err)
			}
			return res.Lead
		}
		// Visit 1 (laptop), then visit 2 across both devices, then visit 3.
		trig("laptop", "pricing_view", "2026-11-03T13:02:00Z", "https://example.com/pricing", nil)
		trig("laptop", "trial_click", "2026-11-03T13:05:30Z", "https://example.com/pricing",
			map[string]any{"plan": "pro", "label": "<b>Start</b> free trial"})
		trig("laptop", "old_promo", "2026-11-03T13:20:00Z", "https://example.com/promo?utm_source=mail", nil)
		trig("phone", "docs_read", "2026-11-05T08:00:00Z", "https://example.com/docs/setup", map[string]any{"seconds": 95})
		trig("laptop", "trial_click", "2026-11-05T08:12:00Z", "https://example.com/pricing", map[string]any{"plan": "team"})
		trig("phone", "pricing_view", "2026-11-09T17:30:00Z", "https://example.com/pricing", nil)
		// The phone belonged to someone else first; then Ann signs in on both.
		identify("phone", "prior@example.com", nil, map[string]any{"secret": "not Ann's"})
		identify("laptop", "ann@example.com", ptr("Ann Example"), map[string]any{"company": "Acme <Ltd>", "plan": "pro"})
		lead := identify("phone", "ann@example.com", nil, nil)
		off := false
		if _, err := models.UpdateEventDefinition(e.ctx, db, e.owner, models.FormatID(promo.ID), models.EventDefinitionInput{Enabled: &off}); err != nil {
			t.Fatal(err)
		}

		text, err := models.LeadNarrative(e.ctx, db, lead)
		if err != nil {
			t.Fatal(err)
		}
		c, err := models.LeadContextOf(e.ctx, db, lead)
		if err != nil {
			t.Fatal(err)
		}
		ctxJSON, err := json.MarshalIndent(c, "", "  ")
		if err != nil {
			t.Fatal(err)
		}
		golden(t, "lead_narrative.txt", text)
		golden(t, "lead_context.json", string(ctxJSON)+"\n")
		if strings.Contains(text+string(ctxJSON), "not Ann's") || strings.Contains(text+string(ctxJSON), "prior@example.com") {
			t.Fatal("the story holds another lead's personal fields")
		}
		again, _ := models.LeadNarrative(e.ctx, db, lead)
		if again != text {
			t.Fatal("the narrative is not deterministic")
		}
	})
}

// A long history keeps the most recent visits within the bound.
func TestLeadNarrativeIsBounded(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *gorm.DB) {
		e := newQuietEnv(t, db)
		start := time.Date(2026, 10, 1, 8, 0, 0, 0, time.UTC)
		var batch []models.TriggerInput
		for i := range 400 {
			when := start.Add(time.Duration(i) * 2 * time.Hour) // every event its own visit
			batch = append(batch, models.TriggerInput{AppPublicID: e.app.PublicID, Secret: e.secret, DeviceID: "d", Code: "view", OccurredAt: &when,
				URL: "https://example.com/a/rather/long/path/to/make/each/visit/take/some/room/" + strings.Repeat("x", 40)})
		}
		for _, r := range e.writer.Trigger(e.ctx, batch) {
			if r.Err != nil {
				t.Fatal(r.Err)
			}
		}
		res, err := models.Identify(e.ctx, db, e.writer.Catalog(), models.IdentifyInput{AppPublicID: e.app.PublicID, Secret: e.secret, DeviceID: "d", Email: "long@example.com"})
		if err != nil {
			t.Fatal(err)
		}
		text, err := models.LeadNarrative(e.ctx, db, res.Lead)
		if err != nil {
			t.Fatal(err)
		}
		if len(text) > models.NarrativeMaxBytes || !strings.Contains(text, "earlier visits left out") || !strings.Contains(text, "Visit 400,") || strings.Contains(text, "Visit 1,") {
			t.Fatalf("%d bytes:\n%s", len(text), text)
		}
	})
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", "narrative", name)
	if *updateGolden {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to write it)", err)
	}
	if got != string(want) {
		t.Fatalf("%s differs from the golden file:\n--- got\n%s\n--- want\n%s", name, got, want)
	}
}

// A visitor's bidi controls (an unmatched U+202E RIGHT-TO-LEFT OVERRIDE in a
// name, a field, a URL or a property, all of which a browser may send
// without the key) would reorder the story's own words after them, up to
// the end of the line, for the reader and for the model fed the story: it
// leaves them out, and keeps the rest of each value.
func TestLeadNarrativeLeavesOutBidiControls(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *gorm.DB) {
		e := newQuietEnv(t, db)
		e.mustTrigger(models.TriggerInput{DeviceID: "d", Code: "view", Origin: "https://example.com", URL: "https://example.com/p?q=a\u202eb",
			Properties: map[string]any{"k\u202d": "v\u2067", "n": []any{"\u202b"}}})
		name := "Ann \u202e"
		res, err := models.Identify(e.ctx, db, e.writer.Catalog(), models.IdentifyInput{AppPublicID: e.app.PublicID, Origin: "https://example.com",
			DeviceID: "d", Email: "bidi@example.com", Name: &name, Fields: map[string]any{"company\u202a": "Acme \u2066"}})
		if err != nil {
			t.Fatal(err)
		}
		text, err := models.LeadNarrative(e.ctx, db, res.Lead)
		if err != nil {
			t.Fatal(err)
		}
		if i := strings.IndexFunc(text, func(r rune) bool { return r >= 0x202a && r <= 0x202e || r >= 0x2066 && r <= 0x2069 }); i >= 0 {
			t.Fatalf("a bidi control at byte %d:\n%q", i, text)
		}
		for _, want := range []string{"Lead: Ann <bidi@example.com>\n", "Fields: company=Acme\n", "visited /p?q=ab. ", `[k=v, n=[""]]`} {
			if !strings.Contains(text, want) {
				t.Errorf("no %q in\n%s", want, text)
			}
		}
	})
}
