package models

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strconv"
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
		return nil, Invalid("window", "must be between 1 second and 90 days")
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
	needFields := false
	for i, st := range in.Steps {
		id, ok := byCode[st.Code]
		if !ok {
			return nil, Invalid(fmt.Sprintf("steps.%d.code", i), "no definition has code %q", truncate(st.Code, 64))
		}
		if err := validateRules(fmt.Sprintf("steps.%d.rules", i), st.Rules, true); err != nil {
			return nil, err
		}
		stepDefs[i], needFields = id, needFields || len(st.Rules) > 0
	}
	visitors, err := funnelEvents(ctx, db, app.ID, slices.Compact(slices.Sorted(slices.Values(stepDefs))), s.from(), s.end.Add(in.Window), needFields)
	if err != nil {
		return nil, err
	}
	rep := &FunnelReport{From: s.from(), To: s.end, Steps: make([]*FunnelStep, len(in.Steps))}
	gaps := make([][]time.Duration, len(in.Steps))
	for i := range rep.Steps {
		rep.Steps[i] = &FunnelStep{Matcher: in.Steps[i]}
	}
	for _, evs := range visitors {
		masks := make([]uint16, len(evs))
		for j, e := range evs {
			for i, st := range in.Steps {
				if e.DefinitionID == stepDefs[i] && (len(st.Rules) == 0 || matchesRules(st.Rules, codes[e.DefinitionID], e.fields)) {
					masks[j] |= 1 << i
				}
			}
		}
		path := bestPath(evs, masks, len(in.Steps), s.from(), s.end, in.Window, in.Strict)
		for k, j := range path {
			rep.Steps[k].Entered++
			if k > 0 {
				gaps[k] = append(gaps[k], evs[j].OccurredAt.Sub(evs[path[k-1]].OccurredAt))
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

// bestPath returns the indexes of the events a visitor completed the steps
// with: the deepest progress over every start in [from, to), the earliest
// start among equals, each next step the earliest that qualifies, all within
// window of the start. Events must be in time order.
func bestPath(evs []funnelEvent, masks []uint16, steps int, from, to time.Time, window time.Duration, strict bool) []int {
	var best []int
	for start, e := range evs {
		if masks[start]&1 == 0 || e.OccurredAt.Before(from) || !e.OccurredAt.Before(to) {
			continue
		}
		path := []int{start}
		limit := e.OccurredAt.Add(window)
		for j := start + 1; j < len(evs) && len(path) < steps && !evs[j].OccurredAt.After(limit); j++ {
			if masks[j] == 0 {
				continue
			}
			if masks[j]&(1<<len(path)) != 0 {
				path = append(path, j)
			} else if strict {
				break
			}
		}
		if len(path) > len(best) {
			best = path
			if len(best) == steps {
				break
			}
		}
	}
	return best
}

// funnelEvent is the part of an event a funnel needs; fields is set only
// when a step has rules.
type funnelEvent struct {
	ID           uint64
	DefinitionID uint64
	OccurredAt   time.Time
	fields       *Event
}

// funnelEvents reads the events of defs in [from, to) grouped by visitor,
// each visitor's in time order. Without rules the read is covered by the
// (definition, time, device) index; devices are mapped to leads with one
// read of the app's identified devices rather than a join per event.
func funnelEvents(ctx context.Context, db *gorm.DB, appID uint64, defs []uint64, from, to time.Time, withFields bool) (map[string][]funnelEvent, error) {
	db = db.WithContext(ctx)
	var owners []struct {
		DeviceID string
		LeadID   uint64
	}
	if err := db.Model(&Device{}).Select("device_id, lead_id").Where("app_id = ? AND lead_id IS NOT NULL", appID).Scan(&owners).Error; err != nil {
		return nil, err
	}
	leadOf := make(map[string]string, len(owners))
	for _, o := range owners {
		// A NUL cannot occur in a device id, so lead keys never meet device ids.
		leadOf[o.DeviceID] = "\x00" + strconv.FormatUint(o.LeadID, 10)
	}
	cols := "id, device_id, definition_id, occurred_at"
	if withFields {
		cols += ", url, referrer, source, title, properties"
	}
	// The definitions are the app's, so no app_id condition: it would cost a
	// row lookup per index entry.
	rows, err := db.Model(&Event{}).Select(cols).
		Where("definition_id IN ? AND occurred_at >= ? AND occurred_at < ?", defs, from, to).Rows()
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string][]funnelEvent{}
	for rows.Next() {
		var e funnelEvent
		var at dbTime
		var device string
		dest := []any{&e.ID, &device, &e.DefinitionID, &at}
		if withFields {
			e.fields = &Event{}
			dest = append(dest, &e.fields.URL, &e.fields.Referrer, &e.fields.Source, &e.fields.Title, &e.fields.Properties)
		}
		if err := rows.Scan(dest...); err != nil {
			return nil, err
		}
		e.OccurredAt = at.Time
		k, ok := leadOf[device]
		if !ok {
			k = device
		}
		out[k] = append(out[k], e)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	for _, evs := range out {
		slices.SortFunc(evs, func(a, b funnelEvent) int {
			return cmp.Or(a.OccurredAt.Compare(b.OccurredAt), cmp.Compare(a.ID, b.ID))
		})
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
