package models

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strings"
	"time"

	"gorm.io/gorm"
)

// The lead story. Each definition's description says what its event means
// ("the visitor clicked Start free trial on the pricing page"); the lead's
// narrative tells its timeline in those words, and its context gives the
// same as structured data, for an AI engine writing the lead's nurture
// emails. Both are deterministic: the same events give the same text.

const (
	// narrativeEvents caps the events read: the most recent ones.
	narrativeEvents = 500
	// NarrativeMaxBytes bounds the narrative; when it must cut, the
	// most recent visits stay.
	NarrativeMaxBytes = 12000
	// visitGap ends a visit: events further apart belong to two visits.
	visitGap = 30 * time.Minute
)

// LeadContext is the input an AI nurture-email writer needs about a lead.
type LeadContext struct {
	Lead struct {
		Email  string         `json:"email"`
		Name   *string        `json:"name"`
		Fields map[string]any `json:"fields"`
	} `json:"lead"`
	Timezone    string              `json:"timezone"`
	Definitions []ContextDefinition `json:"definitions"`
	Visits      []ContextVisit      `json:"visits"`
	Counts      struct {
		Events  int `json:"events"`
		Visits  int `json:"visits"`
		Devices int `json:"devices"`
		// Omitted is how many older events were left out (only the most
		// recent are read).
		Omitted int64 `json:"omittedEvents"`
	} `json:"counts"`
}

// ContextDefinition is a definition the lead's events used.
type ContextDefinition struct {
	Code        string `json:"code"`
	Name        string `json:"name"`
	Description string `json:"description"`
	Enabled     bool   `json:"enabled"`
}

// ContextVisit is a run of events no more than 30 minutes apart.
type ContextVisit struct {
	Start  string         `json:"start"`
	End    string         `json:"end"`
	Events []ContextEvent `json:"events"`
}

// ContextEvent is one event, in the app's timezone.
type ContextEvent struct {
	Time       string         `json:"time"`
	Code       string         `json:"code"`
	Device     string         `json:"device"`
	Page       string         `json:"page"`
	Title      string         `json:"title,omitempty"`
	Properties map[string]any `json:"properties"`
	Source     string         `json:"source"`
}

// narrativeInput is what both renderings are made from.
type narrativeInput struct {
	lead    *Lead
	loc     *time.Location
	tz      string
	defs    map[uint64]*EventDefinition
	events  []*Event // oldest first
	omitted int64
}

func loadNarrative(ctx context.Context, db *gorm.DB, l *Lead) (*narrativeInput, error) {
	var app App
	if err := db.WithContext(ctx).Select("id, timezone").Take(&app, l.AppID).Error; err != nil {
		return nil, err
	}
	loc, err := time.LoadLocation(app.Timezone)
	if err != nil {
		loc = time.UTC
	}
	devices := db.Model(&Device{}).Select("device_id").Where("app_id = ? AND lead_id = ?", l.AppID, l.ID)
	var events []*Event
	err = db.WithContext(ctx).Where("app_id = ? AND device_id IN (?)", l.AppID, devices).
		Order("occurred_at DESC, id DESC").Limit(narrativeEvents + 1).Find(&events).Error
	if err != nil {
		return nil, err
	}
	in := &narrativeInput{lead: l, loc: loc, tz: app.Timezone}
	if len(events) > narrativeEvents {
		events = events[:narrativeEvents]
		var total int64
		if err := db.WithContext(ctx).Model(&Event{}).Where("app_id = ? AND device_id IN (?)", l.AppID, devices).Count(&total).Error; err != nil {
			return nil, err
		}
		in.omitted = total - narrativeEvents
	}
	slices.Reverse(events)
	in.events = events
	ids := map[uint64]bool{}
	for _, e := range events {
		ids[e.DefinitionID] = true
	}
	in.defs, err = EventDefinitionsByID(ctx, db, slices.Sorted(maps.Keys(ids)))
	return in, err
}

// visits splits the events, oldest first, where they are more than
// visitGap apart.
func (in *narrativeInput) visits() [][]*Event {
	var out [][]*Event
	for i, e := range in.events {
		if i == 0 || e.OccurredAt.Sub(in.events[i-1].OccurredAt) > visitGap {
			out = append(out, nil)
		}
		out[len(out)-1] = append(out[len(out)-1], e)
	}
	return out
}

func (in *narrativeInput) def(e *Event) *EventDefinition {
	if d := in.defs[e.DefinitionID]; d != nil {
		return d
	}
	return &EventDefinition{Code: fmt.Sprintf("definition-%d", e.DefinitionID), Name: "Unknown event"}
}

// LeadContextOf returns the lead's context (see LeadContext). The caller
// has checked that the viewer may read the lead.
func LeadContextOf(ctx context.Context, db *gorm.DB, l *Lead) (*LeadContext, error) {
	in, err := loadNarrative(ctx, db, l)
	if err != nil {
		return nil, err
	}
	c := &LeadContext{Timezone: in.tz, Definitions: []ContextDefinition{}, Visits: []ContextVisit{}}
	c.Lead.Email, c.Lead.Name, c.Lead.Fields = l.Email, l.Name, map[string]any(l.Fields)
	if c.Lead.Fields == nil {
		c.Lead.Fields = map[string]any{}
	}
	used := map[string]ContextDefinition{}
	devices := map[string]bool{}
	for _, v := range in.visits() {
		cv := ContextVisit{Start: in.at(v[0].OccurredAt), End: in.at(v[len(v)-1].OccurredAt)}
		for _, e := range v {
			d := in.def(e)
			used[d.Code] = ContextDefinition{Code: d.Code, Name: d.Name, Description: d.Description, Enabled: d.Enabled}
			devices[e.DeviceID] = true
			props := map[string]any(e.Properties)
			if props == nil {
				props = map[string]any{}
			}
			cv.Events = append(cv.Events, ContextEvent{Time: in.at(e.OccurredAt), Code: d.Code, Device: e.DeviceID,
				Page: e.URL, Title: e.Title, Properties: props, Source: e.Source})
		}
		c.Visits = append(c.Visits, cv)
	}
	for _, code := range slices.Sorted(maps.Keys(used)) {
		c.Definitions = append(c.Definitions, used[code])
	}
	c.Counts.Events, c.Counts.Visits, c.Counts.Devices, c.Counts.Omitted = len(in.events), len(c.Visits), len(devices), in.omitted
	return c, nil
}

func (in *narrativeInput) at(t time.Time) string { return t.In(in.loc).Format(time.RFC3339) }

// LeadNarrative tells the lead's timeline as plain text (see the README's
// Privacy section for an example). The caller has checked that the viewer
// may read the lead.
func LeadNarrative(ctx context.Context, db *gorm.DB, l *Lead) (string, error) {
	in, err := loadNarrative(ctx, db, l)
	if err != nil {
		return "", err
	}
	var head strings.Builder
	who := oneLine(l.Email)
	if l.Name != nil && oneLine(*l.Name) != "" {
		who = oneLine(*l.Name) + " <" + who + ">"
	}
	fmt.Fprintf(&head, "Lead: %s\n", who)
	if len(l.Fields) > 0 {
		var parts []string
		for _, k := range slices.Sorted(maps.Keys(l.Fields)) {
			parts = append(parts, oneLine(k)+"="+plainValue(l.Fields[k]))
		}
		fmt.Fprintf(&head, "Fields: %s\n", strings.Join(parts, "; "))
	}
	visits := in.visits()
	devices := map[string]bool{}
	for _, e := range in.events {
		devices[e.DeviceID] = true
	}
	if len(in.events) == 0 {
		head.WriteString("No recorded activity.\n")
		return head.String(), nil
	}
	fmt.Fprintf(&head, "%s, %s on %s, times in %s.\n", plural(len(visits), "visit"), plural(len(in.events), "event"), plural(len(devices), "device"), in.tz)
	if in.omitted > 0 {
		fmt.Fprintf(&head, "Only the most recent %d events are told; %d earlier ones are left out.\n", len(in.events), in.omitted)
	}
	// Render each visit, then keep the most recent that fit.
	rendered := make([]string, len(visits))
	for i, v := range visits {
		rendered[i] = in.renderVisit(i+1, v)
	}
	budget := NarrativeMaxBytes - head.Len() - 80
	keep := len(rendered)
	for used := 0; keep > 0 && used+len(rendered[keep-1]) <= budget; keep-- {
		used += len(rendered[keep-1])
	}
	var out strings.Builder
	out.WriteString(head.String())
	if keep == len(rendered) {
		// Even the most recent visit is too long: its first lines.
		last := rendered[keep-1]
		cut := strings.LastIndexByte(last[:budget], '\n')
		rendered[keep-1] = last[:cut+1] + "(the rest of this visit is left out to keep this short.)\n"
		keep--
	}
	if keep > 0 {
		fmt.Fprintf(&out, "(%s left out to keep this short.)\n", plural(keep, "earlier visit"))
	}
	for _, r := range rendered[keep:] {
		out.WriteString(r)
	}
	return out.String(), nil
}

func (in *narrativeInput) renderVisit(n int, v []*Event) string {
	var b strings.Builder
	first, last := v[0].OccurredAt.In(in.loc), v[len(v)-1].OccurredAt.In(in.loc)
	span := first.Format("15:04")
	if end := last.Format("15:04"); end != span || last.YearDay() != first.YearDay() {
		span += "–" + end
	}
	fmt.Fprintf(&b, "\nVisit %d, %s, %s:\n", n, first.Format("Mon 2 Jan 2006"), span)
	page := ""
	device := ""
	for _, e := range v {
		d := in.def(e)
		at := e.OccurredAt.In(in.loc)
		b.WriteString("- ")
		b.WriteString(at.Format("Mon 2 Jan, 15:04"))
		b.WriteString(" — ")
		if e.DeviceID != device && device != "" {
			b.WriteString("on another device (" + e.DeviceID + "), ")
		}
		device = e.DeviceID
		if p := narrativePage(e.URL); p != "" && p != page {
			b.WriteString("visited " + p + ". ")
			page = p
		}
		b.WriteString(oneLine(d.Name))
		if desc := strings.TrimSpace(d.Description); desc != "" {
			b.WriteString(" (" + oneLine(desc) + ")")
		}
		if len(e.Properties) > 0 {
			var parts []string
			for _, k := range slices.Sorted(maps.Keys(e.Properties)) {
				parts = append(parts, oneLine(k)+"="+plainValue(e.Properties[k]))
			}
			b.WriteString(" [" + strings.Join(parts, ", ") + "]")
		}
		b.WriteString(".\n")
	}
	return b.String()
}

// narrativePage is the page of a URL as a reader says it: path and query,
// without scheme and host.
func narrativePage(raw string) string {
	if raw == "" {
		return ""
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return oneLine(raw)
	}
	p := u.EscapedPath()
	if p == "" {
		p = "/"
	}
	if u.RawQuery != "" {
		p += "?" + u.RawQuery
	}
	return oneLine(p)
}

// plainValue writes a property or field value as text: strings as they
// are (markup stays text), anything else as JSON.
func plainValue(v any) string {
	if s, ok := v.(string); ok {
		return oneLine(s)
	}
	b, _ := json.Marshal(v)
	return oneLine(string(b))
}

// oneLine is a value as the story tells it: on one line, without the
// embeddings, overrides and isolates of Unicode's bidirectional algorithm
// (U+202A–U+202E, U+2066–U+2069). A visitor's unmatched one (U+202E in a
// name) would reorder the story's own words after it up to the end of the
// line, for its reader and for the model that is fed the story.
func oneLine(s string) string {
	return strings.Join(strings.Fields(strings.Map(dropBidiControl, s)), " ")
}

func dropBidiControl(r rune) rune {
	if r >= 0x202a && r <= 0x202e || r >= 0x2066 && r <= 0x2069 {
		return -1
	}
	return r
}

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return fmt.Sprintf("%d %ss", n, word)
}
