package models

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"gorm.io/gorm"
)

// SQLite's planner picks indexes by the statistics ANALYZE leaves in
// sqlite_stat1; a database that never had them plans as if every index
// were equally selective (the lead timeline walked the (app, time) index
// over every event: 1 s at 1M events; 1.4 ms with statistics). MariaDB's
// InnoDB keeps persistent statistics itself, recalculated once a tenth of a
// table changed.
const (
	// plannerStatsEvery is how often the statistics are refreshed.
	plannerStatsEvery = time.Hour
	// plannerAnalysisLimit bounds the rows ANALYZE reads per index, so that
	// a refresh holds the write lock for about a second at millions of
	// events rather than for a full scan of every index.
	plannerAnalysisLimit = 1000
)

// OptimizePlanner refreshes SQLite's planner statistics where they are
// missing or stale (PRAGMA optimize, reading at most plannerAnalysisLimit
// rows per index), then writes those of the events table from counts that
// cost no scan of it. On MySQL it does nothing.
//
// A sampled ANALYZE reads the first rows of each index, which on the events
// table all belong to one app and a few devices: it took an app for as
// selective as a device and the lead timeline walked every event again; a
// full ANALYZE of 1M events holds the only connection for 5-12 s.
func OptimizePlanner(ctx context.Context, db *gorm.DB) error {
	if db.Dialector.Name() != "sqlite" {
		return nil
	}
	return db.WithContext(ctx).Connection(func(tx *gorm.DB) error {
		if err := tx.Exec(fmt.Sprintf("PRAGMA analysis_limit = %d", plannerAnalysisLimit)).Error; err != nil {
			return err
		}
		// 0x10002: every table, not only those this connection queried.
		if err := tx.Exec("PRAGMA optimize = 0x10002").Error; err != nil {
			return err
		}
		return writeEventStatistics(tx)
	})
}

// writeEventStatistics writes sqlite_stat1's rows for the events table's
// indexes from the number of events, apps, devices and definitions, and has
// the connection load them (ANALYZE sqlite_schema, as SQLite documents for
// statistics written by hand).
func writeEventStatistics(tx *gorm.DB) error {
	var n struct{ Events, Apps, Devices, Definitions int64 }
	err := tx.Raw(`SELECT (SELECT COUNT(*) FROM events) AS events, (SELECT COUNT(*) FROM apps) AS apps,
		(SELECT COUNT(*) FROM devices) AS devices, (SELECT COUNT(*) FROM event_definitions) AS definitions`).Scan(&n).Error
	if err != nil || n.Events == 0 {
		return err
	}
	var indexes []string
	if err := tx.Raw("SELECT name FROM pragma_index_list('events') ORDER BY name").Scan(&indexes).Error; err != nil {
		return err
	}
	// Distinct values of an index prefix ending in this column; columns not
	// named here (times, ids, message ids) are taken for unique.
	distinct := map[string]int64{"app_id": n.Apps, "device_id": n.Devices, "definition_id": n.Definitions}
	stats := map[string]string{}
	for _, idx := range indexes {
		var cols []string
		if err := tx.Raw("SELECT name FROM pragma_index_info(?) ORDER BY seqno", idx).Scan(&cols).Error; err != nil {
			return err
		}
		stat, d := strconv.FormatInt(n.Events, 10), int64(1)
		for _, c := range cols {
			v, ok := distinct[c]
			if !ok {
				v = n.Events
			}
			d = min(max(d, v, 1), n.Events)
			stat += " " + strconv.FormatInt((n.Events+d-1)/d, 10)
		}
		stats[idx] = stat
	}
	if len(stats) == 0 {
		return nil
	}
	var have int64
	if err := tx.Raw("SELECT COUNT(*) FROM sqlite_schema WHERE name = 'sqlite_stat1'").Scan(&have).Error; err != nil {
		return err
	}
	if have == 0 { // ANALYZE of a table creates it
		if err := tx.Exec("ANALYZE apps").Error; err != nil {
			return err
		}
	}
	return tx.Transaction(func(tx *gorm.DB) error {
		if err := tx.Exec("DELETE FROM sqlite_stat1 WHERE tbl = 'events'").Error; err != nil {
			return err
		}
		for idx, stat := range stats {
			if err := tx.Exec("INSERT INTO sqlite_stat1 (tbl, idx, stat) VALUES ('events', ?, ?)", idx, stat).Error; err != nil {
				return err
			}
		}
		return tx.Exec("ANALYZE sqlite_schema").Error
	})
}

// KeepPlannerStatistics runs OptimizePlanner at once and then every
// plannerStatsEvery until ctx ends. Failures are logged and retried at the
// next round.
func KeepPlannerStatistics(ctx context.Context, db *gorm.DB, log *slog.Logger) {
	if db.Dialector.Name() != "sqlite" {
		return
	}
	tick := time.NewTicker(plannerStatsEvery)
	defer tick.Stop()
	for {
		start := time.Now()
		if err := OptimizePlanner(ctx, db); err != nil && ctx.Err() == nil {
			if storeFault(err) {
				log.Error(MsgStoreUnavailable, "in", "models.KeepPlannerStatistics", "err", err)
			} else {
				log.Warn("refreshing the planner statistics failed", "err", err)
			}
		} else if took := time.Since(start); took > time.Second {
			log.Info("refreshed the planner statistics", "took", took.Round(time.Millisecond))
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}
