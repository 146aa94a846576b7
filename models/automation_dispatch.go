package models

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"gorm.io/gorm"
)

// The dispatcher's database work is batched, so that a delivery costs a
// share of a few statements rather than a dozen of its own: one loop
// claims due deliveries in batches (a conditional UPDATE and a SELECT),
// loads what their bodies need with one query per kind, and hands them to
// workers, at most Workers at once, PerAction per action and Rate a
// second per action (deliveries over it wait claimed, then pending); a recorder
// writes the outcomes of many attempts in one transaction.

// hookJob is one claimed delivery on its way through the dispatcher.
type hookJob struct {
	dl     *Delivery
	token  string
	action *AutomationAction
	body   []byte
	gone   bool // the event was erased: dead without an attempt
	res    sendResult
}

func (d *Dispatcher) run() {
	results := make(chan *hookJob, 4*d.opts.Workers)
	recorded := make(chan struct{})
	go func() {
		d.recorder(results)
		close(recorded)
	}()
	d.loop(results)
	close(results)
	<-recorded
	close(d.done)
}

// loop claims, prepares and starts deliveries until the dispatcher closes.
func (d *Dispatcher) loop(results chan<- *hookJob) {
	queues := map[uint64][]*hookJob{} // claimed, not started, per action
	inflight := map[uint64]int{}      // started, per action
	queued, running := 0, 0
	finished := make(chan *hookJob, d.opts.Workers)
	timer := time.NewTimer(0)
	defer timer.Stop()
	pruned := time.Now()
	idle := false // the last claim found nothing: wait for the timer
	buckets := &rateBuckets{rate: d.opts.Rate, m: map[uint64]*bucket{}}
	throttle := time.NewTimer(time.Hour)
	throttle.Stop()
	defer throttle.Stop()
	for {
		// Start what may start: within the worker, per-action and rate caps.
		now := time.Now()
		var wake time.Duration // until a throttled action has a token again
		buckets.forget(now)
		for actionID, q := range queues {
			for len(q) > 0 && running < d.opts.Workers && inflight[actionID] < d.opts.PerAction {
				if !buckets.take(actionID, now) {
					if w := buckets.wait(actionID, now); wake == 0 || w < wake {
						wake = max(w, time.Millisecond)
					}
					break
				}
				j := q[0]
				q = q[1:]
				queued--
				running++
				inflight[actionID]++
				go func() {
					j.res = d.send(d.ctx, j.action, j.dl.WebhookID(), j.body)
					finished <- j
				}()
			}
			if len(q) == 0 {
				delete(queues, actionID)
			} else {
				queues[actionID] = q
			}
		}
		// Claim more while there is room, keeping each action's queue short
		// enough to start within its lease.
		if !idle && queued+running < 2*d.opts.Workers && d.ctx.Err() == nil {
			var full []uint64
			for actionID, q := range queues {
				if len(q) >= d.queueCap() || len(q)+inflight[actionID] >= 2*d.opts.PerAction {
					full = append(full, actionID)
				}
			}
			jobs, err := d.claim(4*d.opts.Workers-queued-running, full)
			if err != nil && d.ctx.Err() == nil {
				d.warn("automations: claiming deliveries", "err", err)
			}
			idle = len(jobs) == 0
			var excess []*hookJob // more than an action may hold waiting: back to pending
			for _, j := range jobs {
				if j.gone {
					results <- j // dead without an attempt
					continue
				}
				if j.action.Disabled() { // since the claim: waits until enabled again
					d.release([]*hookJob{j})
					continue
				}
				if len(queues[j.action.ID]) >= d.queueCap() {
					excess = append(excess, j)
					continue
				}
				queues[j.action.ID] = append(queues[j.action.ID], j)
				queued++
			}
			d.release(excess)
			if len(jobs) > 0 {
				continue
			}
		}
		if time.Since(pruned) > d.opts.PruneEvery {
			pruned = time.Now()
			if n, err := PruneDeliveries(d.ctx, d.db, Now().Add(-d.opts.Retention)); err != nil {
				d.warn("automations: pruning the delivery log", "err", err)
			} else if n > 0 {
				d.opts.Log.Info("automations: pruned the delivery log", "deliveries", n)
			}
		}
		if wake > 0 {
			throttle.Reset(wake)
		}
		select {
		case <-throttle.C:
		case j := <-finished:
			running--
			if inflight[j.action.ID]--; inflight[j.action.ID] == 0 {
				delete(inflight, j.action.ID)
			}
			results <- j
		case <-timer.C:
			idle = false
			timer.Reset(d.opts.Poll)
		case <-d.ctx.Done():
			for running > 0 {
				results <- <-finished // cut short: released by the recorder
				running--
			}
			var left []*hookJob
			for _, q := range queues {
				left = append(left, q...)
			}
			d.release(left)
			return
		}
	}
}

var dueStatuses = []string{DeliveryPending, DeliveryRetrying}

// claim leases up to limit due deliveries, none of the actions in skip,
// and prepares them.
func (d *Dispatcher) claim(limit int, skip []uint64) ([]*hookJob, error) {
	if limit <= 0 {
		return nil, nil
	}
	ctx, cancel := context.WithTimeout(d.ctx, dbCallTimeout)
	defer cancel()
	db := d.db.WithContext(ctx)
	now := time.Now().UnixMilli()
	due := db.Model(&Delivery{}).Select("id").
		Where("status IN ? AND due_at <= ? AND lease_until < ?", dueStatuses, now, now).
		Where("action_id NOT IN (?)", d.db.Model(&AutomationAction{}).Select("id").Where("disabled_at IS NOT NULL"))
	if len(skip) > 0 {
		due = due.Where("action_id NOT IN ?", skip)
	}
	var ids []uint64
	if err := due.Order("due_at").Limit(limit).Pluck("id", &ids).Error; err != nil || len(ids) == 0 {
		return nil, err
	}
	token := fmt.Sprintf("%s:%d", d.owner, d.seq.Add(1))
	// An attempt takes at most Timeout, and waits in the queue about as
	// long; recording it a few seconds more.
	lease := 2*d.opts.Timeout + 5*time.Second
	err := db.Model(&Delivery{}).Where("id IN ? AND status IN ? AND due_at <= ? AND lease_until < ?", ids, dueStatuses, now, now).
		Updates(map[string]any{"lease_owner": token, "lease_until": now + lease.Milliseconds()}).Error
	if err != nil {
		return nil, err
	}
	var claimed []*Delivery
	if err := db.Where("id IN ? AND lease_owner = ?", ids, token).Find(&claimed).Error; err != nil {
		return nil, err
	}
	jobs := make([]*hookJob, len(claimed))
	for i, dl := range claimed {
		jobs[i] = &hookJob{dl: dl, token: token}
	}
	if err := d.prepare(ctx, jobs); err != nil {
		d.release(jobs)
		return nil, err
	}
	return jobs, nil
}

// prepare loads the actions, rules, apps and events of the jobs and what
// their bodies refer to, a query per kind, and builds the bodies.
func (d *Dispatcher) prepare(ctx context.Context, jobs []*hookJob) error {
	actionIDs, ruleIDs, appIDs, eventIDs := map[uint64]bool{}, map[uint64]bool{}, map[uint64]bool{}, map[uint64]bool{}
	for _, j := range jobs {
		actionIDs[j.dl.ActionID], ruleIDs[j.dl.RuleID], appIDs[j.dl.AppID], eventIDs[j.dl.EventID] = true, true, true, true
	}
	actions, err := loadByID(ctx, d.db, keysOf(actionIDs), func(a *AutomationAction) uint64 { return a.ID })
	if err != nil {
		return err
	}
	rules, err := loadByID(ctx, d.db, keysOf(ruleIDs), func(r *AutomationRule) uint64 { return r.ID })
	if err != nil {
		return err
	}
	apps, err := loadByID(ctx, d.db, keysOf(appIDs), func(a *App) uint64 { return a.ID })
	if err != nil {
		return err
	}
	var events []*Event
	for chunk := range inChunks(keysOf(eventIDs), 500) {
		var es []*Event
		if err := d.db.WithContext(ctx).Where("id IN ?", chunk).Find(&es).Error; err != nil {
			return err
		}
		events = append(events, es...)
	}
	byID := make(map[uint64]*Event, len(events))
	for _, e := range events {
		byID[e.ID] = e
	}
	parts, err := loadPayloadParts(ctx, d.db, events)
	if err != nil {
		return err
	}
	for _, j := range jobs {
		j.action = actions[j.dl.ActionID]
		rule, app, e := rules[j.dl.RuleID], apps[j.dl.AppID], byID[j.dl.EventID]
		if j.action == nil || rule == nil || app == nil || e == nil || e.AppID != j.dl.AppID {
			// Deleted meanwhile: the rule or action with its log, the event by an erasure.
			j.gone = true
			if j.action == nil {
				j.action = &AutomationAction{ID: j.dl.ActionID}
			}
			continue
		}
		payload, err := parts.payload(app, rule, e)
		if errors.Is(err, errEventGone) {
			j.gone = true
			continue
		}
		if err != nil {
			return err
		}
		if j.body, err = actionBody(j.action, payload); err != nil {
			return err
		}
	}
	return nil
}

// recorder stores the outcomes of attempts, as many as have arrived in one
// transaction, until results closes.
func (d *Dispatcher) recorder(results <-chan *hookJob) {
	for j := range results {
		batch := []*hookJob{j}
	more:
		for len(batch) < 500 {
			select {
			case j, ok := <-results:
				if !ok {
					break more
				}
				batch = append(batch, j)
			default:
				break more
			}
		}
		if err := d.record(batch); err != nil {
			d.warn("automations: recording deliveries", "deliveries", len(batch), "err", err)
			d.release(batch) // retried once their lease is given back
		}
	}
}

// record stores a batch of outcomes in one transaction, each fenced on its
// lease token; attempts cut short by a shutdown are released instead.
func (d *Dispatcher) record(batch []*hookJob) error {
	ctx, cancel := context.WithTimeout(context.Background(), dbCallTimeout)
	defer cancel()
	now := Now()
	var cut []*hookJob
	var outcomes []int
	err := withRetry(ctx, func() error {
		cut, outcomes = nil, outcomes[:0]
		return d.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
			var attempts []*DeliveryAttempt
			for _, j := range batch {
				if !j.gone && j.res.err != nil && d.ctx.Err() != nil && errors.Is(j.res.err, context.Canceled) {
					cut = append(cut, j)
					continue
				}
				upd, outcome := d.outcome(j, now)
				r := tx.Model(&Delivery{}).Where("id = ? AND lease_owner = ?", j.dl.ID, j.token).Updates(upd)
				if r.Error != nil {
					return r.Error
				}
				if r.RowsAffected == 0 {
					continue // the lease expired and another replica took over
				}
				if outcome == outcomeDisabled {
					err := tx.Model(&AutomationAction{}).Where("id = ? AND disabled_at IS NULL", j.action.ID).
						Updates(map[string]any{"disabled_at": now, "disabled_reason": "the receiver answered 410 Gone", "updated_at": now}).Error
					if err != nil {
						return err
					}
				}
				outcomes = append(outcomes, outcome)
				attempts = append(attempts, &DeliveryAttempt{DeliveryID: j.dl.ID, AppID: j.dl.AppID, At: now, StatusCode: j.res.code,
					LatencyMs: j.res.latency.Milliseconds(), Error: upd["last_error"].(string)})
			}
			if len(attempts) == 0 {
				return nil
			}
			return tx.CreateInBatches(attempts, 500).Error
		})
	})
	if err != nil {
		return fmt.Errorf("models.Dispatcher.record: %w", err)
	}
	for _, o := range outcomes {
		d.counts[o].Add(1)
	}
	d.release(cut)
	return nil
}

// outcome is the update that records an attempt's result, and its kind.
func (d *Dispatcher) outcome(j *hookJob, now time.Time) (map[string]any, int) {
	res := j.res
	attempts := j.dl.Attempts + 1
	upd := map[string]any{"attempts": attempts, "lease_owner": "", "lease_until": 0, "updated_at": now,
		"last_status_code": res.code, "last_error": res.errorText(), "last_latency_ms": res.latency.Milliseconds()}
	switch {
	case j.gone:
		upd["status"], upd["last_error"] = DeliveryDead, "not sent: "+errEventGone.Error()+" or its rule deleted"
		return upd, outcomeDead
	case res.ok():
		upd["status"] = DeliverySucceeded
		return upd, outcomeSucceeded
	case res.code == http.StatusGone:
		upd["status"], upd["last_error"] = DeliveryDead, "the receiver answered 410 Gone: the action is disabled"
		return upd, outcomeDisabled
	case attempts >= d.opts.MaxAttempts:
		upd["status"] = DeliveryDead
		return upd, outcomeDead
	}
	upd["status"] = DeliveryRetrying
	upd["due_at"] = now.Add(d.backoff(attempts, res.retryAfter)).UnixMilli()
	return upd, outcomeFailed
}

// release gives deliveries back without an attempt (shutdown, store fault,
// a disabled action), so that they are claimed again.
func (d *Dispatcher) release(jobs []*hookJob) {
	if len(jobs) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	byToken := map[string][]uint64{}
	for _, j := range jobs {
		byToken[j.token] = append(byToken[j.token], j.dl.ID)
	}
	for token, ids := range byToken {
		for chunk := range inChunks(ids, 500) {
			// A failure leaves the lease to expire: the deliveries are claimed again then.
			d.db.WithContext(ctx).Model(&Delivery{}).Where("id IN ? AND lease_owner = ?", chunk, token).
				Updates(map[string]any{"lease_owner": "", "lease_until": 0})
		}
	}
}
