package models

import (
	"context"
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
	ctx, cancel := context.WithTimeout(ctx, dbCallTimeout)
	defer cancel()
	q := db.WithContext(ctx)
	var def EventDefinition
	if err := q.Select("id, code, name, color, description").Take(&def, e.DefinitionID).Error; err != nil {
		return nil, fmt.Errorf("models.buildPayload: definition: %w", err)
	}
	var dev Device
	device := JSONObject{"id": e.DeviceID}
	var lead any
	err := q.Where("app_id = ? AND device_id = ?", e.AppID, e.DeviceID).Take(&dev).Error
	switch {
	case err == nil:
		device["userAgent"], device["firstSeenAt"], device["lastSeenAt"] = dev.UserAgent, dev.FirstSeenAt.UTC(), dev.LastSeenAt.UTC()
		if dev.LeadID != nil {
			var l Lead
			if err := q.Take(&l, *dev.LeadID).Error; err == nil {
				lead = JSONObject{"id": FormatID(l.ID), "email": l.Email, "name": l.Name, "fields": l.Fields}
			} else if !errors.Is(err, gorm.ErrRecordNotFound) {
				return nil, fmt.Errorf("models.buildPayload: lead: %w", err)
			}
		}
	case !errors.Is(err, gorm.ErrRecordNotFound):
		return nil, fmt.Errorf("models.buildPayload: device: %w", err)
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

var placeholder = regexp.MustCompile(`\{\{\s*([A-Za-z0-9_.]+)\s*\}\}`)

// slackMessage renders the Slack incoming-webhook body: the template with
// {{field}} placeholders (event.name, event.url, lead.email, device.id,
// properties.plan, app.name, rule.name, ...), or a default summary, in an
// attachment of the definition's color.
func slackMessage(payload JSONObject, template string) JSONObject {
	data, _ := payload["data"].(JSONObject)
	fields := map[string]string{}
	flatten("", map[string]any(data), fields)
	for k, v := range fields {
		if rest, ok := strings.CutPrefix(k, "event.properties."); ok {
			fields["properties."+rest] = v
		}
	}
	if template == "" {
		who := fields["device.id"]
		if fields["lead.email"] != "" {
			who = fields["lead.email"]
			if fields["lead.name"] != "" {
				who = fields["lead.name"] + " (" + fields["lead.email"] + ")"
			}
		}
		template = "*{{event.name}}* by " + slackEscape(who) + "\n{{event.url}}"
		var props []string
		for k := range fields {
			if strings.HasPrefix(k, "properties.") {
				props = append(props, k)
			}
		}
		sort.Strings(props)
		for _, k := range props {
			template += "\n• " + strings.TrimPrefix(k, "properties.") + ": {{" + k + "}}"
		}
	}
	text := placeholder.ReplaceAllStringFunc(template, func(m string) string {
		return slackEscape(fields[placeholder.FindStringSubmatch(m)[1]])
	})
	return JSONObject{
		"text":        text,
		"attachments": []any{JSONObject{"color": fields["event.color"], "text": text, "fallback": text}},
	}
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
		default:
			out[key] = fmt.Sprint(x)
		}
	}
}

// slackEscape escapes the three characters Slack's mrkdwn reserves.
func slackEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}
