package models

import (
	"context"
	"encoding/base64"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"gorm.io/gorm"
)

// Sources a trigger can come from.
const (
	SourceShortcode = "shortcode"
	SourceBlock     = "block"
	SourceJS        = "js"
	SourceAPI       = "api"
	SourceWebhook   = "webhook"
	SourceWordPress = "wordpress"
)

// Event is one recorded trigger of a definition by a device.
type Event struct {
	ID           uint64     `gorm:"primaryKey;autoIncrement:false;index:idx_events_app_id,priority:2"`
	AppID        uint64     `gorm:"not null;index:idx_events_app_id,priority:1;uniqueIndex:idx_events_app_message,priority:1;index:idx_events_app_device_time,priority:1;index:idx_events_app_time,priority:1"`
	DefinitionID uint64     `gorm:"not null;index:idx_events_definition_time,priority:1"`
	DeviceID     string     `gorm:"size:128;not null;index:idx_events_app_device_time,priority:2"`
	MessageID    *string    `gorm:"size:128;uniqueIndex:idx_events_app_message,priority:2"`
	URL          string     `gorm:"size:2048;not null"`
	Referrer     string     `gorm:"size:2048;not null"`
	Title        string     `gorm:"size:512;not null"`
	Properties   JSONObject `gorm:"type:text;not null"`
	Source       string     `gorm:"size:16;not null"`
	OccurredAt   time.Time  `gorm:"not null;index:idx_events_app_device_time,priority:3;index:idx_events_app_time,priority:2;index:idx_events_definition_time,priority:2"`
	ReceivedAt   time.Time  `gorm:"not null"`
	// Integration is the webhook integration the event came through
	// (generic, pos, billing, …), "" for every other way in.
	Integration string `gorm:"size:32;not null;default:''"`
	// live is the room a streamed copy holds in its reader's LiveBudget.
	live liveHold `gorm:"-"`
}

// EventPage is one page of a timeline, newest first.
type EventPage struct {
	Events      []*Event
	HasNextPage bool
}

// Cursor returns the opaque position of e in a timeline.
func (e *Event) Cursor() string {
	return base64.RawURLEncoding.EncodeToString(fmt.Appendf(nil, "%d:%d", e.OccurredAt.UnixMilli(), e.ID))
}

func parseEventCursor(s string) (time.Time, uint64, error) {
	bad := Invalid("after", "is not a cursor from this timeline")
	raw, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return time.Time{}, 0, bad
	}
	ms, id, ok := strings.Cut(string(raw), ":")
	if !ok {
		return time.Time{}, 0, bad
	}
	msN, err1 := strconv.ParseInt(ms, 10, 64)
	idN, err2 := strconv.ParseUint(id, 10, 64)
	// Every store holds the years 1000 to 9999 (MySQL's DATETIME range),
	// and database/sql takes no uint64 with the high bit set; a cursor
	// outside them was not made here.
	if err1 != nil || err2 != nil || msN < minCursorMilli || msN > maxCursorMilli || idN > math.MaxInt64 {
		return time.Time{}, 0, bad
	}
	return time.UnixMilli(msN).UTC(), idN, nil
}

var (
	minCursorMilli = minStoredTime.UnixMilli()
	maxCursorMilli = maxStoredTime.UnixMilli() - 1
)

// DeviceTimeline pages through one device's events, newest first.
func DeviceTimeline(ctx context.Context, db *gorm.DB, d *Device, first int, after string) (*EventPage, error) {
	q := db.WithContext(ctx).Where("app_id = ? AND device_id = ?", d.AppID, d.DeviceID)
	return timeline(q, first, after)
}

// LeadTimeline pages through the events of all a lead's devices, newest first,
// including those recorded before the devices were identified.
func LeadTimeline(ctx context.Context, db *gorm.DB, l *Lead, first int, after string) (*EventPage, error) {
	devices := db.Model(&Device{}).Select("device_id").Where("app_id = ? AND lead_id = ?", l.AppID, l.ID)
	q := db.WithContext(ctx).Where("app_id = ? AND device_id IN (?)", l.AppID, devices)
	return timeline(q, first, after)
}

func timeline(q *gorm.DB, first int, after string) (*EventPage, error) {
	if err := checkFirst(first); err != nil {
		return nil, err
	}
	if after != "" {
		at, id, err := parseEventCursor(after)
		if err != nil {
			return nil, err
		}
		q = q.Where("(occurred_at < ? OR (occurred_at = ? AND id < ?))", at, at, id)
	}
	var events []*Event
	if err := q.Order("occurred_at DESC, id DESC").Limit(first + 1).Find(&events).Error; err != nil {
		return nil, err
	}
	page := &EventPage{Events: events}
	if len(events) > first {
		page.Events, page.HasNextPage = events[:first], true
	}
	return page, nil
}

const insertEventsSQLPrefix = "INSERT INTO events (id, app_id, definition_id, device_id, message_id, url, referrer, title, properties, source, occurred_at, received_at, integration) VALUES "

// insertEvents stores events with multi-row INSERTs of at most chunk rows;
// props[i] is the JSON of events[i].Properties, encoded once by the caller.
func insertEvents(tx *gorm.DB, events []*Event, props []string, chunk int) error {
	for start := 0; start < len(events); start += chunk {
		end := min(start+chunk, len(events))
		var sb strings.Builder
		sb.Grow(len(insertEventsSQLPrefix) + (end-start)*26)
		sb.WriteString(insertEventsSQLPrefix)
		args := make([]any, 0, (end-start)*13)
		for i := start; i < end; i++ {
			if i > start {
				sb.WriteByte(',')
			}
			sb.WriteString("(?,?,?,?,?,?,?,?,?,?,?,?,?)")
			e := events[i]
			args = append(args, e.ID, e.AppID, e.DefinitionID, e.DeviceID, e.MessageID, e.URL, e.Referrer, e.Title,
				props[i], e.Source, e.OccurredAt, e.ReceivedAt, e.Integration)
		}
		if err := tx.Exec(sb.String(), args...).Error; err != nil {
			return err
		}
	}
	return nil
}
