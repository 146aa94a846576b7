package models

import (
	"context"
	"slices"
	"sync"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// First attempts. A delivery claimed from the table costs the dispatcher a
// share of a claim, a reload of its event and what the body refers to, and
// a locked outcome update with an attempt row, on top of the row the
// consumer inserted: several times the event's own database work. Most
// deliveries succeed at their first attempt, so the automations consumer
// of a replica that runs a dispatcher makes that attempt itself, before
// the transaction that moves its watermark, with the events it already
// holds; the transaction then inserts each delivery with its outcome
// (succeeded, retrying with its backoff, dead after a 410), one row and one
// attempt row per delivery and no update. Deliveries that cannot start
// within firstAttemptBudget (the rule's concurrency or rate cap) are
// inserted pending, uncounted, for the dispatcher to claim as before.
//
// An attempt still in flight at the budget (a slow receiver) is not cut
// short: it has the whole per-attempt timeout, as every attempt does. The
// consumer inserts its delivery leased to it, as a claim would (so no
// replica claims it meanwhile), and once that transaction has committed
// (LogConsumer.Settled), the attempt's outcome is recorded through the
// dispatcher's recorder like any claimed attempt's, fenced by the lease. If
// the transaction fails, the outcome goes with it and the consumer sends
// again; if the dispatcher closes first, the lease lapses and the delivery
// is claimed again: at-least-once, with one webhook-id, either way.
//
// The guarantees hold: the consumer reads only committed events; the rows
// do not exist until the watermark moves, so no other replica can claim
// them meanwhile; a crash or a failed transaction before the watermark
// moves makes the consumer derive the batch again and send it again with
// the same webhook-ids (at-least-once); and the sends go through the
// dispatcher's loop, under the same worker, per-rule and rate caps as
// every other attempt.

// firstAttemptBudget bounds how long a flush of the automations consumer
// waits for its first attempts: none starts after it, and those in flight
// are handed over to the dispatcher. Well under the consumer's lease (10 s).
const firstAttemptBudget = 2 * time.Second

// firstBatch is one flush's first attempts on their way through the loop.
type firstBatch struct {
	ctx  context.Context // ends at the budget
	done chan *hookJob   // every job comes back once; buffered for all
}

// handover is a first attempt still in flight when its flush's budget
// ended. The consumer records its delivery leased to the job's token and
// then settles it: ok if that transaction committed, with the delivery's id.
type handover struct {
	settled chan struct{}
	ok      bool
	id      uint64
}

// firstFlushes holds the handovers of a consumer's flush until its
// transaction has ended (a consumer flushes one batch at a time).
type firstFlushes struct {
	mu      sync.Mutex
	pending []*handover
}

// hold keeps the handovers of the flush under way until it is settled.
func (f *firstFlushes) hold(jobs []*hookJob) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, j := range jobs {
		f.pending = append(f.pending, j.handed)
	}
}

// settle tells the held handovers whether their flush committed.
func (f *firstFlushes) settle(committed bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, h := range f.pending {
		h.ok = committed
		close(h.settled)
	}
	f.pending = nil
}

// AutomationsConsumer matches the events past its watermark against the
// enabled rules, makes the first attempt of each delivery (see above), and
// records one delivery per match and action, with its outcome, in the
// transaction that moves the watermark (eventlog.go). So matching and
// recording add nothing to the acknowledgement path, every committed event
// is matched exactly once, even across crashes, and an event whose
// transaction rolled back is never seen. It starts at the end of the log:
// enabling Crumbs automations does not fire for last year's events
// (replayRule does that on purpose). name is AutomationsConsumerName except
// in tests.
func (d *Dispatcher) AutomationsConsumer(name string) LogConsumer {
	f := &firstFlushes{}
	return LogConsumer{Name: name, StartAtEnd: true, Batch: 5000,
		Derive: func(ctx context.Context, db *gorm.DB, events []*Event) (func(tx *gorm.DB) error, error) {
			return d.deriveAutomations(ctx, db, events, f)
		},
		Settled: f.settle,
	}
}

func (d *Dispatcher) deriveAutomations(ctx context.Context, db *gorm.DB, events []*Event, f *firstFlushes) (func(tx *gorm.DB) error, error) {
	matched, err := matchEvents(ctx, db, events)
	if err != nil || len(matched) == 0 {
		return func(*gorm.DB) error { return nil }, err
	}
	known := map[uint64]*Event{}
	for _, m := range matched {
		known[m.event.ID] = m.event
	}
	// A replay of a range the consumer has not reached yet may have
	// recorded some of these deliveries already: they are the dispatcher's.
	exists, err := existingDeliveries(ctx, db, keysOf(known))
	if err != nil {
		return nil, err
	}
	now := Now()
	var jobs []*hookJob
	for _, m := range matched {
		for _, a := range m.rule.actions {
			if !exists[[2]uint64{a, m.event.ID}] {
				jobs = append(jobs, &hookJob{dl: &Delivery{AppID: m.event.AppID, EventID: m.event.ID, ActionID: a, RuleID: m.rule.id,
					Status: DeliveryPending, DueAt: now.UnixMilli(), CreatedAt: now, UpdatedAt: now}})
			}
		}
	}
	if len(jobs) == 0 {
		return func(*gorm.DB) error { return nil }, nil
	}
	if err := d.prepare(ctx, jobs, known); err != nil {
		return nil, err
	}
	d.attemptFirst(ctx, jobs)
	now = Now()
	leaseUntil := time.Now().Add(d.leaseTTL()).UnixMilli()
	rows := make([]*Delivery, len(jobs))
	var attempted, handed []*hookJob
	var gone []uint64 // actions that answered 410
	for i, j := range jobs {
		rows[i] = j.dl
		if j.handed != nil {
			j.dl.LeaseOwner, j.dl.LeaseUntil = j.token, leaseUntil
			handed = append(handed, j)
			continue
		}
		if !j.sent {
			continue
		}
		o := d.outcome(j, now)
		d.counts[o.kind].Add(1)
		if o.kind == outcomeDisabled {
			gone = append(gone, j.action.ID)
		}
		j.dl.Status, j.dl.Attempts, j.dl.LastStatusCode, j.dl.LastError, j.dl.LastLatencyMs = o.status, o.attempts, o.code, o.errText, o.latencyMs
		if o.kind == outcomeFailed {
			j.dl.DueAt = o.dueAt
		}
		j.dl.UpdatedAt = now
		attempted = append(attempted, j)
	}
	f.hold(handed)
	return func(tx *gorm.DB) error { return recordFirstAttempts(tx, rows, attempted, handed, gone, now) }, nil
}

// existingDeliveries returns the (action, event) pairs recorded for the events.
func existingDeliveries(ctx context.Context, db *gorm.DB, eventIDs []uint64) (map[[2]uint64]bool, error) {
	out := map[[2]uint64]bool{}
	for chunk := range inChunks(eventIDs, 500) {
		var got []struct{ ActionID, EventID uint64 }
		if err := db.WithContext(ctx).Model(&Delivery{}).Select("action_id", "event_id").Where("event_id IN ?", chunk).Find(&got).Error; err != nil {
			return nil, err
		}
		for _, g := range got {
			out[[2]uint64{g.ActionID, g.EventID}] = true
		}
	}
	return out, nil
}

// attemptFirst sends the jobs that may be sent through the dispatcher's
// loop and waits until each came back, sent or not (j.sent).
func (d *Dispatcher) attemptFirst(ctx context.Context, jobs []*hookJob) {
	var sendable []*hookJob
	for _, j := range jobs {
		// Gone (the rule, action or event deleted since the match) or
		// disabled: left pending, for the dispatcher to settle.
		if !j.gone && !j.action.Disabled() {
			sendable = append(sendable, j)
		}
	}
	if len(sendable) == 0 {
		return
	}
	bctx, cancel := context.WithTimeout(ctx, firstAttemptBudget)
	defer cancel()
	stop := context.AfterFunc(d.ctx, cancel) // a closing dispatcher cuts them short too
	defer stop()
	b := &firstBatch{ctx: bctx, done: make(chan *hookJob, len(sendable))}
	for _, j := range sendable {
		j.first = b
	}
	select {
	case d.firsts <- sendable:
	case <-d.ctx.Done(): // closed: everything stays pending
		return
	case <-bctx.Done():
		return
	}
	for range sendable {
		<-b.done // the loop gives every job back, by the budget at the latest
	}
}

// recordFirstAttempts inserts a flush's deliveries with their outcomes, the
// attempt rows of those attempted, and disables the actions that answered
// 410; in the transaction that moves the consumer's watermark. The
// deliveries of attempts handed over to the dispatcher are inserted leased
// to them, and their ids noted for the outcome. Deliveries of events
// erased since the consumer read them are dropped, with their attempts
// (storedEvents).
func recordFirstAttempts(tx *gorm.DB, rows []*Delivery, attempted, handed []*hookJob, gone []uint64, now time.Time) error {
	eventIDs := make([]uint64, len(rows))
	for i, r := range rows {
		eventIDs[i] = r.EventID
	}
	stored, err := storedEvents(tx, eventIDs)
	if err != nil {
		return err
	}
	rows = slices.DeleteFunc(slices.Clone(rows), func(r *Delivery) bool { return !stored[r.EventID] })
	attempted = slices.DeleteFunc(slices.Clone(attempted), func(j *hookJob) bool { return !stored[j.dl.EventID] })
	for _, j := range handed {
		j.handed.id = 0 // this transaction may be the flush's second
	}
	handed = slices.DeleteFunc(slices.Clone(handed), func(j *hookJob) bool { return !stored[j.dl.EventID] })
	if len(rows) == 0 {
		return disableGone(tx, gone, now)
	}
	onConflict := clause.OnConflict{Columns: []clause.Column{{Name: "action_id"}, {Name: "event_id"}}, DoNothing: true}
	if err := tx.Clauses(onConflict).CreateInBatches(rows, 500).Error; err != nil {
		return err
	}
	if len(attempted) == 0 && len(handed) == 0 {
		return disableGone(tx, gone, now)
	}
	// The ids of the attempted and handed-over deliveries, by their unique
	// (action, event): a multi-row insert does not tell them reliably. A
	// delivery a replay recorded first keeps the replay's lease, which
	// fences the handed-over attempt's outcome off (stillLeased).
	type key struct{ action, event uint64 }
	events := map[uint64]bool{}
	for _, j := range slices.Concat(attempted, handed) {
		events[j.dl.EventID] = true
	}
	ids := make(map[key]uint64, len(attempted)+len(handed))
	for chunk := range inChunks(keysOf(events), 500) {
		var got []struct{ ID, ActionID, EventID uint64 }
		if err := tx.Model(&Delivery{}).Select("id", "action_id", "event_id").Where("event_id IN ?", chunk).Find(&got).Error; err != nil {
			return err
		}
		for _, g := range got {
			ids[key{g.ActionID, g.EventID}] = g.ID
		}
	}
	for _, j := range handed {
		j.handed.id = ids[key{j.dl.ActionID, j.dl.EventID}]
	}
	attempts := make([]*DeliveryAttempt, 0, len(attempted))
	for _, j := range attempted {
		if id := ids[key{j.dl.ActionID, j.dl.EventID}]; id != 0 {
			attempts = append(attempts, &DeliveryAttempt{DeliveryID: id, AppID: j.dl.AppID, At: now, StatusCode: j.dl.LastStatusCode,
				LatencyMs: j.dl.LastLatencyMs, Error: j.dl.LastError})
		}
	}
	if len(attempts) > 0 {
		if err := tx.CreateInBatches(attempts, 500).Error; err != nil {
			return err
		}
	}
	return disableGone(tx, gone, now)
}
