package models

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// Delivery statuses.
const (
	DeliveryPending   = "pending"   // waiting for its first attempt
	DeliveryRetrying  = "retrying"  // an attempt failed; the next is due at DueAt
	DeliverySucceeded = "succeeded" // the receiver answered 2xx
	DeliveryDead      = "dead"      // dead-lettered: attempts exhausted, 410 Gone, or the event was erased
)

// Delivery is one event sent, or to be sent, to one action. There is at
// most one per event and action: its webhook-id is fixed by both, so a
// receiver dedupes retries and replays.
type Delivery struct {
	ID uint64 `gorm:"primaryKey;index:idx_automation_deliveries_app_status,priority:3"`
	// AppID, Status and ID: the delivery log filtered by status.
	AppID    uint64 `gorm:"not null;index:idx_automation_deliveries_app_id,priority:1;index:idx_automation_deliveries_app_status,priority:1"`
	RuleID   uint64 `gorm:"not null;index:idx_automation_deliveries_rule_id,priority:1"`
	ActionID uint64 `gorm:"not null;uniqueIndex:idx_automation_deliveries_action_event,priority:1"`
	EventID  uint64 `gorm:"not null;uniqueIndex:idx_automation_deliveries_action_event,priority:2;index:idx_automation_deliveries_event_id"`
	Status   string `gorm:"size:16;not null;index:idx_automation_deliveries_due,priority:1;index:idx_automation_deliveries_app_status,priority:2"`
	// DueAt is when the next attempt is due, in Unix milliseconds.
	DueAt int64 `gorm:"not null;index:idx_automation_deliveries_due,priority:2"`
	// Attempts counts the attempts since the delivery was recorded or last
	// replayed; its attempt log keeps every attempt.
	Attempts int `gorm:"not null"`
	// Replays counts replayDelivery and replayRule: the dispatcher records
	// an attempt's outcome only if it is what it was when the attempt
	// began (automation_dispatch.go), so a replay is never undone.
	Replays int `gorm:"not null;default:0"`
	// LeaseOwner and LeaseUntil (Unix ms): the replica attempting it now.
	LeaseOwner     string    `gorm:"size:80;not null"`
	LeaseUntil     int64     `gorm:"not null"`
	LastStatusCode int       `gorm:"not null"`
	LastError      string    `gorm:"size:500;not null"`
	LastLatencyMs  int64     `gorm:"not null"`
	CreatedAt      time.Time `gorm:"not null"`
	UpdatedAt      time.Time `gorm:"not null;index:idx_automation_deliveries_updated_at"`
}

// TableName implements gorm's tabler.
func (Delivery) TableName() string { return "automation_deliveries" }

// WebhookID is the delivery's webhook-id header: the same for every
// attempt and replay of this event to this action.
func (d *Delivery) WebhookID() string { return webhookID(d.EventID, d.ActionID) }

func webhookID(eventID, actionID uint64) string {
	return "msg_" + strconv.FormatUint(eventID, 10) + "_" + strconv.FormatUint(actionID, 10)
}

// NextAttemptAt is when the next attempt is due; nil when none will be made.
func (d *Delivery) NextAttemptAt() *time.Time {
	if d.Status != DeliveryPending && d.Status != DeliveryRetrying {
		return nil
	}
	t := time.UnixMilli(d.DueAt).UTC()
	return &t
}

// Cursor is the delivery's position in the log (newest first).
func (d *Delivery) Cursor() string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatUint(d.ID, 10)))
}

// DeliveryAttempt is one attempt of a delivery.
type DeliveryAttempt struct {
	ID         uint64    `gorm:"primaryKey"`
	DeliveryID uint64    `gorm:"not null;index:idx_automation_attempts_delivery_id"`
	AppID      uint64    `gorm:"not null"`
	At         time.Time `gorm:"not null"`
	StatusCode int       `gorm:"not null"`
	LatencyMs  int64     `gorm:"not null"`
	Error      string    `gorm:"size:500;not null"`
}

// TableName implements gorm's tabler.
func (DeliveryAttempt) TableName() string { return "automation_attempts" }

// DeliveryPage is one page of the delivery log, newest first.
type DeliveryPage struct {
	Deliveries  []*Delivery
	HasNextPage bool
}

// DeliveriesInput filters the delivery log.
type DeliveriesInput struct {
	RuleID string // empty: every rule
	Status string // empty: every status
	First  int    // 1 to maxDeliveriesPage
	After  string // a Cursor; empty: from the newest
}

// maxDeliveriesPage bounds a page of the delivery log.
const maxDeliveriesPage = 100

// DeliveriesFor pages through the app's delivery log, newest first, for
// viewers of the app.
func DeliveriesFor(ctx context.Context, db *gorm.DB, v Viewer, appPublicID string, in DeliveriesInput) (*DeliveryPage, error) {
	return inApp(ctx, db, v, appPublicID, RoleViewer, func(app *App) (*DeliveryPage, error) {
		if in.First < 1 || in.First > maxDeliveriesPage {
			return nil, Invalid("first", "must be between 1 and %d", maxDeliveriesPage)
		}
		q := db.WithContext(ctx).Where("app_id = ?", app.ID)
		if in.After != "" {
			id, err := parseDeliveryCursor(in.After)
			if err != nil {
				return nil, err
			}
			q = q.Where("id < ?", id)
		}
		if in.RuleID != "" {
			r, err := automationRuleByID(ctx, db, app, "ruleId", in.RuleID)
			if err != nil {
				return nil, err
			}
			q = q.Where("rule_id = ?", r.ID)
		}
		if in.Status != "" {
			q = q.Where("status = ?", in.Status)
		}
		var ds []*Delivery
		if err := q.Order("id DESC").Limit(in.First + 1).Find(&ds).Error; err != nil {
			return nil, err
		}
		page := &DeliveryPage{Deliveries: ds}
		if len(ds) > in.First {
			page.Deliveries, page.HasNextPage = ds[:in.First], true
		}
		return page, nil
	})
}

// parseDeliveryCursor reads a Cursor back.
func parseDeliveryCursor(s string) (uint64, error) {
	raw, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return 0, Invalid("after", "is not a cursor of the delivery log")
	}
	id, err := ParseID("after", string(raw))
	if err != nil {
		return 0, Invalid("after", "is not a cursor of the delivery log")
	}
	return id, nil
}

// AttemptsOfDeliveries loads the attempts of deliveries in order, for dataloaders.
func AttemptsOfDeliveries(ctx context.Context, db *gorm.DB, ids []uint64) (map[uint64][]*DeliveryAttempt, error) {
	var as []*DeliveryAttempt
	if err := db.WithContext(ctx).Where("delivery_id IN ?", ids).Order("id").Find(&as).Error; err != nil {
		return nil, err
	}
	out := map[uint64][]*DeliveryAttempt{}
	for _, a := range as {
		out[a.DeliveryID] = append(out[a.DeliveryID], a)
	}
	return out, nil
}

// ActionsByID loads actions by id, for dataloaders.
func ActionsByID(ctx context.Context, db *gorm.DB, ids []uint64) (map[uint64]*AutomationAction, error) {
	return loadByID(ctx, db, ids, func(a *AutomationAction) uint64 { return a.ID })
}

// ReplayDeliveryFor sends a delivery again now, whatever its status, with
// no attempts counted, so it gets the whole retry policy again (the receiver
// dedupes by its unchanged webhook-id); for editors of the app. A delivery of
// a disabled action is a conflict: it could not be sent until an editor
// enables the action, which lets it go anyway.
func ReplayDeliveryFor(ctx context.Context, db *gorm.DB, v Viewer, appPublicID, id string) (*Delivery, error) {
	return inApp(ctx, db, v, appPublicID, RoleEditor, func(app *App) (*Delivery, error) {
		n, err := ParseID("id", id)
		if err != nil {
			return nil, err
		}
		var d Delivery
		err = withRetry(ctx, func() error {
			return db.WithContext(ctx).Transaction(func(tx *gorm.DB) error { return replayDelivery(tx, app.ID, n, &d) })
		})
		if err != nil {
			return nil, err
		}
		return &d, nil
	})
}

// replayDelivery makes the delivery due now, with no attempts and one more
// replay. It locks the delivery, then its action, in the order of
// deleteDeliveries and of the dispatcher's recorder: a delivery deleted
// meanwhile (with its rule or action, by an erasure or by pruning) is not
// found, rather than answered as replayed, and an attempt in flight records
// its outcome before the replay or not at all.
func replayDelivery(tx *gorm.DB, appID, id uint64, d *Delivery) error {
	err := forUpdate(tx).Where("app_id = ? AND id = ?", appID, id).Take(d).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return newError(ErrNotFound, "delivery not found")
	}
	if err != nil {
		return err
	}
	var a AutomationAction
	err = forUpdate(tx.Select("id", "disabled_at", "disabled_reason")).Where("id = ?", d.ActionID).Take(&a).Error
	if errors.Is(err, gorm.ErrRecordNotFound) { // deleting an action deletes its log first: not expected
		return newError(ErrNotFound, "delivery not found")
	}
	if err != nil {
		return err
	}
	if a.Disabled() {
		return newError(ErrConflict, "the delivery's action is disabled (%s); enable it, and its waiting deliveries go out", a.DisabledReason)
	}
	now := Now()
	err = tx.Model(d).Updates(map[string]any{"status": DeliveryPending, "due_at": now.UnixMilli(), "attempts": 0,
		"replays": gorm.Expr("replays + 1"), "updated_at": now}).Error
	d.Status, d.DueAt, d.Attempts, d.Replays, d.UpdatedAt = DeliveryPending, now.UnixMilli(), 0, d.Replays+1, now
	return err
}

// enqueueDeliveries records deliveries of events to actions, or makes those
// that exist due again now (a replay). pairs holds (eventID, actionID, ruleID).
// Events erased since they were matched get none (storedEvents).
func enqueueDeliveries(tx *gorm.DB, appID uint64, pairs [][3]uint64, replay bool) error {
	ids := make([]uint64, len(pairs))
	for i, p := range pairs {
		ids[i] = p[0]
	}
	stored, err := storedEvents(tx, ids)
	if err != nil {
		return err
	}
	pairs = slices.DeleteFunc(slices.Clone(pairs), func(p [3]uint64) bool { return !stored[p[0]] })
	if len(pairs) == 0 {
		return nil
	}
	now := Now()
	rows := make([]*Delivery, len(pairs))
	for i, p := range pairs {
		rows[i] = &Delivery{AppID: appID, EventID: p[0], ActionID: p[1], RuleID: p[2], Status: DeliveryPending, DueAt: now.UnixMilli(), CreatedAt: now, UpdatedAt: now}
	}
	onConflict := clause.OnConflict{Columns: []clause.Column{{Name: "action_id"}, {Name: "event_id"}}, DoNothing: true}
	if replay {
		// As replayDelivery: the whole retry policy again, and an attempt in
		// flight does not undo it.
		onConflict = clause.OnConflict{Columns: []clause.Column{{Name: "action_id"}, {Name: "event_id"}},
			DoUpdates: clause.Assignments(map[string]any{"status": DeliveryPending, "due_at": now.UnixMilli(), "attempts": 0,
				"replays": gorm.Expr("replays + 1"), "updated_at": now})}
	}
	return tx.Clauses(onConflict).CreateInBatches(rows, 500).Error
}

// storedEvents returns which of the events are still stored, locking their
// rows, in the transaction that is about to record deliveries of them.
// Deliveries are made from events read earlier, outside it (the
// automations consumer, a replay), and an erasure may delete the events
// and their deliveries meanwhile: recorded after that, a delivery would
// bring back the erased event's id and the receiver's answer about the
// person. With the rows locked, an erasure either committed before (the
// events are gone here) or waits for this transaction and then deletes
// the deliveries it recorded.
func storedEvents(tx *gorm.DB, ids []uint64) (map[uint64]bool, error) {
	stored := make(map[uint64]bool, len(ids))
	for chunk := range inChunks(slices.Sorted(slices.Values(ids)), 500) {
		var got []uint64
		if err := forUpdate(tx.Model(&Event{})).Where("id IN ?", chunk).Order("id").Pluck("id", &got).Error; err != nil {
			return nil, err
		}
		for _, id := range got {
			stored[id] = true
		}
	}
	return stored, nil
}

// eraseDeliveries deletes the delivery log of erased events (the log holds
// ids only; payloads are built at send time, so an erased event is never
// sent). Erasures call it in their transaction.
func eraseDeliveries(tx *gorm.DB, eventIDs []uint64) error {
	for chunk := range inChunks(eventIDs, 500) {
		if _, err := deleteDeliveries(tx, "event_id IN ?", chunk); err != nil {
			return err
		}
	}
	return nil
}

// deleteDeliveries deletes the deliveries matching the condition and their
// attempts, and returns how many deliveries it deleted. It locks the
// deliveries first, as the dispatcher's recorder and replayDelivery do, so
// they do not deadlock, and so a replay waits for the deletion and then
// finds nothing.
func deleteDeliveries(tx *gorm.DB, cond string, args ...any) (int, error) {
	var ids []uint64
	if err := forUpdate(tx.Model(&Delivery{})).Where(cond, args...).Order("id").Pluck("id", &ids).Error; err != nil {
		return 0, err
	}
	for chunk := range inChunks(ids, 500) {
		if err := tx.Where("delivery_id IN ?", chunk).Delete(&DeliveryAttempt{}).Error; err != nil {
			return 0, err
		}
		if err := tx.Where("id IN ?", chunk).Delete(&Delivery{}).Error; err != nil {
			return 0, err
		}
	}
	return len(ids), nil
}

func inChunks[T any](s []T, n int) func(func([]T) bool) {
	return func(yield func([]T) bool) {
		for len(s) > 0 {
			k := min(n, len(s))
			if !yield(s[:k]) {
				return
			}
			s = s[k:]
		}
	}
}

// PruneDeliveries deletes finished deliveries (succeeded or dead) last
// changed before cutoff, with their attempts, a batch at a time; it
// returns how many it deleted. Each batch is read again under lock, so a
// delivery replayed since it was found (due again, changed now) is kept.
func PruneDeliveries(ctx context.Context, db *gorm.DB, cutoff time.Time) (int64, error) {
	finished := []string{DeliverySucceeded, DeliveryDead}
	var total int64
	for {
		var ids []uint64
		pruned := 0
		cctx, cancel := context.WithTimeout(ctx, dbCallTimeout)
		err := db.WithContext(cctx).Model(&Delivery{}).Where("status IN ? AND updated_at < ?", finished, cutoff).
			Limit(1000).Pluck("id", &ids).Error
		if err == nil && len(ids) > 0 {
			err = db.WithContext(cctx).Transaction(func(tx *gorm.DB) error {
				var err error
				pruned, err = deleteDeliveries(tx, "id IN ? AND status IN ? AND updated_at < ?", ids, finished, cutoff)
				return err
			})
		}
		cancel()
		if err != nil {
			return total, fmt.Errorf("models.PruneDeliveries: %w", err)
		}
		total += int64(pruned)
		if len(ids) < 1000 {
			return total, nil
		}
	}
}

// DeliveryStatusOK reports whether s names a delivery status.
func DeliveryStatusOK(s string) bool {
	switch strings.ToLower(s) {
	case DeliveryPending, DeliveryRetrying, DeliverySucceeded, DeliveryDead:
		return true
	}
	return false
}
