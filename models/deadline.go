package models

import (
	"context"
	"errors"
	"time"

	"gorm.io/gorm"
)

// DefaultDBTimeout bounds one database call whose context brings no deadline
// of its own (see DBOptions.Timeout).
const DefaultDBTimeout = 10 * time.Second

// storeTimeout is the timeout db was opened with (DBOptions.Timeout):
// what bounds one call, and what a lookup of several calls that must end
// together should take. A lookup given longer took three times the timeout
// on a frozen store: database/sql retries a call whose connection failed
// (the driver's read timeout) on two more connections while its context
// lasts.
func storeTimeout(db *gorm.DB) time.Duration {
	if p, ok := db.Config.Plugins[deadlinesName].(*deadlines); ok {
		return p.timeout
	}
	return DefaultDBTimeout
}

type noDeadlineKey struct{}

// WithoutDeadline marks ctx for work that may rightly run longer than one
// call's timeout, such as migrations: the default deadline is not applied.
func WithoutDeadline(ctx context.Context) context.Context {
	return context.WithValue(ctx, noDeadlineKey{}, true)
}

// deadlines gives every statement run through gorm a deadline when its
// context has none, so that no request waits on a stalled store for longer
// than the timeout, whichever code path it takes. It is a gorm plugin:
// callbacks first and last around every create, query, update, delete, row
// and raw statement.
type deadlines struct{ timeout time.Duration }

const deadlinesName = "crumbs:deadline"

func (p *deadlines) Name() string { return deadlinesName }

func (p *deadlines) Initialize(db *gorm.DB) error {
	cb := db.Callback()
	start, end := deadlinesName+":start", deadlinesName+":end"
	return errors.Join(
		cb.Create().Before("*").Register(start, p.start), cb.Create().After("*").Register(end, p.end(true)),
		cb.Query().Before("*").Register(start, p.start), cb.Query().After("*").Register(end, p.end(true)),
		cb.Update().Before("*").Register(start, p.start), cb.Update().After("*").Register(end, p.end(true)),
		cb.Delete().Before("*").Register(start, p.start), cb.Delete().After("*").Register(end, p.end(true)),
		cb.Raw().Before("*").Register(start, p.start), cb.Raw().After("*").Register(end, p.end(true)),
		// Rows are read after the callbacks return, under the statement's
		// context: it must outlive them, so it ends at its deadline instead.
		cb.Row().Before("*").Register(start, p.start), cb.Row().After("*").Register(end, p.end(false)),
	)
}

// deadlineSet remembers what start changed, for end to undo.
type deadlineSet struct {
	parent context.Context
	cancel context.CancelFunc
}

func (p *deadlines) start(db *gorm.DB) {
	ctx := db.Statement.Context
	if ctx == nil {
		ctx = context.Background()
	}
	if _, has := ctx.Deadline(); has || ctx.Value(noDeadlineKey{}) != nil {
		return
	}
	bounded, cancel := context.WithTimeout(ctx, p.timeout)
	db.Statement.Context = bounded
	// Keyed by this statement: a session cloned from it does not inherit it.
	db.InstanceSet(deadlinesName, &deadlineSet{parent: ctx, cancel: cancel})
}

func (p *deadlines) end(cancel bool) func(*gorm.DB) {
	return func(db *gorm.DB) {
		v, ok := db.InstanceGet(deadlinesName)
		set, _ := v.(*deadlineSet)
		if !ok || set == nil {
			return
		}
		db.InstanceSet(deadlinesName, (*deadlineSet)(nil))
		// A chain such as q.Count(&n); q.Find(&rows) reuses the statement:
		// the next call starts from the caller's context again.
		db.Statement.Context = set.parent
		if cancel {
			set.cancel()
		}
	}
}
