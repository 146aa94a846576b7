package models_test

import (
	"strings"
	"testing"

	"github.com/crumbs-dev/crumbs/models"
	"github.com/crumbs-dev/crumbs/models/modelstest"
	"gorm.io/gorm"
)

// OptimizePlanner leaves SQLite planner statistics for the events' indexes
// and is a no-op on MySQL (InnoDB keeps its own).
func TestOptimizePlannerKeepsStatistics(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *gorm.DB) {
		e := newEnv(t, db)
		for i := range 50 {
			e.mustTrigger(models.TriggerInput{Code: "view", DeviceID: "planner", URL: "https://example.com/" + string(rune('a'+i%26))})
		}
		if err := models.OptimizePlanner(e.ctx, db); err != nil {
			t.Fatal(err)
		}
		if db.Dialector.Name() != "sqlite" {
			return
		}
		var n int64
		if err := db.Raw("SELECT COUNT(*) FROM sqlite_stat1 WHERE tbl = 'events' AND idx = 'idx_events_app_time'").Scan(&n).Error; err != nil {
			t.Fatal(err)
		}
		if n != 1 {
			t.Fatalf("no planner statistics for idx_events_app_time after OptimizePlanner (%d rows)", n)
		}
		var stat string
		if err := db.Raw("SELECT stat FROM sqlite_stat1 WHERE tbl = 'events' AND idx = 'idx_events_app_device_time'").Scan(&stat).Error; err != nil {
			t.Fatal(err)
		}
		// 50 events of this app's one device ("planner"), but the other
		// tests' apps share the database: only the shape is certain.
		if f := strings.Fields(stat); len(f) != 4 || f[0] == "0" {
			t.Fatalf("statistics of idx_events_app_device_time: %q", stat)
		}
		// A second run with nothing changed leaves them as they are.
		if err := models.OptimizePlanner(e.ctx, db); err != nil {
			t.Fatal(err)
		}
	})
}
