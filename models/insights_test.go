package models_test

import (
	"fmt"
	"math/rand/v2"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/crumbs-dev/crumbs/models"
	"github.com/crumbs-dev/crumbs/models/modelstest"
	"gorm.io/gorm"
)

// insightsEnv is an app in Europe/Amsterdam with generated events around the
// 2026-10-25 DST change, stored through the real writer.
type insightsEnv struct {
	*env
	defs map[uint64]string
}

var (
	genPages = []string{"https://shop.example/", "https://shop.example/pricing", "https://shop.example/pricing?plan=pro",
		"https://shop.example/locations", "https://shop.example/locations/amsterdam?utm_source=x", "/docs", ""}
	genRefs    = []string{"", "https://www.google.com/search?q=x", "https://news.example/a", "https://google.com/"}
	genSources = []string{"js", "api", "block", "wordpress"}
)

func newInsightsEnv(t *testing.T, db *gorm.DB, n int) *insightsEnv {
	e := &insightsEnv{env: newEnv(t, db), defs: map[uint64]string{}}
	tz := "Europe/Amsterdam"
	app, err := models.UpdateApp(e.ctx, db, e.owner, e.app.PublicID, models.AppInput{Timezone: &tz})
	if err != nil {
		t.Fatal(err)
	}
	e.app = app
	for _, code := range []string{"trial_click", "signup", "pdf_download"} {
		e.define(code)
	}
	defs, _ := models.EventDefinitions(e.ctx, db, app.ID, nil)
	codes := []string{}
	for _, d := range defs {
		e.defs[d.ID] = d.Code
		codes = append(codes, d.Code)
	}
	rng := rand.New(rand.NewPCG(1, uint64(n)))
	start := time.Date(2026, 10, 22, 0, 0, 0, 0, time.UTC)
	var batch []models.TriggerInput
	for i := range n {
		at := start.Add(time.Duration(rng.Int64N(int64(6 * 24 * time.Hour))))
		if i%10 == 0 { // crowd the night of the DST change
			at = time.Date(2026, 10, 24, 23, 0, 0, 0, time.UTC).Add(time.Duration(rng.Int64N(int64(3 * time.Hour))))
		}
		batch = append(batch, models.TriggerInput{Secret: e.secret,
			AppPublicID: app.PublicID, DeviceID: fmt.Sprintf("dev-%d", rng.IntN(40)), Code: codes[rng.IntN(len(codes))],
			URL: genPages[rng.IntN(len(genPages))], Referrer: genRefs[rng.IntN(len(genRefs))], Source: genSources[rng.IntN(len(genSources))],
			Properties: map[string]any{"plan": []string{"free", "pro", "team"}[rng.IntN(3)], "n": rng.IntN(100)}, OccurredAt: &at,
		})
		if len(batch) == 100 || i == n-1 {
			for _, r := range e.writer.Trigger(e.ctx, batch) {
				if !r.Accepted {
					t.Fatal(r.Err)
				}
			}
			batch = nil
		}
	}
	for i := range 8 {
		_, err := models.Identify(e.ctx, db, e.writer.Catalog(), models.IdentifyInput{Secret: e.secret,
			AppPublicID: app.PublicID, DeviceID: fmt.Sprintf("dev-%d", i), Email: fmt.Sprintf("lead%d@example.com", i%5)})
		if err != nil {
			t.Fatal(err)
		}
	}
	return e
}

func (e *insightsEnv) events() []models.Event {
	var out []models.Event
	if err := e.db.Where("app_id = ?", e.app.ID).Find(&out).Error; err != nil {
		e.t.Fatal(err)
	}
	return out
}

// localKey names the bucket of t the brute-force way, from calendar fields.
func localKey(t time.Time, loc *time.Location, iv models.Interval) string {
	l := t.In(loc)
	switch iv {
	case models.IntervalHour:
		return t.UTC().Truncate(time.Hour).Format(time.RFC3339)
	case models.IntervalWeek:
		y, w := l.ISOWeek()
		return fmt.Sprintf("%d-W%d", y, w)
	case models.IntervalMonth:
		return l.Format("2006-01")
	}
	return l.Format("2006-01-02")
}

func TestOverviewMatchesRawEvents(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *gorm.DB) {
		e := newInsightsEnv(t, db, 1500)
		check := func(tz string, iv models.Interval, from, to time.Time) {
			t.Helper()
			loc, _ := time.LoadLocation(tz)
			for _, exact := range []bool{true, false} {
				o, err := models.AppOverview(e.ctx, db, e.app, models.RangeInput{From: from, To: to, Interval: iv, Timezone: tz}, exact)
				if err != nil {
					t.Fatal(err)
				}
				// Brute force over the raw events in the answered range.
				counts := map[uint64]map[string]int64{0: {}}
				devices := map[uint64]map[string]bool{0: {}}
				for _, ev := range e.events() {
					if ev.OccurredAt.Before(o.From) || !ev.OccurredAt.Before(o.To) {
						continue
					}
					k := localKey(ev.OccurredAt, loc, iv)
					for _, id := range []uint64{0, ev.DefinitionID} {
						if counts[id] == nil {
							counts[id], devices[id] = map[string]int64{}, map[string]bool{}
						}
						counts[id][k]++
						devices[id][ev.DeviceID] = true
					}
				}
				if !o.From.Equal(floorLocal(from, loc, iv)) {
					t.Fatalf("%s %s: from %v", tz, iv, o.From)
				}
				checkSeries := func(name string, series []models.Bucket, total, uniques int64, id uint64) {
					t.Helper()
					var sum int64
					seen := map[string]bool{}
					for _, b := range series {
						k := localKey(b.Start, loc, iv)
						if seen[k] && iv != models.IntervalHour {
							t.Fatalf("%s %s %s: bucket %s twice", tz, iv, name, k)
						}
						seen[k] = true
						if b.Count != counts[id][k] {
							t.Fatalf("%s %s %s: bucket %s = %d, raw %d", tz, iv, name, k, b.Count, counts[id][k])
						}
						sum += b.Count
					}
					for k, n := range counts[id] {
						if !seen[k] && n > 0 {
							t.Fatalf("%s %s %s: bucket %s missing", tz, iv, name, k)
						}
					}
					want := int64(len(devices[id]))
					if total != sum || (exact && uniques != want) || (!exact && (uniques < want-1 || uniques > want+1)) {
						t.Fatalf("%s %s %s: total %d (series %d), uniques %d, raw %d", tz, iv, name, total, sum, uniques, want)
					}
				}
				checkSeries("all", o.Series, o.TotalEvents, o.UniqueDevices, 0)
				for _, d := range o.Definitions {
					checkSeries(d.Definition.Code, d.Series, d.Count, d.UniqueDevices, d.Definition.ID)
				}
				var devs []models.Device
				e.db.Where("app_id = ? AND lead_id IS NOT NULL", e.app.ID).Find(&devs)
				leads := map[uint64]bool{}
				for _, d := range devs {
					if devices[0][d.DeviceID] {
						leads[*d.LeadID] = true
					}
				}
				if o.IdentifiedLeads != int64(len(leads)) || o.NewLeads > 5 {
					t.Fatalf("%s %s: identified leads %d, raw %d; new %d", tz, iv, o.IdentifiedLeads, len(leads), o.NewLeads)
				}
				if o.TotalEvents == 0 {
					t.Fatalf("%s %s: empty range", tz, iv)
				}
			}
		}
		from, to := time.Date(2026, 10, 22, 0, 0, 0, 0, time.UTC), time.Date(2026, 10, 28, 0, 0, 0, 0, time.UTC)
		for _, iv := range []models.Interval{models.IntervalHour, models.IntervalDay, models.IntervalWeek, models.IntervalMonth} {
			check("Europe/Amsterdam", iv, from, to)
		}
		check("Europe/Amsterdam", models.IntervalDay, time.Date(2026, 10, 24, 13, 30, 0, 0, time.UTC), time.Date(2026, 10, 26, 1, 0, 0, 0, time.UTC))
		for _, iv := range []models.Interval{models.IntervalDay, models.IntervalWeek, models.IntervalMonth} {
			check("UTC", iv, from, to) // whole UTC days answered from daily rollups
		}
		check("UTC", models.IntervalDay, time.Date(2026, 10, 24, 13, 0, 0, 0, time.UTC), time.Date(2026, 10, 26, 1, 0, 0, 0, time.UTC))
		check("Asia/Kolkata", models.IntervalDay, from, to) // +05:30: answered from raw events
		check("America/New_York", models.IntervalHour, from, to)

		// The DST day has 25 hourly buckets in Amsterdam.
		o, err := models.AppOverview(e.ctx, db, e.app, models.RangeInput{
			From: time.Date(2026, 10, 24, 22, 0, 0, 0, time.UTC), To: time.Date(2026, 10, 25, 23, 0, 0, 0, time.UTC), Interval: models.IntervalHour}, false)
		if err != nil || len(o.Series) != 25 {
			t.Fatalf("DST day: %d buckets, %v", len(o.Series), err)
		}

		// Erasing a lead keeps every rollup equal to the raw events.
		if _, err := models.EraseLead(e.ctx, db, e.owner, e.app.PublicID, "lead1@example.com"); err != nil {
			t.Fatal(err)
		}
		check("Europe/Amsterdam", models.IntervalDay, from, to)
		check("UTC", models.IntervalWeek, from, to)
		checkBreakdowns(t, e)

		_, err = models.AppOverview(e.ctx, db, e.app, models.RangeInput{From: to, To: from}, false)
		wantField(t, err, "to")
		_, err = models.AppOverview(e.ctx, db, e.app, models.RangeInput{From: from, To: to, Interval: "year"}, false)
		wantField(t, err, "interval")
		_, err = models.AppOverview(e.ctx, db, e.app, models.RangeInput{From: from, To: to, Timezone: "Mars/Base"}, false)
		wantField(t, err, "timezone")
	})
}

func floorLocal(t time.Time, loc *time.Location, iv models.Interval) time.Time {
	l := t.In(loc)
	switch iv {
	case models.IntervalHour:
		return time.Date(l.Year(), l.Month(), l.Day(), l.Hour(), 0, 0, 0, loc).UTC()
	case models.IntervalWeek:
		d := time.Date(l.Year(), l.Month(), l.Day(), 0, 0, 0, 0, loc)
		for d.Weekday() != time.Monday {
			d = d.AddDate(0, 0, -1)
		}
		return d.UTC()
	case models.IntervalMonth:
		return time.Date(l.Year(), l.Month(), 1, 0, 0, 0, 0, loc).UTC()
	}
	return time.Date(l.Year(), l.Month(), l.Day(), 0, 0, 0, 0, loc).UTC()
}

func TestBreakdownsMatchRawEvents(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *gorm.DB) {
		checkBreakdowns(t, newInsightsEnv(t, db, 800))
	})
}

func checkBreakdowns(t *testing.T, e *insightsEnv) {
	t.Helper()
	from, to := time.Date(2026, 10, 23, 0, 0, 0, 0, time.UTC), time.Date(2026, 10, 26, 0, 0, 0, 0, time.UTC)
	loc, _ := time.LoadLocation("Europe/Amsterdam")
	lo, hi := floorLocal(from, loc, models.IntervalDay), floorLocal(to, loc, models.IntervalDay).AddDate(0, 0, 1)
	if !floorLocal(to, loc, models.IntervalDay).Before(to) {
		hi = floorLocal(to, loc, models.IntervalDay)
	}
	for _, by := range []string{models.BreakdownPages, models.BreakdownPagesWithQuery, models.BreakdownSources, models.BreakdownReferrers} {
		got, err := models.AppBreakdown(e.ctx, e.db, e.app, models.RangeInput{From: from, To: to}, by, 100)
		if err != nil {
			t.Fatal(err)
		}
		counts, devices, eng := map[string]int64{}, map[string]map[string]bool{}, map[string]map[uint64]int64{}
		for _, ev := range e.events() {
			if ev.OccurredAt.Before(lo) || !ev.OccurredAt.Before(hi) {
				continue
			}
			v := rawDim(by, ev)
			counts[v]++
			if devices[v] == nil {
				devices[v], eng[v] = map[string]bool{}, map[uint64]int64{}
			}
			devices[v][ev.DeviceID] = true
			eng[v][ev.DefinitionID]++
		}
		if len(got) != len(counts) {
			t.Fatalf("%s: %d values, raw %d (%v)", by, len(got), len(counts), counts)
		}
		for i, g := range got {
			want := int64(len(devices[g.Value]))
			if g.Count != counts[g.Value] || g.UniqueDevices < want-1 || g.UniqueDevices > want+1 {
				t.Fatalf("%s %q: count %d uniques %d, raw %d %d", by, g.Value, g.Count, g.UniqueDevices, counts[g.Value], want)
			}
			if i > 0 && got[i-1].Count < g.Count {
				t.Fatalf("%s: not sorted by count", by)
			}
			if by == models.BreakdownPages {
				var sum int64
				for _, d := range g.Engagement {
					if d.Count != eng[g.Value][d.DefinitionID] {
						t.Fatalf("%s %q: definition %d fired %d, raw %d", by, g.Value, d.DefinitionID, d.Count, eng[g.Value][d.DefinitionID])
					}
					sum += d.Count
				}
				if sum != g.Count {
					t.Fatalf("%s %q: engagement sums to %d of %d", by, g.Value, sum, g.Count)
				}
			}
		}
	}
}

// rawDim is the brute-force dimension value of an event.
func rawDim(by string, ev models.Event) string {
	switch by {
	case models.BreakdownSources:
		return ev.Source
	case models.BreakdownReferrers:
		if ev.Referrer == "" {
			return ""
		}
		u, _ := url.Parse(ev.Referrer)
		return strings.TrimPrefix(u.Hostname(), "www.")
	}
	if ev.URL == "" {
		return ""
	}
	u, _ := url.Parse(ev.URL)
	p := u.Path
	if p == "" {
		p = "/"
	}
	if by == models.BreakdownPagesWithQuery && u.RawQuery != "" {
		p += "?" + u.RawQuery
	}
	return p
}
