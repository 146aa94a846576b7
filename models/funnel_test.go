package models_test

import (
	"cmp"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/crumbs-dev/crumbs/models"
	"github.com/crumbs-dev/crumbs/models/modelstest"
	"gorm.io/gorm"
)

var funnelDay = time.Date(2026, 10, 10, 0, 0, 0, 0, time.UTC)

// newFunnelEnv stores short visits of random steps for 200 devices over three
// days; 20 devices belong to 8 leads, so some leads span two devices.
func newFunnelEnv(t *testing.T, db *gorm.DB) *env {
	e := newEnv(t, db)
	for _, c := range []string{"a", "b", "c"} {
		e.define(c)
	}
	rng := rand.New(rand.NewPCG(7, 7))
	var batch []models.TriggerInput
	for d := range 200 {
		at := funnelDay.Add(-24*time.Hour + time.Duration(rng.Int64N(int64(72*time.Hour))))
		for range rng.IntN(12) {
			at = at.Add(time.Duration(rng.Int64N(int64(90 * time.Minute))))
			ts := at
			if rng.IntN(8) == 0 && len(batch) > 0 { // same instant as the previous event
				ts = *batch[len(batch)-1].OccurredAt
			}
			batch = append(batch, models.TriggerInput{Secret: e.secret,
				AppPublicID: e.app.PublicID, DeviceID: fmt.Sprintf("dev-%d", d), Code: []string{"a", "b", "c", "view"}[rng.IntN(4)],
				URL: funnelURLs[rng.IntN(len(funnelURLs))], Title: funnelTitles[rng.IntN(len(funnelTitles))],
				Properties: map[string]any{"plan": []string{"pro", "free"}[rng.IntN(2)], "price": rng.IntN(100)}, OccurredAt: &ts,
			})
		}
	}
	for chunk := range slices.Chunk(batch, 200) {
		for _, r := range e.writer.Trigger(e.ctx, chunk) {
			if !r.Accepted {
				t.Fatal(r.Err)
			}
		}
	}
	for d := range 20 {
		_, err := models.Identify(e.ctx, db, e.writer.Catalog(), models.IdentifyInput{Secret: e.secret,
			AppPublicID: e.app.PublicID, DeviceID: fmt.Sprintf("dev-%d", d), Email: fmt.Sprintf("p%d@example.com", d%8)})
		if err != nil {
			t.Fatal(err)
		}
	}
	return e
}

// On MySQL funnels read urls and titles of at most 255 characters from an
// index and longer ones from the rows (funnel.go): the data has both, at
// the edge, in characters of two bytes.
var (
	funnelURLs = []string{"https://x.example/pricing", "https://x.example/", "https://x.example/Pricing?x=1",
		"https://x.example/pricing/" + strings.Repeat("é", 229), "https://x.example/pricing/" + strings.Repeat("é", 230),
		"https://x.example/" + strings.Repeat("é", 300)}
	funnelTitles = []string{"", "Pricing plans", strings.Repeat("Ü", 250) + "plans", strings.Repeat("Ü", 251) + "plans", strings.Repeat("x", 100) + strings.Repeat("Ü", 200)}
)

type bruteStep struct {
	code  string
	match func(models.Event) bool
}

// bruteFunnel searches every ordered subsequence per visitor for the deepest
// progress, taking the lexicographically first sequence among the deepest.
func bruteFunnel(t *testing.T, e *env, steps []bruteStep, from, to time.Time, window time.Duration, strict bool) (entered []int64, medians []*time.Duration) {
	var events []models.Event
	e.db.Where("app_id = ?", e.app.ID).Find(&events)
	var devices []models.Device
	e.db.Where("app_id = ?", e.app.ID).Find(&devices)
	defs, _ := models.EventDefinitions(e.ctx, e.db, e.app.ID, nil)
	codeOf := map[uint64]string{}
	for _, d := range defs {
		codeOf[d.ID] = d.Code
	}
	lead := map[string]string{}
	for _, d := range devices {
		if d.LeadID != nil {
			lead[d.DeviceID] = fmt.Sprint("lead-", *d.LeadID)
		}
	}
	visitors := map[string][]models.Event{}
	for _, ev := range events {
		k := ev.DeviceID
		if l, ok := lead[k]; ok {
			k = l
		}
		visitors[k] = append(visitors[k], ev)
	}
	matches := func(ev models.Event, i int) bool {
		return codeOf[ev.DefinitionID] == steps[i].code && steps[i].match(ev)
	}
	anyStep := func(ev models.Event) bool {
		for i := range steps {
			if matches(ev, i) {
				return true
			}
		}
		return false
	}
	entered = make([]int64, len(steps))
	gaps := make([][]time.Duration, len(steps))
	for _, evs := range visitors {
		slices.SortFunc(evs, func(a, b models.Event) int {
			return cmp.Or(a.OccurredAt.Compare(b.OccurredAt), cmp.Compare(a.ID, b.ID))
		})
		var best []int
		var search func(path []int)
		search = func(path []int) {
			if len(path) > len(best) {
				best = slices.Clone(path)
			}
			if len(path) == len(steps) {
				return
			}
			last := path[len(path)-1]
			for j := last + 1; j < len(evs); j++ {
				if evs[j].OccurredAt.After(evs[path[0]].OccurredAt.Add(window)) {
					return
				}
				if matches(evs[j], len(path)) {
					search(append(path, j))
				}
				if strict && anyStep(evs[j]) {
					return
				}
			}
		}
		for s, ev := range evs {
			if matches(ev, 0) && !ev.OccurredAt.Before(from) && ev.OccurredAt.Before(to) {
				search([]int{s})
			}
		}
		for k, j := range best {
			entered[k]++
			if k > 0 {
				gaps[k] = append(gaps[k], evs[j].OccurredAt.Sub(evs[best[k-1]].OccurredAt))
			}
		}
	}
	for _, g := range gaps {
		if len(g) == 0 {
			medians = append(medians, nil)
			continue
		}
		slices.Sort(g)
		m := g[len(g)/2]
		if len(g)%2 == 0 {
			m = (g[len(g)/2-1] + g[len(g)/2]) / 2
		}
		medians = append(medians, &m)
	}
	return entered, medians
}

func TestFunnelMatchesBruteForce(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *gorm.DB) {
		e := newFunnelEnv(t, db)
		pricing := models.Rule{Field: "url", Operator: models.OpContains, Value: "PRICING"}
		pro := models.Rule{Field: "properties.plan", Operator: models.OpEquals, Value: "pro"}
		cheap := models.Rule{Field: "properties.price", Operator: models.OpLessThan, Value: "50"}
		isPricing := func(ev models.Event) bool { return strings.Contains(strings.ToLower(ev.URL), "pricing") }
		plans := models.Rule{Field: "title", Operator: models.OpContains, Value: "PLANS"}
		isPlans := func(ev models.Event) bool { return strings.Contains(strings.ToLower(ev.Title), "plans") }
		notJS := models.Rule{Field: "source", Operator: models.OpNotEquals, Value: "js"}
		longTitle := models.Rule{Field: "title", Operator: models.OpEndsWith, Value: "ü"}
		isPro := func(ev models.Event) bool { return ev.Properties["plan"] == "pro" }
		isCheap := func(ev models.Event) bool {
			price, _ := ev.Properties["price"].(json.Number).Float64()
			return price < 50
		}
		all := func(models.Event) bool { return true }
		cases := []struct {
			steps  []models.Matcher
			brute  []bruteStep
			window time.Duration
		}{
			{[]models.Matcher{{Code: "a"}, {Code: "b"}}, []bruteStep{{"a", all}, {"b", all}}, 3 * time.Hour},
			{[]models.Matcher{{Code: "a", Rules: []models.Rule{pricing}}, {Code: "b"}, {Code: "c", Rules: []models.Rule{pro}}},
				[]bruteStep{{"a", isPricing}, {"b", all}, {"c", isPro}}, 6 * time.Hour},
			{[]models.Matcher{{Code: "a"}, {Code: "a", Rules: []models.Rule{cheap}}, {Code: "b"}, {Code: "c"}},
				[]bruteStep{{"a", all}, {"a", isCheap}, {"b", all}, {"c", all}}, 24 * time.Hour},
			{[]models.Matcher{{Code: "b"}, {Code: "view"}}, []bruteStep{{"b", all}, {"view", all}}, time.Minute},
			// Rules on url, title and source alone are read from the index.
			{[]models.Matcher{{Code: "a", Rules: []models.Rule{pricing}}, {Code: "b", Rules: []models.Rule{plans}}, {Code: "c", Rules: []models.Rule{notJS, pricing}}},
				[]bruteStep{{"a", isPricing}, {"b", isPlans}, {"c", func(ev models.Event) bool { return ev.Source != "js" && isPricing(ev) }}}, 6 * time.Hour},
			{[]models.Matcher{{Code: "view", Rules: []models.Rule{longTitle}}, {Code: "a", Rules: []models.Rule{pricing}}},
				[]bruteStep{{"view", func(ev models.Event) bool { return strings.HasSuffix(ev.Title, "Ü") }}, {"a", isPricing}}, 24 * time.Hour},
		}
		for i, c := range cases {
			for _, strict := range []bool{false, true} {
				rep, err := models.Funnel(e.ctx, db, e.app, models.FunnelInput{
					Range: models.RangeInput{From: funnelDay, To: funnelDay.Add(24 * time.Hour)}, Steps: c.steps, Window: c.window, Strict: strict})
				if err != nil {
					t.Fatal(err)
				}
				entered, medians := bruteFunnel(t, e, c.brute, funnelDay, funnelDay.Add(24*time.Hour), c.window, strict)
				if entered[0] == 0 || entered[1] == 0 {
					t.Fatalf("case %d: degenerate data %v", i, entered)
				}
				for k, st := range rep.Steps {
					if st.Entered != entered[k] || fmt.Sprint(deref(st.MedianFromPrevious)) != fmt.Sprint(deref(medians[k])) {
						t.Fatalf("case %d strict=%v step %d: entered %d median %v, brute force %d %v", i, strict, k, st.Entered, deref(st.MedianFromPrevious), entered[k], deref(medians[k]))
					}
					if k+1 < len(rep.Steps) && st.Converted != entered[k+1] {
						t.Fatalf("case %d step %d: converted %d", i, k, st.Converted)
					}
				}
			}
		}

		// The window edge: a second step exactly window after the first counts.
		e.define("w1")
		e.define("w2")
		t0 := funnelDay.Add(time.Hour)
		t1, t2 := t0.Add(10*time.Minute), t0.Add(10*time.Minute+time.Millisecond)
		e.mustTrigger(models.TriggerInput{Secret: e.secret, DeviceID: "edge-1", Code: "w1", OccurredAt: &t0})
		e.mustTrigger(models.TriggerInput{Secret: e.secret, DeviceID: "edge-1", Code: "w2", OccurredAt: &t1})
		e.mustTrigger(models.TriggerInput{Secret: e.secret, DeviceID: "edge-2", Code: "w1", OccurredAt: &t0})
		e.mustTrigger(models.TriggerInput{Secret: e.secret, DeviceID: "edge-2", Code: "w2", OccurredAt: &t2})
		rep, err := models.Funnel(e.ctx, db, e.app, models.FunnelInput{Range: models.RangeInput{From: funnelDay, To: funnelDay.Add(24 * time.Hour)},
			Steps: []models.Matcher{{Code: "w1"}, {Code: "w2"}}, Window: 10 * time.Minute})
		if err != nil || rep.Steps[0].Entered != 2 || rep.Steps[1].Entered != 1 || *rep.Steps[1].MedianFromPrevious != 10*time.Minute {
			t.Fatalf("window edge: %+v %+v %v", rep.Steps[0], rep.Steps[1], err)
		}

		_, err = models.Funnel(e.ctx, db, e.app, models.FunnelInput{Range: models.RangeInput{From: funnelDay, To: funnelDay.Add(time.Hour)}, Steps: []models.Matcher{{Code: "a"}}, Window: time.Hour})
		wantField(t, err, "steps")
		_, err = models.Funnel(e.ctx, db, e.app, models.FunnelInput{Range: models.RangeInput{From: funnelDay, To: funnelDay.Add(time.Hour)}, Steps: []models.Matcher{{Code: "a"}, {Code: "nope"}}, Window: time.Hour})
		wantField(t, err, "steps.1.code")
		_, err = models.Funnel(e.ctx, db, e.app, models.FunnelInput{Range: models.RangeInput{From: funnelDay, To: funnelDay.Add(time.Hour)},
			Steps: []models.Matcher{{Code: "a"}, {Code: "b", Rules: []models.Rule{{Field: "lead.email", Operator: "equals", Value: "x"}}}}, Window: time.Hour})
		wantField(t, err, "steps.1.rules.0.field")
	})
}

func deref[T any](p *T) any {
	if p == nil {
		return nil
	}
	return *p
}

func TestGoalsAndMatchers(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *gorm.DB) {
		e := newFunnelEnv(t, db)
		start, err := models.CreateEventMatcher(e.ctx, db, e.app, models.EventMatcherInput{Name: ptr("Pricing A"), Code: ptr("a"),
			Rules: []models.Rule{{Field: "url", Operator: models.OpEndsWith, Value: "/pricing"}}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := models.CreateEventMatcher(e.ctx, db, e.app, models.EventMatcherInput{Name: ptr("Signup"), Code: ptr("c")}); err != nil {
			t.Fatal(err)
		}
		_, err = models.CreateEventMatcher(e.ctx, db, e.app, models.EventMatcherInput{Name: ptr("Signup"), Code: ptr("c")})
		wantCode(t, err, "CONFLICT")
		_, err = models.CreateEventMatcher(e.ctx, db, e.app, models.EventMatcherInput{Name: ptr("Bad"), Code: ptr("c"), Rules: []models.Rule{{Field: "x", Operator: "equals"}}})
		wantField(t, err, "rules.0.field")
		_, err = models.CreateEventMatcher(e.ctx, db, e.app, models.EventMatcherInput{Name: ptr("Bad"), Code: ptr("c"), Rules: []models.Rule{{Field: "url", Operator: "like"}}})
		wantField(t, err, "rules.0.operator")

		goal, err := models.CreateGoal(e.ctx, db, e.app, models.GoalInput{Name: ptr("Trial"), StartMatcher: ptr("Pricing A"), CompletionMatcher: ptr("Signup"), Window: ptr(12 * time.Hour)})
		if err != nil {
			t.Fatal(err)
		}
		_, err = models.CreateGoal(e.ctx, db, e.app, models.GoalInput{Name: ptr("X"), StartMatcher: ptr("Nope"), CompletionMatcher: ptr("Signup")})
		wantField(t, err, "startMatcher")
		_, err = models.DeleteEventMatcher(e.ctx, db, e.app, models.FormatID(start.ID))
		wantCode(t, err, "CONFLICT")

		rng := models.RangeInput{From: funnelDay, To: funnelDay.Add(24 * time.Hour)}
		rep, err := models.ReportGoal(e.ctx, db, e.app, goal, rng)
		if err != nil {
			t.Fatal(err)
		}
		entered, medians := bruteFunnel(t, e, []bruteStep{{"a", func(ev models.Event) bool { return strings.HasSuffix(strings.ToLower(ev.URL), "/pricing") }},
			{"c", func(models.Event) bool { return true }}}, funnelDay, funnelDay.Add(24*time.Hour), 12*time.Hour, false)
		if rep.Started != entered[0] || rep.Completed != entered[1] || fmt.Sprint(deref(rep.MedianToComplete)) != fmt.Sprint(deref(medians[1])) || rep.Started == 0 {
			t.Fatalf("goal %+v, brute force %v %v", rep, entered, deref(medians[1]))
		}

		// Narrowing the matcher changes the report of the goal that uses it.
		if _, err := models.UpdateEventMatcher(e.ctx, db, e.app, models.FormatID(start.ID), models.EventMatcherInput{Rules: []models.Rule{{Field: "url", Operator: models.OpEquals, Value: "nothing"}}}); err != nil {
			t.Fatal(err)
		}
		if rep, err = models.ReportGoal(e.ctx, db, e.app, goal, rng); err != nil || rep.Started != 0 || rep.ConversionRate() != 0 {
			t.Fatalf("narrowed goal %+v %v", rep, err)
		}
		if _, err := models.DeleteGoal(e.ctx, db, e.app, models.FormatID(goal.ID)); err != nil {
			t.Fatal(err)
		}
		if _, err := models.DeleteEventMatcher(e.ctx, db, e.app, models.FormatID(start.ID)); err != nil {
			t.Fatal(err)
		}
	})
}

// A matcher's code need not be defined yet, so neither need a goal's: its
// report counts nobody at an undefined step instead of refusing the goal
// with an error about a funnel step the caller never sent.
func TestGoalOfUndefinedCode(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *gorm.DB) {
		e := newFunnelEnv(t, db)
		for name, code := range map[string]string{"Any A": "a", "Later": "not_yet"} {
			if _, err := models.CreateEventMatcher(e.ctx, db, e.app, models.EventMatcherInput{Name: ptr(name), Code: ptr(code)}); err != nil {
				t.Fatal(err)
			}
		}
		rng := models.RangeInput{From: funnelDay, To: funnelDay.Add(24 * time.Hour)}
		entered, _ := bruteFunnel(t, e, []bruteStep{{"a", func(models.Event) bool { return true }}}, funnelDay, funnelDay.Add(24*time.Hour), time.Hour, false)
		for _, c := range []struct {
			start, done       string
			started, complete int64
		}{
			{"Any A", "Later", entered[0], 0},
			{"Later", "Any A", 0, 0},
		} {
			goal, err := models.CreateGoal(e.ctx, db, e.app, models.GoalInput{Name: ptr(c.start + " to " + c.done), StartMatcher: ptr(c.start), CompletionMatcher: ptr(c.done), Window: ptr(time.Hour)})
			if err != nil {
				t.Fatal(err)
			}
			rep, err := models.ReportGoal(e.ctx, db, e.app, goal, rng)
			if err != nil {
				t.Fatalf("%s to %s: %v", c.start, c.done, err)
			}
			if rep.Started != c.started || rep.Completed != c.complete || rep.MedianToComplete != nil || c.start == "Any A" && rep.Started == 0 {
				t.Fatalf("%s to %s: %+v, want %d started, %d completed", c.start, c.done, rep, c.started, c.complete)
			}
		}
		// A funnel, which names its steps itself, still refuses an undefined code.
		_, err := models.Funnel(e.ctx, db, e.app, models.FunnelInput{Range: rng, Steps: []models.Matcher{{Code: "a"}, {Code: "not_yet"}}, Window: time.Hour})
		wantField(t, err, "steps.1.code")
	})
}
