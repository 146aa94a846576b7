package models_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/crumbs-dev/crumbs/models"
	"github.com/crumbs-dev/crumbs/models/modelstest"
	"gorm.io/gorm"
)

// badJSON is stored text that the limits on properties and fields now refuse
// at the door, or that is not JSON at all: rows written by an older release
// or by hand. Reads must survive every one of them.
func badJSON(db *gorm.DB) map[string]string {
	bad := map[string]string{
		"overflowing number": `{"n":1e309,"plan":"pro"}`,
		"1,300 levels":       `{"n":` + strings.Repeat(`{"a":`, 1300) + "1" + strings.Repeat("}", 1301),
		"truncated":          `{"n":`,
		"array":              `[1,2]`,
		"null":               `null`,
		"empty":              ``,
	}
	if db.Dialector.Name() == "sqlite" {
		// MySQL's utf8mb4 columns refuse invalid UTF-8; SQLite stores any bytes.
		bad["invalid UTF-8"] = "{\"n\":\"\xff\xfe\"}"
	}
	return bad
}

// TestStoredBadRowsNeverFailReads writes bad properties and lead fields
// straight into the store and reads them back through every path: device and
// lead timelines, the event browser with property rules, funnels and goals
// with property rules, the live stream, the leads list, export and erasure.
func TestStoredBadRowsNeverFailReads(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *gorm.DB) {
		e := newEnv(t, db)
		bad := badJSON(db)
		kinds := slices.Sorted(maps.Keys(bad))
		at := time.Now().Add(-time.Minute).UTC().Truncate(time.Millisecond)
		var ids []uint64
		for range kinds {
			ids = append(ids, e.mustTrigger(models.TriggerInput{Code: "view", DeviceID: "bad-device", OccurredAt: &at}).EventID)
			ids = append(ids, e.mustTrigger(models.TriggerInput{Code: "click", DeviceID: "bad-device", OccurredAt: &at}).EventID)
		}
		good := e.mustTrigger(models.TriggerInput{Code: "view", DeviceID: "bad-device", OccurredAt: &at, Properties: map[string]any{"n": 5.0}}).EventID
		lead, err := models.Identify(e.ctx, db, e.writer.Catalog(), models.IdentifyInput{
			AppPublicID: e.app.PublicID, DeviceID: "bad-device", Email: "bad@example.com", Secret: e.secret,
		})
		if err != nil {
			t.Fatal(err)
		}
		i := 0
		for _, kind := range kinds {
			for range 2 {
				if err := db.Exec("UPDATE events SET properties = ? WHERE id = ?", bad[kind], ids[i]).Error; err != nil {
					t.Fatal(err)
				}
				i++
			}
		}
		if err := db.Exec("UPDATE leads SET fields = ? WHERE id = ?", `{"n":1e309}`, lead.Lead.ID).Error; err != nil {
			t.Fatal(err)
		}
		wantEvents := len(ids) + 1

		checkPage := func(what string, page *models.EventPage, err error, want int) {
			t.Helper()
			if err != nil {
				t.Fatalf("%s: %v", what, err)
			}
			if len(page.Events) != want {
				t.Fatalf("%s: %d events, want %d", what, len(page.Events), want)
			}
			for _, ev := range page.Events {
				if ev.Properties == nil {
					t.Fatalf("%s: event %d has nil properties", what, ev.ID)
				}
				if ev.ID == good && ev.Properties["n"] != json.Number("5") {
					t.Fatalf("%s: the good event reads %v", what, ev.Properties)
				}
			}
		}
		device, err := models.DeviceByID(e.ctx, db, e.owner, e.app.PublicID, "bad-device")
		if err != nil {
			t.Fatal(err)
		}
		page, err := models.DeviceTimeline(e.ctx, db, device, 100, "")
		checkPage("device timeline", page, err, wantEvents)
		page, err = models.LeadTimeline(e.ctx, db, lead.Lead, 100, "")
		checkPage("lead timeline", page, err, wantEvents)

		// The overflowing number reads as its text; the rest of that row survives.
		var overflow models.Event
		if err := db.Take(&overflow, ids[slices.Index(kinds, "overflowing number")*2]).Error; err != nil {
			t.Fatal(err)
		}
		if overflow.Properties["n"] != "1e309" || overflow.Properties["plan"] != "pro" {
			t.Fatalf("overflowing number reads %v", overflow.Properties)
		}

		browse := func(rules ...models.Rule) *models.EventPage {
			t.Helper()
			page, err := models.BrowseEvents(e.ctx, db, e.app, models.BrowseInput{Rules: rules, First: 100})
			if err != nil {
				t.Fatalf("browse %v: %v", rules, err)
			}
			return page
		}
		checkPage("browse all", browse(), nil, wantEvents)
		for _, op := range []string{models.OpEquals, models.OpContains, models.OpStartsWith, models.OpEndsWith} {
			if got := browse(models.Rule{Field: "properties.n", Operator: op, Value: "5"}); len(got.Events) != 1 || got.Events[0].ID != good {
				t.Fatalf("properties.n %s 5: %d events, want the good one", op, len(got.Events))
			}
		}
		for _, op := range []string{models.OpGreaterThan, models.OpExists} {
			if got := browse(models.Rule{Field: "properties.n", Operator: op, Value: "4.5"}); !slices.ContainsFunc(got.Events, func(ev *models.Event) bool { return ev.ID == good }) {
				t.Fatalf("properties.n %s 4.5 missed the good event", op)
			}
		}
		if got := browse(models.Rule{Field: "properties.n.a.a", Operator: models.OpExists}); len(got.Events) != 0 {
			t.Fatalf("a path into the deep row matched %d events", len(got.Events))
		}
		// not_equals matches rows without the value, the unreadable ones included.
		checkPage("not_equals", browse(models.Rule{Field: "properties.n", Operator: models.OpNotEquals, Value: "5"}), nil, wantEvents-1)

		rng := models.RangeInput{From: at.Add(-time.Hour), To: at.Add(time.Hour)}
		funnel, err := models.Funnel(e.ctx, db, e.app, models.FunnelInput{Range: rng, Window: time.Hour, Steps: []models.Matcher{
			{Code: "view", Rules: []models.Rule{{Field: "properties.n", Operator: models.OpExists}}},
			{Code: "click", Rules: []models.Rule{{Field: "properties.plan", Operator: models.OpNotEquals, Value: "free"}}},
		}})
		if err != nil {
			t.Fatalf("funnel: %v", err)
		}
		if funnel.Steps[0].Entered != 1 {
			t.Fatalf("funnel entered %d, want the one lead", funnel.Steps[0].Entered)
		}
		start, err := models.CreateEventMatcher(e.ctx, db, e.app, models.EventMatcherInput{Name: ptr("Viewed n"), Code: ptr("view"),
			Rules: []models.Rule{{Field: "properties.n", Operator: models.OpGreaterThan, Value: "1"}}})
		if err != nil {
			t.Fatal(err)
		}
		done, err := models.CreateEventMatcher(e.ctx, db, e.app, models.EventMatcherInput{Name: ptr("Clicked"), Code: ptr("click"),
			Rules: []models.Rule{{Field: "properties.n", Operator: models.OpNotEquals, Value: "x"}}})
		if err != nil {
			t.Fatal(err)
		}
		goal, err := models.CreateGoal(e.ctx, db, e.app, models.GoalInput{Name: ptr("n then click"), StartMatcher: &start.Name,
			CompletionMatcher: &done.Name, Window: ptr(time.Hour)})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := models.ReportGoal(e.ctx, db, e.app, goal, rng); err != nil {
			t.Fatalf("goal report: %v", err)
		}

		leads, err := models.Leads(e.ctx, db, e.owner, e.app.PublicID, "", 50, "")
		if err != nil || len(leads.Leads) != 1 || leads.Leads[0].Fields["n"] != "1e309" {
			t.Fatalf("leads: %v %+v", err, leads)
		}
		byEmail, err := models.LeadByEmail(e.ctx, db, e.owner, e.app.PublicID, "bad@example.com")
		if err != nil || byEmail == nil {
			t.Fatalf("leadByEmail: %v", err)
		}
		if _, err := models.LeadsByID(e.ctx, db, []uint64{lead.Lead.ID}); err != nil {
			t.Fatalf("leads by id: %v", err)
		}
		// Identifying again merges into the unreadable fields instead of failing.
		again, err := models.Identify(e.ctx, db, e.writer.Catalog(), models.IdentifyInput{
			AppPublicID: e.app.PublicID, DeviceID: "bad-device", Email: "bad@example.com", Secret: e.secret,
			Fields: map[string]any{"company": "Acme"},
		})
		if err != nil || again.Lead.Fields["company"] != "Acme" {
			t.Fatalf("identify over bad fields: %v", err)
		}
		erased, err := models.EraseLead(e.ctx, db, e.owner, e.app.PublicID, "bad@example.com")
		if err != nil || !erased.Erased || erased.DeletedEvents != int64(wantEvents) {
			t.Fatalf("erase: %v %+v", err, erased)
		}
		if n := e.countEvents("1 = 1"); n != 0 {
			t.Fatalf("%d events left after erasure", n)
		}
	})
}

// TestLiveStreamSendsBadRows checks that the live stream delivers events with
// unreadable properties, and the good ones around them, instead of failing
// every poll while they are in its lookback.
func TestLiveStreamSendsBadRows(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *gorm.DB) {
		e := newEnv(t, db)
		// The stream starts from a position taken before the bad rows, so
		// its backfill reads them.
		pos, err := models.LivePosition(e.ctx, db)
		if err != nil {
			t.Fatal(err)
		}
		want := map[uint64]bool{}
		for _, text := range badJSON(db) {
			id := e.mustTrigger(models.TriggerInput{Code: "view", DeviceID: "live"}).EventID
			if err := db.Exec("UPDATE events SET properties = ? WHERE id = ?", text, id).Error; err != nil {
				t.Fatal(err)
			}
			want[id] = true
		}
		ctx, cancel := context.WithCancel(e.ctx)
		defer cancel()
		stream := models.StreamEvents(ctx, db, e.app.ID, pos, slog.New(slog.NewTextHandler(io.Discard, nil)))
		good := e.mustTrigger(models.TriggerInput{Code: "click", DeviceID: "live", Properties: map[string]any{"ok": true}}).EventID
		want[good] = true
		deadline := time.After(time.Minute)
		for len(want) > 0 {
			select {
			case ev := <-stream:
				if ev.Properties == nil {
					t.Fatalf("event %d streamed with nil properties", ev.ID)
				}
				delete(want, ev.ID)
			case <-deadline:
				t.Fatalf("the stream never sent events %v", slices.Collect(maps.Keys(want)))
			}
		}
	})
}
