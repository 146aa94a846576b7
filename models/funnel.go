package models

import (
	"cmp"
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"
	"time"

	"gorm.io/gorm"
)

// Matcher picks events: a code, optionally narrowed by rules on the event's
// own fields (url, referrer, source, title, properties), all of which must hold.
type Matcher struct {
	Code  string
	Rules []Rule
}

// FunnelInput describes a funnel over a range.
type FunnelInput struct {
	Range RangeInput
	Steps []Matcher
	// Window is how long after its first step a visitor may complete the
	// funnel; steps after the range's end count while inside the window.
	Window time.Duration
	// Strict requires each step to be the next funnel event: no event
	// matching any step may come between two consecutive steps.
	Strict bool
	// undefinedMatchesNothing lets a step name a code the app does not
	// define: nobody reaches that step. A goal's matchers may name codes
	// not defined yet; a funnel's caller named its steps and is told.
	undefinedMatchesNothing bool
}

// FunnelStep is one step of a funnel report.
type FunnelStep struct {
	Matcher Matcher
	// Entered counts the visitors who reached this step.
	Entered int64
	// Converted counts those who went on to the next step (for the last
	// step: those who reached it).
	Converted int64
	// MedianFromPrevious is the median time from the previous step, nil
	// for the first step or when nobody reached this one.
	MedianFromPrevious *time.Duration
}

// FunnelReport is the result of a funnel. Visitors are leads where the
// device is identified, else devices.
type FunnelReport struct {
	From, To time.Time
	Steps    []*FunnelStep
}

const maxFunnelWindow = 90 * 24 * time.Hour

// Funnel computes a funnel from the raw events of the steps' definitions in
// the range (plus the window), read through the (definition, time) index
// and walked per visitor in memory.
func Funnel(ctx context.Context, db *gorm.DB, app *App, in FunnelInput) (*FunnelReport, error) {
	if len(in.Steps) < 2 || len(in.Steps) > 8 {
		return nil, Invalid("steps", "a funnel has 2 to 8 steps")
	}
	if in.Window <= 0 || in.Window > maxFunnelWindow {
		return nil, Invalid("windowSeconds", "must be between 1 second and 90 days")
	}
	s, err := resolveRange(app, in.Range)
	if err != nil {
		return nil, err
	}
	defs, err := EventDefinitions(ctx, db, app.ID, nil)
	if err != nil {
		return nil, err
	}
	byCode, codes := map[string]uint64{}, map[uint64]string{}
	for _, d := range defs {
		byCode[d.Code], codes[d.ID] = d.ID, d.Code
	}
	stepDefs := make([]uint64, len(in.Steps))
	var bad validation
	for i, st := range in.Steps {
		id, ok := byCode[st.Code]
		// No definition has id 0, so an undefined step's events are none.
		bad.check(fmt.Sprintf("steps.%d.code", i), ok || in.undefinedMatchesNothing, "no definition has code %q", truncate(st.Code, 64))
		bad.add(validateRules(fmt.Sprintf("steps.%d.rules", i), st.Rules, true))
		stepDefs[i] = id
	}
	if err := bad.err(); err != nil {
		return nil, err
	}
	visitors, err := funnelEvents(ctx, db, app.ID, in.Steps, stepDefs, codes, s.from(), s.end.Add(in.Window))
	if err != nil {
		return nil, err
	}
	rep := &FunnelReport{From: s.from(), To: s.end, Steps: make([]*FunnelStep, len(in.Steps))}
	gaps := make([][]time.Duration, len(in.Steps))
	for i := range rep.Steps {
		rep.Steps[i] = &FunnelStep{Matcher: in.Steps[i]}
	}
	var w funnelWalk
	for _, evs := range visitors {
		path := w.bestPath(evs, len(in.Steps), s.from().UnixNano(), s.end.UnixNano(), int64(in.Window), in.Strict)
		for k, j := range path {
			rep.Steps[k].Entered++
			if k > 0 {
				gaps[k] = append(gaps[k], time.Duration(evs[j].at-evs[path[k-1]].at))
			}
		}
	}
	for k, st := range rep.Steps {
		st.Converted = st.Entered
		if k+1 < len(rep.Steps) {
			st.Converted = rep.Steps[k+1].Entered
		}
		st.MedianFromPrevious = median(gaps[k])
	}
	return rep, nil
}

// funnelWalk holds the buffers of bestPath, reused across visitors.
type funnelWalk struct {
	next []int32
	path []int
}

// bestPath returns the indexes of the events a visitor completed the steps
// with: the deepest progress over every start in [from, to), the earliest
// start among equals, each next step the earliest that qualifies, all within
// window of the start (times in Unix nanoseconds). Events must be in time
// order, each with the steps it matches in mask (none without a step).
//
// It takes O(steps × events): a backward pass finds, for every event and
// step, the next event matching that step, so the walk from each start is
// at most one hop per step. (Trying every start with a forward scan took
// O(events²) on a busy visitor.) The slice is valid until the next call.
func (w *funnelWalk) bestPath(evs []funnelEvent, steps int, from, to, window int64, strict bool) []int {
	n := len(evs)
	if !strict {
		// next[k*n+j]: the first event after j that matches step k, or -1.
		w.next = slices.Grow(w.next[:0], steps*n)[:steps*n]
		for k := 1; k < steps; k++ {
			last := int32(-1)
			for j := n - 1; j >= 0; j-- {
				w.next[k*n+j] = last
				if evs[j].mask&(1<<k) != 0 {
					last = int32(j)
				}
			}
		}
	}
	// hop returns the event taking a walk at event cur from step k-1 to k,
	// or -1. Strictly, it must be the very next event: every event kept
	// matches some step, so any other would come between.
	hop := func(cur, k int) int {
		if strict {
			if cur+1 < n && evs[cur+1].mask&(1<<k) != 0 {
				return cur + 1
			}
			return -1
		}
		return int(w.next[k*n+cur])
	}
	walk := func(start int, record bool) int {
		limit, cur, depth := evs[start].at+window, start, 1
		if record {
			w.path = append(w.path[:0], start)
		}
		for depth < steps {
			j := hop(cur, depth)
			if j < 0 || evs[j].at > limit {
				break
			}
			cur, depth = j, depth+1
			if record {
				w.path = append(w.path, j)
			}
		}
		return depth
	}
	best, bestDepth := -1, 0
	for start, e := range evs {
		if e.mask&1 == 0 || e.at < from || e.at >= to {
			continue
		}
		if d := walk(start, false); d > bestDepth {
			best, bestDepth = start, d
			if d == steps {
				break
			}
		}
	}
	if best < 0 {
		return nil
	}
	walk(best, true)
	return w.path
}

// funnelEvent is what a funnel keeps of an event: its time (Unix
// nanoseconds), id (the tie-break among equal times) and the steps it
// matches. 24 bytes.
type funnelEvent struct {
	at   int64
	id   uint64
	mask uint16
}

// maxFunnelEvents bounds the events of a funnel's steps in its range (plus
// the window) that a funnel reads into memory: at 24 bytes each plus the
// visitors' keys, at most about 200 MB. A 30-day funnel over 10M events
// (3.4M events in the range) stays under it whatever its steps.
const maxFunnelEvents = 8_000_000

// funnelEvents reads the events of the steps' definitions in [from, to)
// grouped by visitor, each visitor's in time order, with the steps each
// matches; events matching no step are dropped as they are read. The read
// is covered by the events' (definition, time, device) index without rules;
// on MySQL, whose index also holds source, short_url and short_title
// (2026120411_events_definition_rules), with rules on code, url, title and
// source too. Otherwise it reads the rows, only the columns the rules test
// (on SQLite, in process, the pages are at hand). Devices are mapped to leads with one read
// of the app's identified devices rather than a join per event.
func funnelEvents(ctx context.Context, db *gorm.DB, appID uint64, steps []Matcher, stepDefs []uint64, codes map[uint64]string, from, to time.Time) ([][]funnelEvent, error) {
	db = db.WithContext(ctx)
	var owners []struct {
		DeviceID string
		LeadID   uint64
	}
	if err := db.Model(&Device{}).Select("device_id, lead_id").Where("app_id = ? AND lead_id IS NOT NULL", appID).Scan(&owners).Error; err != nil {
		return nil, err
	}
	// visitorOf numbers the visitors: the devices of one lead share the
	// lead's number, so each row costs one map lookup.
	var out [][]funnelEvent
	visitorOf := make(map[string]int, len(owners))
	leadVisitor := map[uint64]int{}
	for _, o := range owners {
		v, ok := leadVisitor[o.LeadID]
		if !ok {
			v = len(out)
			out = append(out, nil)
			leadVisitor[o.LeadID] = v
		}
		visitorOf[o.DeviceID] = v
	}
	cols := []string{"id", "device_id", "definition_id", "occurred_at"}
	var fields []string // the event columns the rules test, in cols after the first four
	for _, st := range steps {
		for _, r := range st.Rules {
			c := r.Field
			if strings.HasPrefix(c, "properties.") {
				c = "properties"
			}
			if c != "code" && !slices.Contains(fields, c) {
				fields = append(fields, c)
			}
		}
	}
	// A url or title too long for the index (NULL there) is read from its
	// row after the scan.
	covered := isMySQL(db) && !slices.ContainsFunc(fields, func(f string) bool { return f != "url" && f != "title" && f != "source" })
	needURL, needTitle := slices.Contains(fields, "url"), slices.Contains(fields, "title")
	var e Event
	var at dbTime
	var shortURL, shortTitle sql.NullString
	dest := []any{&e.ID, &e.DeviceID, &e.DefinitionID, &at}
	for _, f := range fields {
		switch f {
		case "url":
			if covered {
				cols, dest = append(cols, "short_url"), append(dest, &shortURL)
			} else {
				cols, dest = append(cols, f), append(dest, &e.URL)
			}
		case "title":
			if covered {
				cols, dest = append(cols, "short_title"), append(dest, &shortTitle)
			} else {
				cols, dest = append(cols, f), append(dest, &e.Title)
			}
		case "referrer":
			cols, dest = append(cols, f), append(dest, &e.Referrer)
		case "source":
			cols, dest = append(cols, f), append(dest, &e.Source)
		case "properties":
			cols, dest = append(cols, f), append(dest, &e.Properties)
		}
	}
	// add keeps e if it matches a step.
	add := func(e *Event, at int64) {
		var mask uint16
		for i, st := range steps {
			if e.DefinitionID == stepDefs[i] && (len(st.Rules) == 0 || matchesRules(st.Rules, codes[e.DefinitionID], e)) {
				mask |= 1 << i
			}
		}
		if mask == 0 {
			return
		}
		v, ok := visitorOf[e.DeviceID]
		if !ok {
			v = len(out)
			out = append(out, nil)
			visitorOf[e.DeviceID] = v
		}
		out[v] = append(out[v], funnelEvent{at: at, id: e.ID, mask: mask})
	}
	// The definitions are the app's, so no app_id condition: it would cost a
	// row lookup per index entry.
	rows, err := db.Model(&Event{}).Select(strings.Join(cols, ", ")).
		Where("definition_id IN ? AND occurred_at >= ? AND occurred_at < ?", slices.Compact(slices.Sorted(slices.Values(stepDefs))), from, to).Rows()
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var long []Event // events whose url or title the index does not hold
	read := 0
	for rows.Next() {
		e.Properties = nil
		if err := rows.Scan(dest...); err != nil {
			return nil, err
		}
		if read++; read > maxFunnelEvents {
			return nil, Invalid("range", "the steps have more than %d events in the range and window; narrow them", maxFunnelEvents)
		}
		e.OccurredAt = at.Time
		if covered {
			e.URL, e.Title = shortURL.String, shortTitle.String
			if needURL && !shortURL.Valid || needTitle && !shortTitle.Valid {
				long = append(long, e)
				continue
			}
		}
		add(&e, at.Time.UnixNano())
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	rows.Close()
	for chunk := range slices.Chunk(long, 500) {
		ids := make([]uint64, len(chunk))
		for i, l := range chunk {
			ids[i] = l.ID
		}
		var full []struct {
			ID         uint64
			URL, Title string
		}
		if err := db.Model(&Event{}).Select("id, url, title").Where("id IN ?", ids).Scan(&full).Error; err != nil {
			return nil, err
		}
		byID := make(map[uint64]int, len(full))
		for i, f := range full {
			byID[f.ID] = i
		}
		for _, l := range chunk {
			i, ok := byID[l.ID]
			if !ok {
				continue // erased since the scan
			}
			l.URL, l.Title = full[i].URL, full[i].Title
			add(&l, l.OccurredAt.UnixNano())
		}
	}
	for _, evs := range out {
		slices.SortFunc(evs, func(a, b funnelEvent) int { return cmp.Or(cmp.Compare(a.at, b.at), cmp.Compare(a.id, b.id)) })
	}
	return out, nil
}

func median(ds []time.Duration) *time.Duration {
	if len(ds) == 0 {
		return nil
	}
	slices.Sort(ds)
	m := ds[len(ds)/2]
	if len(ds)%2 == 0 {
		m = (ds[len(ds)/2-1] + ds[len(ds)/2]) / 2
	}
	return &m
}
