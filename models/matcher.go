package models

import (
	"context"
	"database/sql/driver"
	"errors"
	"maps"
	"slices"
	"strings"
	"time"

	"gorm.io/gorm"
)

// EventMatcher is a stored, named Matcher, reusable by goals.
type EventMatcher struct {
	ID        uint64    `gorm:"primaryKey"`
	AppID     uint64    `gorm:"not null;uniqueIndex:idx_event_matchers_app_name,priority:1"`
	Name      string    `gorm:"size:200;not null;uniqueIndex:idx_event_matchers_app_name,priority:2"`
	Code      string    `gorm:"size:64;not null"`
	Rules     RuleList  `gorm:"type:text;not null"`
	CreatedAt time.Time `gorm:"not null"`
	UpdatedAt time.Time `gorm:"not null"`
}

// Matcher returns the matcher's code and rules.
func (m *EventMatcher) Matcher() Matcher { return Matcher{Code: m.Code, Rules: m.Rules} }

// RuleList is a list of rules stored as JSON.
type RuleList []Rule

// Value implements driver.Valuer.
func (l RuleList) Value() (driver.Value, error) {
	if l == nil {
		return "[]", nil
	}
	return jsonValue([]Rule(l))
}

// Scan implements sql.Scanner.
func (l *RuleList) Scan(src any) error { return scanJSON(src, (*[]Rule)(l)) }

// EventMatcherInput holds the editable fields of a matcher; nil means unchanged.
type EventMatcherInput struct {
	Name  *string
	Code  *string
	Rules []Rule
}

// apply validates in and copies it onto m; the error names every bad field.
func (m *EventMatcher) apply(in EventMatcherInput) error {
	var bad validation
	if in.Name != nil {
		if name, err := checkName(*in.Name); bad.add(err) {
			m.Name = name
		}
	}
	if in.Code != nil && bad.add(ValidateCode(*in.Code)) {
		m.Code = *in.Code
	}
	if in.Rules != nil && bad.add(validateRules("rules", in.Rules, true)) && bad.add(checkStoredJSON("rules", []Rule(in.Rules))) {
		m.Rules = in.Rules
	}
	return bad.err()
}

// CreateEventMatcher stores a named matcher in the app.
func CreateEventMatcher(ctx context.Context, db *gorm.DB, app *App, in EventMatcherInput) (*EventMatcher, error) {
	var bad validation
	bad.check("name", in.Name != nil, "is required")
	bad.check("code", in.Code != nil, "is required")
	m := &EventMatcher{AppID: app.ID, Rules: RuleList{}}
	bad.add(m.apply(in))
	if err := bad.err(); err != nil {
		return nil, err
	}
	return m, conflictOnDuplicate(db.WithContext(ctx).Create(m).Error, "name", "a matcher named %q exists in this app", m.Name)
}

// UpdateEventMatcher changes the given fields of a matcher of the app, and
// only those, so concurrent edits of different fields do not undo each
// other. The row is read locked, so the matcher it answers is the one
// stored.
func UpdateEventMatcher(ctx context.Context, db *gorm.DB, app *App, id string, in EventMatcherInput) (*EventMatcher, error) {
	var m *EventMatcher
	err := db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var err error
		if m, err = EventMatcherByID(ctx, forUpdate(tx), app, id); err != nil {
			return err
		}
		if err := m.apply(in); err != nil {
			return err
		}
		m.UpdatedAt = Now()
		changes := map[string]any{"updated_at": m.UpdatedAt}
		if in.Name != nil {
			changes["name"] = m.Name
		}
		if in.Code != nil {
			changes["code"] = m.Code
		}
		if in.Rules != nil {
			changes["rules"] = m.Rules
		}
		return tx.Model(&EventMatcher{}).Where("id = ?", m.ID).Updates(changes).Error
	})
	if errors.Is(err, gorm.ErrDuplicatedKey) {
		return nil, ConflictOn("name", "a matcher named %q exists in this app", m.Name)
	}
	if err != nil {
		return nil, err
	}
	return m, nil
}

// DeleteEventMatcher deletes a matcher no goal or automation rule uses (else CONFLICT).
func DeleteEventMatcher(ctx context.Context, db *gorm.DB, app *App, id string) (*EventMatcher, error) {
	m, err := EventMatcherByID(ctx, db, app, id)
	if err != nil {
		return nil, err
	}
	// Retried: a goal or rule moved meanwhile locks its old matcher late.
	err = withRetry(ctx, func() error { return deleteEventMatcher(ctx, db, m, id) })
	return m, err
}

// deleteEventMatcher is DeleteEventMatcher's transaction.
func deleteEventMatcher(ctx context.Context, db *gorm.DB, m *EventMatcher, id string) error {
	return db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		// The lock keepMatchers takes: a goal or rule being stored with m
		// is either counted below or refused there.
		if err := forUpdate(tx).Where("id = ?", m.ID).Take(&EventMatcher{}).Error; err != nil {
			if errors.Is(err, gorm.ErrRecordNotFound) {
				return newError(ErrNotFound, "matcher %s not found", id)
			}
			return err
		}
		// One locking read per column, each through its own index: with
		// "start_matcher_id = ? OR completion_matcher_id = ?" MariaDB scans
		// the whole table for a matcher many goals start from, and locks
		// every goal of every app until this transaction ends.
		goals := map[uint64]bool{}
		for _, column := range []string{"start_matcher_id", "completion_matcher_id"} {
			var ids []uint64
			if err := forUpdate(tx.Model(&Goal{})).Where(column+" = ?", m.ID).Pluck("id", &ids).Error; err != nil {
				return err
			}
			for _, id := range ids {
				goals[id] = true
			}
		}
		if len(goals) > 0 {
			return newError(ErrConflict, "matcher %q is used by %d goals", m.Name, len(goals))
		}
		var used int64
		if err := forUpdate(tx.Model(&AutomationRule{})).Where("matcher_id = ?", m.ID).Count(&used).Error; err != nil {
			return err
		}
		if used > 0 {
			return newError(ErrConflict, "matcher %q is used by %d automation rules", m.Name, used)
		}
		return tx.Delete(m).Error
	})
}

// EventMatcherByID returns one matcher of the app.
func EventMatcherByID(ctx context.Context, db *gorm.DB, app *App, id string) (*EventMatcher, error) {
	n, err := ParseID("id", id)
	if err != nil {
		return nil, err
	}
	var m EventMatcher
	err = db.WithContext(ctx).Where("app_id = ? AND id = ?", app.ID, n).Take(&m).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, newError(ErrNotFound, "matcher %s not found", id)
	}
	return &m, err
}

// keepMatchers locks, until tx ends, the matchers a goal or rule is being
// stored with (found by name in its app; fields maps each id to the
// argument that named it) and those it is moving off (leaving), in id
// order so that writers do not deadlock, and refuses one of fields deleted
// since it was looked up. DeleteEventMatcher takes the same lock before it
// looks for goals and rules, so that none is ever left without its
// matcher, and a move off a matcher waits for its delete (or the delete
// for the move) before either locks the goal's or rule's row: on MariaDB
// the delete's count locks the goal's index entry for that matcher, which
// the move rewrites, and a move holding the row while the delete held the
// entry deadlocked.
func keepMatchers(tx *gorm.DB, fields map[uint64]string, leaving ...uint64) error {
	ids := slices.Collect(maps.Keys(fields))
	for _, id := range leaving {
		if !slices.Contains(ids, id) {
			ids = append(ids, id)
		}
	}
	if len(ids) == 0 {
		return nil
	}
	slices.Sort(ids)
	var found []uint64
	// By primary key alone: through the app's index MariaDB locks every
	// matcher of the app, and a delete and a goal deadlock.
	err := forUpdate(tx.Model(&EventMatcher{})).Where("id IN ?", ids).Order("id").Pluck("id", &found).Error
	if err != nil {
		return err
	}
	for _, id := range slices.Sorted(maps.Keys(fields)) {
		if !slices.Contains(found, id) {
			return Invalid(fields[id], "the matcher was deleted meanwhile")
		}
	}
	return nil
}

// eventMatcherByName returns one matcher of the app by name.
func eventMatcherByName(ctx context.Context, db *gorm.DB, appID uint64, field, name string) (*EventMatcher, error) {
	var m EventMatcher
	err := db.WithContext(ctx).Where("app_id = ? AND name = ?", appID, strings.TrimSpace(name)).Take(&m).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, Invalid(field, "no matcher named %q in this app", truncate(name, 80))
	}
	return &m, err
}

// EventMatchers lists the app's matchers by name.
func EventMatchers(ctx context.Context, db *gorm.DB, appID uint64) ([]*EventMatcher, error) {
	var out []*EventMatcher
	err := db.WithContext(ctx).Where("app_id = ?", appID).Order("name").Find(&out).Error
	return out, err
}

// EventMatchersByID loads matchers by id, for dataloaders.
func EventMatchersByID(ctx context.Context, db *gorm.DB, ids []uint64) (map[uint64]*EventMatcher, error) {
	var ms []*EventMatcher
	if err := db.WithContext(ctx).Where("id IN ?", ids).Find(&ms).Error; err != nil {
		return nil, err
	}
	out := make(map[uint64]*EventMatcher, len(ms))
	for _, m := range ms {
		out[m.ID] = m
	}
	return out, nil
}

// conflictOnDuplicate turns a unique key's refusal into a CONFLICT about
// field, the input that clashes.
func conflictOnDuplicate(err error, field, format string, args ...any) error {
	if errors.Is(err, gorm.ErrDuplicatedKey) {
		return ConflictOn(field, format, args...)
	}
	return err
}
