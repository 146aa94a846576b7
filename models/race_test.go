package models_test

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/crumbs-dev/crumbs/models"
	"github.com/crumbs-dev/crumbs/models/modelstest"
	"gorm.io/gorm"
)

// TestDeleteRacingTriggers runs deletes and triggers of the same definitions
// at once and proves both halves of the rule: no event ever lacks its
// definition, and no definition with events was deleted.
func TestDeleteRacingTriggers(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *gorm.DB) {
		e := newEnv(t, db)
		const defsN = 40
		var defs []*models.EventDefinition
		for i := range defsN {
			defs = append(defs, e.define(fmt.Sprintf("race_%d", i)))
		}
		var accepted atomic.Int64
		var deleted sync.Map
		var wg sync.WaitGroup
		for w := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range 30 {
					var batch []models.TriggerInput
					for range 1 + rand.IntN(4) {
						batch = append(batch, models.TriggerInput{
							AppPublicID: e.app.PublicID, DeviceID: fmt.Sprintf("w%d", w),
							Code: fmt.Sprintf("race_%d", rand.IntN(defsN)),
						})
					}
					for _, r := range e.writer.Trigger(e.ctx, batch) {
						switch code, _ := models.Code(r.Err); {
						case r.Accepted:
							accepted.Add(1)
						case code != models.CodeUnknownEventCode:
							t.Errorf("unexpected refusal: %v", r.Err)
						}
					}
				}
			}()
		}
		for range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for _, i := range rand.Perm(defsN) {
					_, err := models.DeleteEventDefinition(e.ctx, db, e.owner, idOf(defs[i]))
					switch {
					case err == nil:
						deleted.Store(defs[i].ID, true)
					case errors.Is(err, models.ErrEventAlreadyTriggered), errors.Is(err, models.ErrNotFound):
					default:
						t.Errorf("delete: %v", err)
					}
				}
			}()
		}
		wg.Wait()

		var orphans int64
		db.Model(&models.Event{}).Where("app_id = ? AND definition_id NOT IN (?)", e.app.ID,
			db.Model(&models.EventDefinition{}).Select("id")).Count(&orphans)
		if orphans > 0 {
			t.Fatalf("%d events lack their definition", orphans)
		}
		nDeleted := 0
		deleted.Range(func(id, _ any) bool {
			nDeleted++
			if n := e.countEvents("definition_id = ?", id); n > 0 {
				t.Errorf("definition %v was deleted but has %d events", id, n)
			}
			return true
		})
		remaining, _ := models.EventDefinitions(e.ctx, db, e.app.ID, nil)
		for _, d := range remaining {
			if n := e.countEvents("definition_id = ?", d.ID); n != d.TriggerCount {
				t.Errorf("%s: trigger count %d but %d events", d.Code, d.TriggerCount, n)
			}
		}
		if stored := e.countEvents("1 = 1"); stored != accepted.Load() {
			t.Fatalf("%d events stored, %d acknowledged", stored, accepted.Load())
		}
		t.Logf("%d triggers accepted, %d of %d definitions deleted", accepted.Load(), nDeleted, defsN)
		if nDeleted == 0 || nDeleted == defsN {
			t.Logf("the race did not interleave this run (deleted %d)", nDeleted)
		}
	})
}
