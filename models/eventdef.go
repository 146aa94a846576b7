package models

import (
	"context"
	"errors"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"gorm.io/gorm"
)

// EventDefinition is a per-app event code with its presentation.
type EventDefinition struct {
	ID               uint64 `gorm:"primaryKey"`
	AppID            uint64 `gorm:"not null;uniqueIndex:idx_event_definitions_app_code,priority:1"`
	Code             string `gorm:"size:64;not null;uniqueIndex:idx_event_definitions_app_code,priority:2"`
	Name             string `gorm:"size:200;not null"`
	Color            string `gorm:"size:7;not null"`
	Description      string `gorm:"size:2000;not null"`
	Enabled          bool   `gorm:"not null"`
	BuiltIn          bool   `gorm:"not null"`
	TriggerCount     int64  `gorm:"not null;default:0"`
	FirstTriggeredAt *time.Time
	LastTriggeredAt  *time.Time
	CreatedAt        time.Time `gorm:"not null"`
	UpdatedAt        time.Time `gorm:"not null"`
}

// EventDefinitionInput holds the editable fields of a definition; nil means unchanged.
type EventDefinitionInput struct {
	Code        *string
	Name        *string
	Color       *string
	Description *string
	Enabled     *bool
}

const defaultColor = "#6B7280"

var (
	codePattern  = regexp.MustCompile(`^[a-z0-9_.\-]{1,64}$`)
	colorPattern = regexp.MustCompile(`^#[0-9A-Fa-f]{6}$`)
)

// ValidateCode checks the code format shared by definitions and triggers
// (codePattern, checked by hand: it runs for every trigger).
func ValidateCode(code string) error {
	ok := len(code) >= 1 && len(code) <= 64
	for i := 0; ok && i < len(code); i++ {
		c := code[i]
		ok = c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.'
	}
	if !ok {
		return Invalid("code", "must be 1 to 64 lowercase letters, digits, '_', '-' or '.'")
	}
	return nil
}

// apply validates in and copies it onto d; the error names every bad field.
func (d *EventDefinition) apply(in EventDefinitionInput) error {
	var bad validation
	if in.Code != nil && bad.add(ValidateCode(*in.Code)) {
		d.Code = *in.Code
	}
	if in.Name != nil {
		if name, err := checkName(*in.Name); bad.add(err) {
			d.Name = name
		}
	}
	if in.Color != nil && bad.check("color", colorPattern.MatchString(*in.Color), "must be a #RRGGBB color") {
		d.Color = strings.ToUpper(*in.Color)
	}
	if in.Description != nil {
		desc := strings.TrimSpace(*in.Description)
		if bad.check("description", utf8.RuneCountInString(desc) <= 2000, "must be at most 2000 characters") {
			d.Description = desc
		}
	}
	if in.Enabled != nil {
		d.Enabled = *in.Enabled
	}
	return bad.err()
}

func builtInDefinitions(appID uint64) []EventDefinition {
	def := func(code, name, color, desc string) EventDefinition {
		return EventDefinition{AppID: appID, Code: code, Name: name, Color: color, Description: desc, Enabled: true, BuiltIn: true}
	}
	return []EventDefinition{
		def("view", "Page view", "#3B82F6", "Viewed a page"),
		def("click", "Click", "#10B981", "Clicked a link or button"),
		def("submit", "Form submit", "#F59E0B", "Submitted a form"),
	}
}

// CreateEventDefinition adds a definition to the app with this public id. Editors and owners.
func CreateEventDefinition(ctx context.Context, db *gorm.DB, v Viewer, appPublicID string, in EventDefinitionInput) (*EventDefinition, error) {
	app, err := v.App(ctx, db, appPublicID, RoleEditor)
	if err != nil {
		return nil, err
	}
	var bad validation
	bad.check("code", in.Code != nil, "is required")
	bad.check("name", in.Name != nil, "is required")
	def := &EventDefinition{AppID: app.ID, Color: defaultColor, Enabled: true}
	bad.add(def.apply(in))
	if err := bad.err(); err != nil {
		return nil, err
	}
	err = db.WithContext(ctx).Create(def).Error
	if errors.Is(err, gorm.ErrDuplicatedKey) {
		return nil, ConflictOn("code", "code %q is already defined in this app", def.Code)
	}
	if err != nil {
		return nil, err
	}
	clearCatalogs(db)
	return def, nil
}

// UpdateEventDefinition changes the given fields of a definition and only
// those, so concurrent edits of different fields do not undo each other (a
// description edit cannot re-enable a definition disabled meanwhile). The
// code may change only while the definition has never been triggered; the
// check and the write are one statement, so a trigger racing the rename
// cannot slip in between. Writing through gorm refreshes the catalog.
func UpdateEventDefinition(ctx context.Context, db *gorm.DB, v Viewer, id string, in EventDefinitionInput) (*EventDefinition, error) {
	def, err := EventDefinitionByID(ctx, db, v, id, RoleEditor)
	if err != nil {
		return nil, err
	}
	codeChange := in.Code != nil && *in.Code != def.Code
	if err := def.apply(in); err != nil {
		return nil, err
	}
	changes := map[string]any{"updated_at": Now()}
	if in.Code != nil {
		changes["code"] = def.Code
	}
	if in.Name != nil {
		changes["name"] = def.Name
	}
	if in.Color != nil {
		changes["color"] = def.Color
	}
	if in.Description != nil {
		changes["description"] = def.Description
	}
	if in.Enabled != nil {
		changes["enabled"] = def.Enabled
	}
	q := db.WithContext(ctx).Model(&EventDefinition{}).Where("id = ?", def.ID)
	if codeChange {
		q = q.Where("trigger_count = 0")
	}
	res := q.Updates(changes)
	switch {
	case errors.Is(res.Error, gorm.ErrDuplicatedKey):
		return nil, ConflictOn("code", "code %q is already defined in this app", def.Code)
	case res.Error != nil:
		return nil, res.Error
	case res.RowsAffected == 0 && codeChange:
		return nil, newError(ErrEventAlreadyTriggered, "the code of a definition that has been triggered cannot change")
	}
	clearCatalogs(db)
	return EventDefinitionByID(ctx, db, v, id, RoleEditor)
}

// DeleteEventDefinition deletes a definition that has never been triggered.
// The writer bumps trigger_count under the row lock in the same transaction
// as the events it stores, so "trigger_count = 0" here is race-proof.
func DeleteEventDefinition(ctx context.Context, db *gorm.DB, v Viewer, id string) (*EventDefinition, error) {
	def, err := EventDefinitionByID(ctx, db, v, id, RoleEditor)
	if err != nil {
		return nil, err
	}
	res := db.WithContext(ctx).Where("id = ? AND trigger_count = 0", def.ID).Delete(&EventDefinition{})
	if res.Error != nil {
		return nil, res.Error
	}
	clearCatalogs(db)
	if res.RowsAffected == 0 {
		if _, err := EventDefinitionByID(ctx, db, v, id, RoleEditor); err != nil {
			return nil, err
		}
		return nil, newError(ErrEventAlreadyTriggered, "definition %q has been triggered; disable it instead", def.Code)
	}
	return def, nil
}

// EventDefinitionByID returns one definition by its id, if the viewer has at
// least role need in its app.
func EventDefinitionByID(ctx context.Context, db *gorm.DB, v Viewer, id string, need Role) (*EventDefinition, error) {
	return viewByID(ctx, db, v, id, need, "event definition", func(d *EventDefinition) uint64 { return d.AppID })
}

// EventDefinitions lists an app's definitions by code, optionally by enabled flag.
func EventDefinitions(ctx context.Context, db *gorm.DB, appID uint64, enabled *bool) ([]*EventDefinition, error) {
	q := db.WithContext(ctx).Where("app_id = ?", appID)
	if enabled != nil {
		q = q.Where("enabled = ?", *enabled)
	}
	var defs []*EventDefinition
	err := q.Order("code").Find(&defs).Error
	return defs, err
}

// EventDefinitionsByID loads definitions by id, for dataloaders.
func EventDefinitionsByID(ctx context.Context, db *gorm.DB, ids []uint64) (map[uint64]*EventDefinition, error) {
	return loadByID(ctx, db, ids, func(d *EventDefinition) uint64 { return d.ID })
}

// ParseID parses a numeric id from the API, reporting field on failure. Ids
// fit in a signed 64-bit integer, as database/sql requires of parameters.
func ParseID(field, s string) (uint64, error) {
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil || n == 0 || n > math.MaxInt64 {
		return 0, Invalid(field, "is not a valid id")
	}
	return n, nil
}

// FormatID writes a numeric id the way the API shows it.
func FormatID(id uint64) string { return strconv.FormatUint(id, 10) }
