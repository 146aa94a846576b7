// Package metrics exposes the server's Prometheus metrics: triggers by outcome
// and source, group commits, the writer's queue, rate-limit refusals, store
// errors, the database pool and the Go runtime.
//
// Nothing here sits in the write path's logic: the writer reports to a
// models.WriterObserver, and everything else is read when Prometheus scrapes
// (gauges over functions, collectors over stats). Work that runs after the
// acknowledgement (rollups, automations, webhooks) plugs in with one call:
// AddLag for how far a consumer trails the stored events, AddCounts for
// counters it keeps itself (deliveries by status).
package metrics

import (
	"context"
	"database/sql"
	"errors"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/crumbs-dev/crumbs/models"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"gorm.io/gorm"
)

// Metrics holds the registry and the metrics the server updates itself.
type Metrics struct {
	reg            *prometheus.Registry
	triggers       *prometheus.CounterVec
	rateLimited    *prometheus.CounterVec
	commitEvents   prometheus.Histogram
	commitRequests prometheus.Histogram
	commitSeconds  prometheus.Histogram
	commitFailures prometheus.Counter
	storeErrors    *prometheus.CounterVec
}

// New returns metrics with the Go runtime, process and build collectors
// registered.
func New() *Metrics {
	reg := prometheus.NewRegistry()
	m := &Metrics{
		reg: reg,
		triggers: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "crumbs_triggers_total",
			Help: "Triggers answered, by source and outcome: accepted, duplicate, or the error code (UNKNOWN_EVENT_CODE, EVENT_DISABLED, RATE_LIMITED, BOT_FILTERED, BAD_USER_INPUT, ...).",
		}, []string{"source", "outcome"}),
		rateLimited: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "crumbs_rate_limited_total",
			Help: "Triggers refused by a rate limit, by scope (ip, device).",
		}, []string{"scope"}),
		commitEvents: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "crumbs_group_commit_events",
			Help:    "Events (triggers) in one group commit.",
			Buckets: []float64{1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000},
		}),
		commitRequests: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "crumbs_group_commit_requests",
			Help:    "Requests (trigger or triggerBatch calls) answered by one group commit.",
			Buckets: []float64{1, 2, 5, 10, 20, 50, 100, 200, 500, 1000},
		}),
		commitSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "crumbs_group_commit_duration_seconds",
			Help:    "Time to write and commit one group commit, retries included.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14), // 0.5 ms to 4 s
		}),
		commitFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "crumbs_group_commit_failures_total",
			Help: "Group commits that failed as a whole (their requests were then written one by one).",
		}),
		storeErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "crumbs_store_errors_total",
			Help: "Database statements that failed, by operation (query, create, update, delete, raw, row) and kind (timeout, canceled, conflict, error). Not-found answers are not errors.",
		}, []string{"op", "kind"}),
	}
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		collectors.NewBuildInfoCollector(),
		m.triggers, m.rateLimited, m.commitEvents, m.commitRequests, m.commitSeconds, m.commitFailures, m.storeErrors,
	)
	return m
}

// Handler serves the metrics in the Prometheus text (or OpenMetrics) format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{
		Registry:            m.reg, // counts its own scrape errors
		MaxRequestsInFlight: 4,
		Timeout:             10 * time.Second,
		EnableOpenMetrics:   true,
	})
}

// Registerer lets other parts of the server register collectors of their own.
func (m *Metrics) Registerer() prometheus.Registerer { return m.reg }

// WatchWriter exports the writer's queue depth, read at each scrape.
func (m *Metrics) WatchWriter(w interface{ QueueDepth() int }) {
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "crumbs_writer_queue_requests",
		Help: "Requests waiting for a group commit (not counting the one being written).",
	}, func() float64 { return float64(w.QueueDepth()) }))
}

// WatchDB exports the connection pool's statistics (go_sql_* with
// db_name=name) and counts the errors of every statement run through db.
// Call it before db serves traffic.
func (m *Metrics) WatchDB(name string, db *gorm.DB) error {
	sqlDB, err := db.DB()
	if err != nil {
		return err
	}
	if err := m.reg.Register(collectors.NewDBStatsCollector(sqlDB, name)); err != nil {
		return err
	}
	// gorm keeps callbacks per database handle: a second Metrics watching the
	// same handle (tests build one per server) takes over the counting.
	plugin, ok := db.Config.Plugins[(*storeErrorsPlugin)(nil).Name()].(*storeErrorsPlugin)
	if !ok {
		plugin = &storeErrorsPlugin{}
		if err := db.Use(plugin); err != nil {
			return err
		}
	}
	plugin.counter.Store(m.storeErrors)
	return nil
}

// storeErrorsPlugin counts failed statements into the current counter.
type storeErrorsPlugin struct {
	counter atomic.Pointer[prometheus.CounterVec]
}

func (*storeErrorsPlugin) Name() string { return "crumbs:metrics" }

func (p *storeErrorsPlugin) Initialize(db *gorm.DB) error {
	cb := db.Callback()
	for op, register := range map[string]func(string, func(*gorm.DB)) error{
		"create": cb.Create().After("gorm:create").Register,
		"query":  cb.Query().After("gorm:query").Register,
		"update": cb.Update().After("gorm:update").Register,
		"delete": cb.Delete().After("gorm:delete").Register,
		"row":    cb.Row().After("gorm:row").Register,
		"raw":    cb.Raw().After("gorm:raw").Register,
	} {
		if err := register("crumbs:metrics_"+op, func(tx *gorm.DB) {
			if kind := errorKind(tx.Error); kind != "" {
				if c := p.counter.Load(); c != nil {
					c.WithLabelValues(op, kind).Inc()
				}
			}
		}); err != nil {
			return err
		}
	}
	return nil
}

// errorKind classifies a statement's error; "" means it is not one.
func errorKind(err error) string {
	switch {
	case err == nil, errors.Is(err, gorm.ErrRecordNotFound), errors.Is(err, sql.ErrNoRows):
		return ""
	case errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	case errors.Is(err, context.Canceled):
		return "canceled"
	case errors.Is(err, gorm.ErrDuplicatedKey), errors.Is(err, gorm.ErrForeignKeyViolated):
		return "conflict"
	}
	return "error"
}

// Triggered counts answered triggers (models.WriterObserver).
func (m *Metrics) Triggered(inputs []models.TriggerInput, results []models.TriggerResult) {
	for i, r := range results {
		source := sourceLabel(inputs[i].Source)
		outcome := "accepted"
		switch {
		case r.Err != nil:
			outcome, _ = models.Code(r.Err)
			var limited *models.RateLimitError
			if errors.As(r.Err, &limited) {
				m.rateLimited.WithLabelValues(scopeLabel(limited.Scope)).Inc()
			}
		case r.Duplicate:
			outcome = "duplicate"
		}
		m.triggers.WithLabelValues(source, outcome).Inc()
	}
}

// Committed observes a group commit (models.WriterObserver).
func (m *Metrics) Committed(requests, events int, took time.Duration, err error) {
	m.commitRequests.Observe(float64(requests))
	m.commitEvents.Observe(float64(events))
	m.commitSeconds.Observe(took.Seconds())
	if err != nil {
		m.commitFailures.Inc()
	}
}

// sourceLabel keeps the label to the known sources, so a caller cannot grow
// the number of series.
func sourceLabel(s string) string {
	switch s {
	case "":
		return models.SourceAPI
	case models.SourceShortcode, models.SourceBlock, models.SourceJS, models.SourceAPI, models.SourceWebhook, models.SourceWordPress:
		return s
	}
	return "invalid"
}

func scopeLabel(scope string) string {
	if scope == "device" {
		return "device"
	}
	return "ip"
}
