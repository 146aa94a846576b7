package models_test

import (
	"context"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/crumbs-dev/crumbs/models"
	"github.com/crumbs-dev/crumbs/models/modelstest"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"
)

// The MySQL plans behind the figures at 10 million events (README,
// "Insights at 10 million events"): funnels with url and title rules read
// only the (definition, time, device, …) index, and an export reads its
// index range from the keyset on. A regression in either stays correct and
// only gets slower, which no other test would show.
func TestMySQLPlansAtScale(t *testing.T) {
	db := modelstest.MySQL(t)
	e := newFunnelEnv(t, db)
	if err := db.Exec("ANALYZE TABLE events").Error; err != nil {
		t.Fatal(err)
	}
	var log sqlLog
	logged := db.Session(&gorm.Session{Logger: &log})

	rules := []models.Rule{{Field: "url", Operator: models.OpContains, Value: "pricing"}, {Field: "title", Operator: models.OpEndsWith, Value: "plans"}}
	if _, err := models.Funnel(e.ctx, logged, e.app, models.FunnelInput{Range: models.RangeInput{From: funnelDay, To: funnelDay.Add(24 * time.Hour)},
		Steps: []models.Matcher{{Code: "a", Rules: rules}, {Code: "b", Rules: []models.Rule{{Field: "source", Operator: models.OpNotEquals, Value: "js"}}}}, Window: time.Hour}); err != nil {
		t.Fatal(err)
	}
	plan := explainOne(t, db, log.find(t, "WHERE definition_id IN"))
	if plan["key"] != "idx_events_definition_rules" || !strings.Contains(plan["Extra"], "Using index") {
		t.Fatalf("the funnel's read of its steps' events is not covered by idx_events_definition_rules: %v", plan)
	}

	from := funnelDay.Add(-12 * time.Hour)
	x, err := models.PrepareExport(e.ctx, logged, e.owner, e.app.PublicID, models.ExportFilter{From: &from}, models.ExportNDJSON)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := x.Run(e.ctx, io.Discard, func() {}); err != nil {
		t.Fatal(err)
	}
	plan = explainOne(t, db, log.find(t, "ORDER BY occurred_at, id"))
	if plan["key"] != "idx_events_app_time" || plan["type"] != "range" {
		t.Fatalf("an export chunk does not read a range of idx_events_app_time: %v", plan)
	}
}

// explainOne answers MySQL's plan of a one-table statement, column by column.
func explainOne(t *testing.T, db *gorm.DB, stmt string) map[string]string {
	t.Helper()
	rows, err := db.Raw("EXPLAIN " + stmt).Rows()
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		t.Fatal(err)
	}
	if !rows.Next() {
		t.Fatalf("no plan for %s", stmt)
	}
	vals := make([]*string, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	if err := rows.Scan(ptrs...); err != nil {
		t.Fatal(err)
	}
	plan := map[string]string{"statement": stmt}
	for i, c := range cols {
		if vals[i] != nil {
			plan[c] = *vals[i]
		}
	}
	return plan
}

// sqlLog keeps the statements run through a session, with their values.
type sqlLog struct {
	mu    sync.Mutex
	stmts []string
}

func (l *sqlLog) LogMode(logger.LogLevel) logger.Interface { return l }
func (l *sqlLog) Info(context.Context, string, ...any)     {}
func (l *sqlLog) Warn(context.Context, string, ...any)     {}
func (l *sqlLog) Error(context.Context, string, ...any)    {}
func (l *sqlLog) Trace(_ context.Context, _ time.Time, fc func() (string, int64), _ error) {
	s, _ := fc()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.stmts = append(l.stmts, s)
}

// find answers the last statement containing part.
func (l *sqlLog) find(t *testing.T, part string) string {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	for i := len(l.stmts) - 1; i >= 0; i-- {
		if strings.Contains(l.stmts[i], part) {
			return l.stmts[i]
		}
	}
	t.Fatalf("no statement with %q among %d", part, len(l.stmts))
	return ""
}

// all answers every statement containing part, in order.
func (l *sqlLog) all(part string) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, s := range l.stmts {
		if strings.Contains(s, part) {
			out = append(out, s)
		}
	}
	return out
}
