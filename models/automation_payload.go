package models

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"time"

	"gorm.io/gorm"
)

// errEventGone means a delivery's event was erased: it is never sent.
var errEventGone = errors.New("the event was erased")

// buildPayload is the webhook body for an event: the event with its
// definition's name, color and description, the device, the lead when
// identified, the app and the rule. It is built when sent, from what is
// stored then, so an erased event or lead is never sent.
func buildPayload(ctx context.Context, db *gorm.DB, app *App, rule *AutomationRule, e *Event) (JSONObject, error) {
	parts, err := loadPayloadParts(ctx, db, []*Event{e})
	if err != nil {
		return nil, err
	}
	return parts.payload(app, rule, e)
}

// payloadParts are what the payloads of a batch of events refer to, read
// with one query per kind.
type payloadParts struct {
	defs    map[uint64]*EventDefinition
	devices map[DeviceKey]*Device
	leads   map[uint64]*Lead
}

func loadPayloadParts(ctx context.Context, db *gorm.DB, events []*Event) (*payloadParts, error) {
	ctx, cancel := context.WithTimeout(ctx, dbCallTimeout)
	defer cancel()
	q := db.WithContext(ctx)
	p := &payloadParts{defs: map[uint64]*EventDefinition{}, devices: map[DeviceKey]*Device{}, leads: map[uint64]*Lead{}}
	defIDs, devsByApp := map[uint64]bool{}, map[uint64]map[string]bool{}
	for _, e := range events {
		defIDs[e.DefinitionID] = true
		if devsByApp[e.AppID] == nil {
			devsByApp[e.AppID] = map[string]bool{}
		}
		devsByApp[e.AppID][e.DeviceID] = true
	}
	var defs []*EventDefinition
	if err := q.Select("id, code, name, color, description").Where("id IN ?", keysOf(defIDs)).Find(&defs).Error; err != nil {
		return nil, fmt.Errorf("models.loadPayloadParts: definitions: %w", err)
	}
	for _, d := range defs {
		p.defs[d.ID] = d
	}
	leadIDs := map[uint64]bool{}
	for appID, devs := range devsByApp {
		for chunk := range inChunks(keysOf(devs), 500) {
			var ds []*Device
			if err := q.Where("app_id = ? AND device_id IN ?", appID, chunk).Find(&ds).Error; err != nil {
				return nil, fmt.Errorf("models.loadPayloadParts: devices: %w", err)
			}
			for _, d := range ds {
				p.devices[DeviceKey{AppID: d.AppID, DeviceID: d.DeviceID}] = d
				if d.LeadID != nil {
					leadIDs[*d.LeadID] = true
				}
			}
		}
	}
	if len(leadIDs) > 0 {
		var leads []*Lead
		if err := q.Where("id IN ?", keysOf(leadIDs)).Find(&leads).Error; err != nil {
			return nil, fmt.Errorf("models.loadPayloadParts: leads: %w", err)
		}
		for _, l := range leads {
			p.leads[l.ID] = l
		}
	}
	return p, nil
}

// payload is the webhook body of e, from the parts.
func (p *payloadParts) payload(app *App, rule *AutomationRule, e *Event) (JSONObject, error) {
	def := p.defs[e.DefinitionID]
	if def == nil {
		return nil, fmt.Errorf("models.buildPayload: definition %d of event %d: %w", e.DefinitionID, e.ID, errEventGone)
	}
	device := JSONObject{"id": e.DeviceID}
	var lead any
	if dev := p.devices[DeviceKey{AppID: e.AppID, DeviceID: e.DeviceID}]; dev != nil {
		device["userAgent"], device["firstSeenAt"], device["lastSeenAt"] = dev.UserAgent, dev.FirstSeenAt.UTC(), dev.LastSeenAt.UTC()
		if dev.LeadID != nil {
			if l := p.leads[*dev.LeadID]; l != nil {
				lead = JSONObject{"id": FormatID(l.ID), "email": l.Email, "name": l.Name, "fields": l.Fields}
			}
		}
	}
	props := e.Properties
	if props == nil {
		props = JSONObject{}
	}
	return JSONObject{
		"type":      "event.triggered",
		"timestamp": e.ReceivedAt.UTC(),
		"data": JSONObject{
			"app":  JSONObject{"id": app.PublicID, "name": app.Name},
			"rule": JSONObject{"id": FormatID(rule.ID), "name": rule.Name},
			"event": JSONObject{
				"id": FormatID(e.ID), "code": def.Code, "name": def.Name, "color": def.Color, "description": def.Description,
				"url": e.URL, "referrer": e.Referrer, "title": e.Title, "properties": props, "source": e.Source,
				"occurredAt": e.OccurredAt.UTC(), "receivedAt": e.ReceivedAt.UTC(),
			},
			"device": device,
			"lead":   lead,
		},
	}, nil
}

// sampleEvent stands in for an event when an action is tried before any
// matched.
func sampleEvent(app *App) *Event {
	now := Now()
	return &Event{ID: 0, AppID: app.ID, DeviceID: "sample-device", URL: "https://example.com/pricing", Title: "Pricing",
		Properties: JSONObject{"plan": "pro"}, Source: SourceAPI, OccurredAt: now, ReceivedAt: now}
}

// placeholder is a template's {{field}}: any name without braces, so
// properties whose keys hold spaces or dashes can be named too.
var placeholder = regexp.MustCompile(`\{\{\s*([^{}]*?)\s*\}\}`)

// slackMessage renders the Slack incoming-webhook body: the template with
// {{field}} placeholders (event.name, event.url, lead.email, device.id,
// properties.plan, app.name, rule.name, ...), or a default summary, in an
// attachment of the definition's color. Only the author's template is
// read for placeholders: the values put in its place (visitors' text
// among them) are escaped text, never read again.
func slackMessage(payload JSONObject, template string) JSONObject {
	data, _ := payload["data"].(JSONObject)
	fields := map[string]string{}
	flatten("", map[string]any(data), fields)
	for k, v := range fields {
		if rest, ok := strings.CutPrefix(k, "event.properties."); ok {
			fields["properties."+rest] = v
		}
	}
	var text string
	if template == "" {
		text = defaultSlackText(fields)
	} else {
		text = placeholder.ReplaceAllStringFunc(template, func(m string) string {
			return slackEscape(fields[placeholder.FindStringSubmatch(m)[1]])
		})
	}
	return JSONObject{
		"text":        text,
		"attachments": []any{JSONObject{"color": fields["event.color"], "text": text, "fallback": text}},
	}
}

// defaultSlackText is the message of an action without a template: the
// definition's name in bold, the lead (or the device), the page, then
// each property on a line of its own, in key order.
func defaultSlackText(fields map[string]string) string {
	who := fields["device.id"]
	if fields["lead.email"] != "" {
		who = fields["lead.email"]
		if fields["lead.name"] != "" {
			who = fields["lead.name"] + " (" + fields["lead.email"] + ")"
		}
	}
	var b strings.Builder
	b.WriteString("*" + slackEscape(fields["event.name"]) + "* by " + slackEscape(who) + "\n" + slackEscape(fields["event.url"]))
	var props []string
	for k := range fields {
		if strings.HasPrefix(k, "properties.") {
			props = append(props, k)
		}
	}
	sort.Strings(props)
	for _, k := range props {
		b.WriteString("\n• " + slackEscape(strings.TrimPrefix(k, "properties.")) + ": " + slackEscape(fields[k]))
	}
	return b.String()
}

func flatten(prefix string, m map[string]any, out map[string]string) {
	for k, v := range m {
		key := k
		if prefix != "" {
			key = prefix + "." + k
		}
		switch x := v.(type) {
		case JSONObject:
			flatten(key, map[string]any(x), out)
		case map[string]any:
			flatten(key, x, out)
		case nil:
		case *string:
			if x != nil {
				out[key] = *x
			}
		case time.Time:
			out[key] = x.Format(time.RFC3339)
		case []any:
			b, _ := json.Marshal(x) // a list reads as JSON, not as Go prints it
			out[key] = string(b)
		default:
			out[key] = fmt.Sprint(x)
		}
	}
}

// slackEscape escapes the three characters Slack's mrkdwn reserves.
func slackEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}
