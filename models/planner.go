package models

import (
	"context"
	"fmt"
	"log/slog"
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
// rows per index). On MySQL it does nothing.
func OptimizePlanner(ctx context.Context, db *gorm.DB) error {
	if db.Dialector.Name() != "sqlite" {
		return nil
	}
	return db.WithContext(ctx).Connection(func(tx *gorm.DB) error {
		if err := tx.Exec(fmt.Sprintf("PRAGMA analysis_limit = %d", plannerAnalysisLimit)).Error; err != nil {
			return err
		}
		// 0x10002: every table, not only those this connection queried.
		return tx.Exec("PRAGMA optimize = 0x10002").Error
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
